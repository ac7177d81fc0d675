"""Traffic split: which variant answers a request.

Weights are relative (90/10, 3/1, ...). Without a routing key each request draws at
random; with one (a user id, say) the variant is a pure function of the key and the
endpoint name, so a user sees one variant for the whole experiment, in every worker and
after restarts. The key is hashed with BLAKE2b, never Python's ``hash()``, which is
randomised per process and would send one user to different variants on different workers.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections.abc import Sequence
from itertools import accumulate

from loopwise.errors import InvalidInput

_SCALE = float(2**64)


class Router:
    """Pick a variant index by weight; sticky by routing key when ``sticky`` is on."""

    def __init__(self, weights: Sequence[float], *, salt: str, sticky: bool = True) -> None:
        if not weights or any(w < 0 for w in weights) or not sum(weights) > 0:
            raise InvalidInput(
                f"traffic weights must be ≥ 0 with at least one above 0; got {list(weights)}."
            )
        self.weights = tuple(float(w) for w in weights)
        self._edges = list(accumulate(self.weights))
        self._total = self._edges[-1]
        self._salt = salt.encode("utf-8") + b"\x00"
        self.sticky = sticky
        self._random = random.Random()

    def choose(self, key: str | None = None) -> int:
        """The index of the variant for a request with routing ``key`` (None: at random)."""
        if len(self._edges) == 1:
            return 0
        if key is not None and self.sticky:
            digest = hashlib.blake2b(self._salt + key.encode("utf-8"), digest_size=8).digest()
            point = int.from_bytes(digest, "big") / _SCALE * self._total
        else:
            point = self._random.random() * self._total
        # bisect_right skips zero-weight variants, whose edge equals the previous one.
        return min(bisect.bisect_right(self._edges, point), len(self._edges) - 1)
