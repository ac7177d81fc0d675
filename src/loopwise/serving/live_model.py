"""A model that follows a registry alias and swaps in new versions without downtime.

:class:`LiveModel` serves one :class:`Snapshot` (the loaded model, its version, when it was
loaded). A daemon thread resolves the alias every ``poll_interval`` seconds; when it points
at another version, that version is loaded and smoke-checked (a prediction on its input
example, then the endpoint's smoke tests: known inputs and the answers they must give) off
the request path, then published with a single attribute assignment, so a
request keeps the snapshot it started with. A version that fails to load or to predict is
recorded (``last_error``, ``failed_loads``, ``failed_version``) and not retried until the
alias moves again; the previous version keeps serving.
"""

from __future__ import annotations

import gc
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from loopwise.errors import InvalidInput
from loopwise.refs import parse_ref
from loopwise.registry.loading import load_version
from loopwise.registry.models import get_model_version, version_id
from loopwise.registry.records import ModelVersion
from loopwise.store import Store

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """What is served right now: never mutated, replaced whole on a swap."""

    model: Any
    version: ModelVersion
    loaded_at: datetime

    @property
    def label(self) -> str:
        """``name/version``, as reported in responses and metric labels."""
        return f"{self.version.name}/{self.version.version}"


class LiveModel:
    """The version behind ``uri`` (``models:/name@alias`` or ``models:/name/3``) in
    ``store``, kept current.

    ``start()`` loads it (raising if it cannot) and starts polling; ``stop()`` ends polling.
    ``current`` is the served :class:`Snapshot` (None before ``start``).
    """

    def __init__(
        self,
        uri: str,
        *,
        store: Store,
        poll_interval: float = 2.0,
        smoke_tests: tuple[Any, ...] = (),
    ) -> None:
        if not isinstance(uri, str) or not uri.startswith("models:/"):
            raise InvalidInput(
                f"LiveModel takes a models:/ reference such as 'models:/name@champion', "
                f"got {uri!r}."
            )
        parse_ref(uri, kind="models")
        if not isinstance(poll_interval, int | float) or not poll_interval > 0:
            raise InvalidInput(
                f"The 'poll_interval' parameter of LiveModel must be a number of seconds > 0. "
                f"Got {poll_interval!r} instead."
            )
        if not isinstance(store, Store):
            raise InvalidInput(
                f"The 'store' parameter of LiveModel must be a Store. "
                f"Got {type(store).__name__} instead."
            )
        self.uri = uri
        #: The store the model is resolved, loaded and followed in.
        self.store = store
        #: What log lines call this model: the endpoint and variant when an endpoint is
        #: served (``credit-risk: default``), else the URI.
        self.log_name = uri
        self.smoke_tests = tuple(smoke_tests)
        #: Set by a serving endpoint: see :meth:`Endpoint.start` for why.
        self.freeze_heap = False
        self.poll_interval = float(poll_interval)
        self.current: Snapshot | None = None
        self.loads = 0
        self.failed_loads = 0
        self.last_error: str | None = None
        self.failed_version: str | None = None
        self.poll_error: str | None = None
        self._failed_id: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._check_lock = threading.Lock()

    def start(self) -> LiveModel:
        """Load the current version (raising its error if it fails) and start polling."""
        if self._thread is not None:
            return self
        version = get_model_version(self.store, self.uri)
        if not self._load(version, starting=True):
            raise InvalidInput(
                f"cannot serve {self.uri}: {self.last_error} Fix or re-point the alias, "
                "then start again."
            )
        return self.start_polling()

    def start_polling(self) -> LiveModel:
        """Poll the alias without loading first: for a shadow that failed to load at start,
        which should pick up the next version the alias points at."""
        if self._thread is not None:
            return self
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._poll, name=f"loopwise-live-model {self.uri}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling; the current snapshot stays readable."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def __enter__(self) -> LiveModel:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def check(self) -> bool:
        """Resolve the alias once; load and swap in a new version. True when swapped."""
        with self._check_lock:
            failing = self.poll_error
            swapped = self._check()
            if failing is not None and self.poll_error is None:
                logger.info("%s resolves %s again", self.log_name, self.uri)
            return swapped

    def _check(self) -> bool:
        """:meth:`check` without the lock."""
        current = self.current
        try:
            # one query in the usual case: the alias has not moved
            holder = version_id(self.store, self.uri)
            if holder is not None and current is not None and holder == current.version.id:
                self.poll_error = self._failed_id = None
                return False
            if holder is not None and holder == self._failed_id:
                self.poll_error = None
                return False
            version = get_model_version(self.store, self.uri)
        except Exception as e:  # store down, alias deleted: keep serving what we have
            error = f"{type(e).__name__}: {e}"
            if error != self.poll_error:  # once per outage, not at every poll
                logger.warning("%s cannot resolve %s: %s", self.log_name, self.uri, error)
            self.poll_error = error
            return False
        self.poll_error = None
        if current is not None and version.id == current.version.id:
            self._failed_id = None  # the alias moved off a failed version: retry it later
            return False
        if version.id == self._failed_id:
            return False
        return self._load(version)

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self.check()
            except Exception:  # never let the poller die
                logger.exception("polling %s failed", self.uri)

    def _load(self, version: ModelVersion, *, starting: bool = False) -> bool:
        """Load, check and publish ``version``; False (and the error recorded) if it fails.
        At start the caller reports a failure; later, the failed swap is a warning line."""
        try:
            model = load_version(self.store, version)
            example = model.input_example
            if example is not None:
                model.predict(example)
            self._run_smoke_tests(model)
        except Exception as e:
            self._failed_id = version.id
            self.failed_version = version.uri
            self.failed_loads += 1
            self.last_error = f"{version.uri} failed to load or predict on its input example: "
            self.last_error += f"{type(e).__name__}: {e}"
            old = self.current
            logger.log(
                logging.DEBUG if starting else logging.WARNING,
                "%s did not swap to %s/%s, %s: %s",
                self.log_name,
                version.name,
                version.version,
                f"still serves {old.label}" if old is not None else "serves nothing yet",
                self.last_error,
                exc_info=logger.isEnabledFor(logging.DEBUG),  # the traceback: at debug only
            )
            return False
        old, self.current = self.current, Snapshot(model, version, datetime.now(UTC))
        if self.freeze_heap:
            gc.freeze()  # the new model's objects leave the collector's generations
        self.loads += 1
        self.last_error = self.failed_version = self._failed_id = None
        if old is None:
            logger.log(
                logging.DEBUG if starting else logging.INFO,
                "%s serves %s = %s",
                self.log_name,
                self.uri,
                self.current.label,
            )
        else:
            was = f"/{old.version.version}" if old.version.name == version.name else old.label
            logger.info("%s now serves %s (was %s)", self.log_name, self.current.label, was)
        return True

    def _run_smoke_tests(self, model: Any) -> None:
        if not self.smoke_tests:
            return
        from loopwise.evaluation.gates import smoke_check

        columns = model.signature.input_names if model.signature is not None else []
        for i, test in enumerate(self.smoke_tests, 1):
            check = smoke_check(i, test, model, columns)
            if not check.passed:
                raise InvalidInput(f"{check.message}.")

    def status(self) -> dict[str, Any]:
        """What is live and how loading went, JSON-ready."""
        snap = self.current
        signature = snap.model.signature if snap is not None else None
        return {
            "uri": self.uri,
            "name": snap.version.name if snap else None,
            "version": snap.version.version if snap else None,
            "version_id": snap.version.id if snap else None,
            "loaded_at": snap.loaded_at.isoformat() if snap else None,
            "flavor": snap.model.flavor if snap else None,
            "signature": signature.to_dict() if signature is not None else None,
            "poll_interval": self.poll_interval,
            "loads": self.loads,
            "failed_loads": self.failed_loads,
            "last_error": self.last_error,
            "failed_version": self.failed_version,
            "poll_error": self.poll_error,
        }
