"""The module-level batch-scoring API: :func:`score_file`, bound to the default store (see
:mod:`loopwise.context`).

The service taking a Store is :func:`loopwise.batch.scoring.score`; this module only binds
it, so the CLI and code that works with one store need not pass it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from loopwise import context
from loopwise.batch.scoring import ScoreProgress, ScoreSummary, score

__all__ = ["score_file"]


def score_file(
    uri: str,
    source: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    chunk_rows: int = 100_000,
    executor: str = "local",
    proba: bool = False,
    progress: Callable[[ScoreProgress], None] | None = None,
    ray_address: str | None = None,
    overwrite: bool = False,
    storage_options: dict[str, Any] | None = None,
    log_endpoint: str | None = None,
) -> ScoreSummary:
    """Score the Parquet or CSV file ``source`` with ``uri`` (``models:/name@alias`` or
    ``models:/name/3``) into ``dest``, on the default store; see
    :func:`loopwise.batch.scoring.score` for the options."""
    return score(
        context.local_store(),
        uri,
        source,
        dest,
        chunk_rows=chunk_rows,
        executor=executor,
        proba=proba,
        progress=progress,
        ray_address=ray_address,
        overwrite=overwrite,
        storage_options=storage_options,
        log_endpoint=log_endpoint,
    )
