"""A running endpoint: its variants and shadows (each a :class:`LiveModel` following its
own alias), the traffic router, the model flag, and the shadow worker.

The app (:mod:`.app`) asks the endpoint which variant answers a request (:meth:`route`),
and hands it the request afterwards for the shadows (:meth:`mirror`). Shadows run on one
background thread fed by a bounded queue: a slow or failing shadow never delays or fails a
real answer; when the queue is full, mirrored requests are dropped and counted.

The model flag turns every variant off at once: while it is off, the endpoint answers the
config's ``fallback`` for every row (variant ``"fallback"``). Its state is read from the
store (``loopwise endpoints flag NAME off``) every ``poll_interval`` seconds, so all
workers and replicas of an endpoint follow one switch.
"""

from __future__ import annotations

import gc
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from loopwise.errors import InvalidInput
from loopwise.predictions.files import FALLBACK
from loopwise.serving.batching import Batcher
from loopwise.serving.endpoint_config import EndpointConfig
from loopwise.serving.live_model import LiveModel, Snapshot
from loopwise.serving.traffic import Router
from loopwise.store import Store

logger = logging.getLogger(__name__)

SHADOW_QUEUE = 1000


@dataclass
class Variant:
    """One model behind the endpoint (a shadow when ``shadow`` is true)."""

    name: str
    weight: float
    live: LiveModel
    shadow: bool = False
    started: bool = False


@dataclass(frozen=True)
class FlagState:
    """Whether the model answers (``enabled``), and who switched it, when and why."""

    enabled: bool
    reason: str | None = None
    set_at: datetime | None = None
    set_by: str | None = None


@dataclass
class ShadowCounters:
    """What happened to mirrored requests, by outcome; read by the metrics collector."""

    answered: dict[tuple[str, str], int] = field(default_factory=dict)
    failed: dict[tuple[str, str], int] = field(default_factory=dict)
    dropped: int = 0


class Endpoint:
    """Variants, shadows, router and flag of one endpoint (see the module doc).

    Its models are resolved, loaded and followed in ``store``, like its log, tokens and
    flag when :func:`~loopwise.serving.server.build_endpoint` wires them.
    """

    def __init__(
        self,
        config: EndpointConfig,
        *,
        store: Store,
        prediction_log: Any = None,
        authenticator: Any = None,
        flag_reader: Callable[[], FlagState | None] | None = None,
    ) -> None:
        if not isinstance(config, EndpointConfig):
            raise InvalidInput(
                "Endpoint takes an EndpointConfig (EndpointConfig.load(path), .single(uri) "
                f"or .skeleton(answer)); got {type(config).__name__}."
            )
        if not isinstance(store, Store):
            raise InvalidInput(
                f"The 'store' parameter of Endpoint must be a Store. "
                f"Got {type(store).__name__} instead."
            )
        self.config = config
        self.name = config.name
        self.store = store
        self.log = prediction_log
        self.auth = authenticator
        live = {
            "store": store,
            "poll_interval": config.poll_interval,
            "smoke_tests": config.smoke_tests,
        }
        self.variants = [
            Variant(v.name, v.weight, LiveModel(v.model, **live)) for v in config.variants
        ]
        self.shadows = [
            Variant(s.name, 0.0, LiveModel(s.model, **live), shadow=True) for s in config.shadows
        ]
        self.router = (
            Router([v.weight for v in self.variants], salt=config.name, sticky=config.sticky)
            if self.variants
            else None
        )
        self.flag = FlagState(enabled=True)
        self.flag_error: str | None = None
        self._flag_reader = flag_reader
        self.shadow_counters = ShadowCounters()
        self.batcher = Batcher(name=config.name)
        self._shadow_queue: queue.Queue[Any] = queue.Queue(SHADOW_QUEUE)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @classmethod
    def single(cls, live: LiveModel, **kwargs: Any) -> Endpoint:
        """An endpoint around one already-built :class:`LiveModel`, named after its model
        and working on the model's store."""
        config = EndpointConfig.single(live.uri, poll_interval=live.poll_interval)
        endpoint = cls(config, store=live.store, **kwargs)
        endpoint.variants[0].live = live
        endpoint.variants[0].started = live.current is not None
        return endpoint

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> Endpoint:
        """Load every variant (raising if one cannot load) and every shadow (a shadow that
        fails is reported, not fatal), then start the flag poller, shadow worker and log."""
        self._read_flag()
        for variant in self.variants:
            if not variant.started:
                variant.live.start()
                variant.started = True
        for shadow in self.shadows:
            try:
                shadow.live.start()
                shadow.started = True
            except Exception as e:
                logger.error("shadow %s of %s did not load: %s", shadow.name, self.name, e)
                shadow.live.start_polling()
        if self.log is not None:
            self.log.encode_on = self.batcher.run_between  # see loopwise.serving.batching
            self.batcher.start()
            self.log.start()
        if self.auth is not None:
            self.auth.start()
        self._stop.clear()
        if self.shadows:
            self._spawn(self._shadow_worker, "shadows")
        if self._flag_reader is not None:
            self._spawn(self._flag_poller, "flag")
        # A full collection walks every object of the process: with a model and its
        # libraries loaded, ~200k objects and ~160 ms during which no request is answered,
        # every few seconds under load. What exists once the endpoint is up lives as long
        # as the process, so it is moved out of the collector's reach (``gc.freeze``), and
        # each swapped-in model is too. Refcounting still frees what is no longer used.
        gc.collect()
        gc.freeze()
        for variant in self.variants + self.shadows:
            variant.live.freeze_heap = True
        return self

    def _spawn(self, target: Callable[[], None], what: str) -> None:
        thread = threading.Thread(target=target, name=f"loopwise-{what} {self.name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling and the shadow worker (draining what it holds), then close the log,
        which writes every buffered prediction."""
        self._stop.set()
        for variant in self.variants + self.shadows:
            variant.live.stop()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        self.batcher.stop()
        if self.auth is not None:
            self.auth.stop()
        if self.log is not None:
            self.log.close()

    def __enter__(self) -> Endpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the request path --------------------------------------------------------------------

    @property
    def model_enabled(self) -> bool:
        """False for the walking skeleton and while the model flag is off."""
        return self.router is not None and self.flag.enabled

    @property
    def ready(self) -> bool:
        """True when a request would get an answer: every variant loaded, or the fallback."""
        if not self.model_enabled:
            return True
        return all(v.live.current is not None for v in self.variants)

    def route(self, key: str | None) -> tuple[str, Snapshot | None]:
        """The variant name and model snapshot for a request (``None``: the fallback)."""
        if not self.model_enabled:
            return FALLBACK, None
        assert self.router is not None
        variant = self.variants[self.router.choose(key)]
        return variant.name, variant.live.current

    def mirror(self, inputs: Any, request_id: str, timestamp_us: int) -> None:
        """Queue a request for the shadows; drop (and count) it when the queue is full."""
        if not self.shadows:
            return
        try:
            self._shadow_queue.put_nowait((inputs, request_id, timestamp_us))
        except queue.Full:
            self.shadow_counters.dropped += 1

    # -- background work ---------------------------------------------------------------------

    def _shadow_worker(self) -> None:
        while True:
            try:
                item = self._shadow_queue.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            for shadow in self.shadows:
                self._run_shadow(shadow, *item)

    def _run_shadow(self, shadow: Variant, inputs: Any, request_id: str, ts_us: int) -> None:
        snap = shadow.live.current
        if snap is None:
            return
        key = (shadow.name, snap.label)
        start = time.perf_counter()
        try:
            predictions = snap.model.predict(inputs).tolist()
        except Exception as e:
            self.shadow_counters.failed[key] = self.shadow_counters.failed.get(key, 0) + 1
            logger.warning("shadow %s failed on request %s: %s", snap.label, request_id, e)
            if self.log is not None:
                self.log.log_error(
                    request_id=request_id,
                    timestamp_us=ts_us,
                    variant=shadow.name,
                    model=snap.label,
                    error_type=type(e).__name__,
                    latency_ms=(time.perf_counter() - start) * 1000,
                    shadow=True,
                )
            return
        self.shadow_counters.answered[key] = self.shadow_counters.answered.get(key, 0) + 1
        if self.log is not None:
            self.log.log_request(
                request_id=request_id,
                timestamp_us=ts_us,
                variant=shadow.name,
                model=snap.label,
                model_version_id=snap.version.id,
                inputs=inputs,
                outputs=predictions,
                probabilities=None,
                latency_ms=(time.perf_counter() - start) * 1000,
                shadow=True,
            )

    def _read_flag(self) -> None:
        if self._flag_reader is None:
            return
        try:
            state = self._flag_reader()
        except Exception as e:  # store down: keep the last known state
            self.flag_error = f"{type(e).__name__}: {e}"
            logger.warning("cannot read the model flag of %s: %s", self.name, self.flag_error)
            return
        self.flag_error = None
        state = state or FlagState(enabled=True)
        if state.enabled != self.flag.enabled:
            logger.warning(
                "model flag of %s is now %s", self.name, "on" if state.enabled else "off"
            )
        self.flag = state

    def _flag_poller(self) -> None:
        while not self._stop.wait(self.config.poll_interval):
            self._read_flag()

    # -- reporting ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What is live, JSON-ready: ``GET /model``."""
        first = self.variants[0].live.status() if self.variants else {}
        out: dict[str, Any] = {
            "endpoint": self.name,
            "model_enabled": self.model_enabled,
            "skeleton": self.router is None,
            "fallback": self.config.fallback,
            "flag": {
                "enabled": self.flag.enabled,
                "reason": self.flag.reason,
                "set_by": self.flag.set_by,
                "set_at": self.flag.set_at.isoformat() if self.flag.set_at else None,
                "error": self.flag_error,
            },
            "sticky": self.config.sticky,
        }
        # The first variant's fields at the top level: what a single-model endpoint reports.
        out = first | out
        out["variants"] = [
            v.live.status() | {"variant": v.name, "weight": v.weight} for v in self.variants
        ]
        out["shadows"] = [s.live.status() | {"variant": s.name} for s in self.shadows]
        return out
