"""Load testing a prediction endpoint: :func:`run_loadtest` and the :class:`LoadReport`.

``run_loadtest(url)`` asks the endpoint what it serves (``GET /model``), builds a one-row
request from the signature unless given a payload, then keeps ``concurrency`` requests in
flight for ``duration`` seconds (closed loop: each connection sends its next request when
the previous answer arrives) and reports counts, errors, throughput, latency percentiles,
which model versions answered, and the longest gap between successful answers. With
``swap_to``, it moves the alias the endpoint follows mid-run, in the store it is given (the
one the endpoint serves from), and reports when the new version first answered and how
many requests failed.

:func:`drive` is the engine alone: any URL, any body, no questions asked of the endpoint
(``bench/serving.py`` drives MLflow's server with it).

The client is a small HTTP/1.1 keep-alive client on asyncio protocols (one connection per
concurrent request, Content-Length and chunked bodies): about 0.05 ms of CPU per request,
a fraction of what httpx or threads with http.client cost (docs/load-testing.md), so on a
small machine the generator takes little from the server it measures.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from loopwise.errors import InvalidInput, LoopwiseError, NotFound
from loopwise.param_errors import bad_param
from loopwise.store import Store

Progress = Callable[[float, int, int], None]
"""Called about five times a second with (elapsed seconds, requests done, failed requests)."""

_MODEL_FIELD = re.compile(rb'"model"\s*:\s*"([^"\\]{1,200})"')
_ZERO = {"integer": 0, "float": 0.0, "boolean": False, "string": "", "datetime": "2000-01-01"}
_PROGRESS_EVERY = 0.2


@dataclass(frozen=True)
class SwapReport:
    """What happened to the alias moved during a run (times in seconds since the start)."""

    model: str
    alias: str
    from_version: int | None
    to_version: int
    requested_at_s: float
    moved_at_s: float | None  # when set_alias returned; None if it failed
    moved_at: str | None  # the registry's time of the move (UTC, ISO 8601)
    first_answer_s: float | None  # the first answer from the new version
    error: str | None = None

    @property
    def observed(self) -> bool:
        """True when the new version answered before the end of the run."""
        return self.first_answer_s is not None

    @property
    def pickup_s(self) -> float | None:
        """Seconds from the alias move to the new version's first answer."""
        if self.first_answer_s is None or self.moved_at_s is None:
            return None
        return self.first_answer_s - self.moved_at_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "alias": self.alias,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "requested_at_s": _round(self.requested_at_s),
            "moved_at_s": _round(self.moved_at_s),
            "moved_at": self.moved_at,
            "first_answer_s": _round(self.first_answer_s),
            "pickup_s": _round(self.pickup_s),
            "observed": self.observed,
            "error": self.error,
        }


@dataclass(frozen=True)
class LoadReport:
    """Counts, throughput and latencies of one run. Latencies are of every request that got
    an HTTP answer (any status), from sending it to reading its last byte."""

    url: str
    concurrency: int
    duration_s: float  # from the start of the load to the last answer
    requests: int
    ok: int  # 2xx answers
    errors: dict[str, int]  # "400 invalid_input", "503 not_ready", "timeout", ...
    throughput_rps: float  # requests answered or failed, per second
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    mean_ms: float | None
    models: dict[str, int]  # "name/version" of the answers -> how many, first seen first
    longest_gap_ms: float | None  # between consecutive successful answers
    swap: SwapReport | None = None
    client_cpu_ms_per_request: float | None = None  # this process's CPU / requests

    @property
    def failed(self) -> int:
        """Requests that did not get a 2xx answer (HTTP errors, timeouts, broken connections)."""
        return self.requests - self.ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "concurrency": self.concurrency,
            "duration_s": _round(self.duration_s),
            "requests": self.requests,
            "ok": self.ok,
            "failed": self.failed,
            "errors": dict(self.errors),
            "throughput_rps": _round(self.throughput_rps),
            "latency_ms": {
                k: _round(getattr(self, f"{k}_ms")) for k in ("p50", "p95", "p99", "max", "mean")
            },
            "models": dict(self.models),
            "longest_gap_ms": _round(self.longest_gap_ms),
            "swap": None if self.swap is None else self.swap.to_dict(),
            "client_cpu_ms_per_request": _round(self.client_cpu_ms_per_request, 4),
        }


def run_loadtest(
    url: str,
    *,
    store: Store | None = None,
    concurrency: int = 8,
    duration: float = 20.0,
    payload: Any = None,
    swap_to: int | None = None,
    swap_at: float | None = None,
    timeout: float = 10.0,
    token: str | None = None,
    progress: Progress | None = None,
) -> LoadReport:
    """Load a loopwise endpoint (``http://127.0.0.1:8000``) and report how it answered.

    ``payload`` is a request body (``{"inputs": ...}``), the inputs alone (records or
    columns), or the path of a JSON file holding either; by default one row from the
    endpoint's signature (its input example when ``GET /model`` has one, else zeros).
    ``swap_to`` moves the alias the endpoint follows (its first variant's, for an A/B
    endpoint) to that version at ``swap_at`` seconds (default: mid-run) in ``store``, which
    must be the store the endpoint serves from (a swap needs it; nothing else does).
    ``token`` is sent as ``Authorization: Bearer`` to an endpoint with API tokens
    (GET /model needs ``read``, POST /predict ``predict``: an ``admin`` token has both).
    Raises :class:`~loopwise.errors.InvalidInput` for bad arguments or a URL
    that is not a loopwise endpoint, and
    :class:`~loopwise.errors.NotFound` when nothing answers there.
    """
    concurrency, duration, timeout = _check_load_args(
        "run_loadtest", concurrency, duration, timeout
    )
    base = _base_url(url)
    if token is not None and (not isinstance(token, str) or not token.strip()):
        raise InvalidInput("The 'token' parameter of run_loadtest must be a non-empty str.")
    headers = {} if token is None else {"Authorization": f"Bearer {token.strip()}"}
    info = _endpoint_info(base, timeout, headers)
    body = _encode(_payload(payload, info))
    plan = None
    if swap_to is not None:
        if not isinstance(store, Store):
            raise InvalidInput(
                "The 'store' parameter of run_loadtest must be a Store (the one the endpoint "
                f"serves from) when swap_to is given. Got {type(store).__name__} instead."
            )
        plan = _plan_swap(store, info, swap_to, swap_at, duration)
    elif swap_at is not None:
        raise InvalidInput("The 'swap_at' parameter of run_loadtest needs swap_to. Got no swap_to.")
    return drive(
        base + "/predict",
        body,
        concurrency=concurrency,
        duration=duration,
        timeout=timeout,
        progress=progress,
        headers=headers,
        _swap=plan,
    )


def drive(
    url: str,
    body: bytes,
    *,
    concurrency: int = 8,
    duration: float = 20.0,
    timeout: float = 10.0,
    progress: Progress | None = None,
    headers: dict[str, str] | None = None,
    _swap: _SwapPlan | None = None,
) -> LoadReport:
    """POST ``body`` to ``url`` from ``concurrency`` connections for ``duration`` seconds.

    The engine of :func:`run_loadtest`, for any HTTP endpoint: it does not check what
    answers. ``headers`` are added to every request (the body is sent as JSON unless
    they say otherwise). Runs its own event loop, in a helper thread when called from a
    running one.
    """
    concurrency, duration, timeout = _check_load_args("drive", concurrency, duration, timeout)
    if not isinstance(body, bytes):
        raise bad_param("drive", "body", "bytes", type(body))
    target = _Target.parse(url, body, headers or {})
    run = _Run(target, concurrency, duration, timeout, progress, _swap)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run.main())
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(_capture(run)), name="loopwise-load")
    thread.start()
    thread.join()
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def _capture(run: _Run) -> Any:
    try:
        return asyncio.run(run.main())
    except BaseException as e:  # re-raised in the caller's thread
        return e


# -- arguments, the endpoint and the payload ----------------------------------------------


def _check_load_args(fn: str, concurrency: Any, duration: Any, timeout: Any) -> tuple:
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise bad_param(fn, "concurrency", "an int >= 1", concurrency)
    for name, value in (("duration", duration), ("timeout", timeout)):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or value <= 0:
            raise bad_param(fn, name, "a number of seconds > 0", value)
    return concurrency, float(duration), float(timeout)


def _base_url(url: Any) -> str:
    if not isinstance(url, str):
        raise bad_param("run_loadtest", "url", "a URL", url)
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            f"{url!r} is not an endpoint URL; give one such as http://127.0.0.1:8000 "
            "(what `loopwise serve` prints)."
        )
    path = parts.path.rstrip("/")
    for suffix in ("/predict", "/model"):
        path = path.removesuffix(suffix)
    return f"{parts.scheme}://{parts.netloc}{path}"


def _endpoint_info(base: str, timeout: float, headers: dict[str, str]) -> dict[str, Any]:
    """``GET /model`` of the endpoint, refusing anything that is not a loopwise endpoint."""
    import http.client

    parts = urlsplit(base)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(
            "GET", f"{parts.path}/model", headers={"Accept": "application/json", **headers}
        )
        response = conn.getresponse()
        status, raw = response.status, response.read()
    except (OSError, http.client.HTTPException) as e:
        raise NotFound(
            f"nothing answers at {base}: {_describe(e)}. Is the endpoint running "
            "(loopwise serve models:/<name>@<alias>) and is the URL right?"
        ) from e
    finally:
        conn.close()
    if status in (401, 403):
        raise InvalidInput(
            f"{base} refused GET /model ({status}: {_error_message(raw)}). Pass a token "
            "that may read the model and predict (role admin) with --token or LOOPWISE_TOKEN."
        )
    try:
        info = json.loads(raw) if status == 200 else None
    except ValueError:
        info = None
    serves_model = isinstance(info, dict) and str(info.get("uri", "")).startswith("models:/")
    if not serves_model and not (isinstance(info, dict) and "endpoint" in info):
        raise InvalidInput(
            f"{base} is not a loopwise endpoint: GET /model answered {status} "
            f"{raw[:80]!r}. loopwise loadtest drives endpoints started with `loopwise serve`."
        )
    return info


def _payload(payload: Any, info: dict[str, Any]) -> dict[str, Any]:
    if payload is None:
        return {"inputs": [_default_row(info)]}
    if isinstance(payload, str | os.PathLike):
        path = os.fspath(payload)
        try:
            with open(path, encoding="utf-8") as f:
                payload = json.load(f)
        except OSError as e:
            raise InvalidInput(f"cannot read the payload file {path!r}: {e.strerror}.") from e
        except ValueError as e:
            raise InvalidInput(f"the payload file {path!r} is not valid JSON: {e}.") from e
    if isinstance(payload, dict) and "inputs" in payload:
        return payload
    if isinstance(payload, dict | list) and payload:
        return {"inputs": payload}
    raise InvalidInput(
        'The payload must be a request body ({"inputs": ...}), records ([{"col": 1}, ...]) '
        f'or columns ({{"col": [1, 2]}}). Got {json.dumps(payload)[:80]}.'
    )


def _default_row(info: dict[str, Any]) -> dict[str, Any]:
    """One row: the endpoint's input example if it gives one, else zeros per column."""
    example = info.get("input_example")
    if isinstance(example, list) and example and isinstance(example[0], dict):
        return example[0]
    if isinstance(example, dict) and example:
        return example
    columns = (info.get("signature") or {}).get("inputs") or []
    row = {c["name"]: _ZERO.get(c["type"]) for c in columns}
    if not row or None in row.values():
        what = info.get("uri") or f"endpoint {info.get('endpoint')!r} (no model signature)"
        raise InvalidInput(
            f"cannot build a request for {what} from its signature "
            f"({json.dumps(columns)[:80]}); give one with payload= (--payload file.json)."
        )
    return row


def _encode(body: Any) -> bytes:
    try:
        return json.dumps(body, allow_nan=False).encode()
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"the payload cannot be sent as JSON: {e}.") from e


# -- the swap ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SwapPlan:
    store: Store  # where the alias is moved: the endpoint's store
    model: str
    alias: str
    from_version: int | None
    to_version: int
    at: float


def _plan_swap(store: Store, info: dict[str, Any], to: Any, at: Any, duration: float) -> _SwapPlan:
    """Check that the endpoint follows an alias of a model in ``store``."""
    from loopwise.refs import parse_ref
    from loopwise.registry.models import get_model_version

    if isinstance(to, bool) or not isinstance(to, int) or to < 1:
        raise InvalidInput(
            f"The 'swap_to' parameter of run_loadtest must be a version number >= 1. "
            f"Got {to!r} instead."
        )
    if at is None:
        at = duration / 2
    ok = isinstance(at, int | float) and not isinstance(at, bool) and math.isfinite(at)
    if not ok or not 0 <= at < duration:
        raise InvalidInput(
            f"The 'swap_at' parameter of run_loadtest must be a number of seconds in "
            f"[0, duration={duration:g}). Got {at!r} instead."
        )
    if not str(info.get("uri", "")).startswith("models:/"):
        raise InvalidInput(
            f"endpoint {info.get('endpoint')!r} serves no model (a walking skeleton), so "
            "there is no alias to move; drop --swap-to."
        )
    ref = parse_ref(info["uri"], kind="models")
    if ref.alias is None:
        raise InvalidInput(
            f"the endpoint serves {info['uri']}, a fixed version, so there is no alias to "
            f"move; serve an alias (loopwise serve models:/{ref.name}@champion) to test a swap."
        )
    target = get_model_version(store, f"models:/{ref.name}/{to}")  # NotFound names it
    served = info.get("version")
    if isinstance(served, int):
        mine = get_model_version(store, f"models:/{ref.name}/{served}")
        if info.get("version_id") not in (None, mine.id):
            raise InvalidInput(
                f"the endpoint serves {ref.name}/{served} with id {info['version_id']}, but "
                f"in the configured store {ref.name}/{served} has id {mine.id}: point "
                "--store-url (or LOOPWISE_STORE_URL) at the store the endpoint serves from."
            )
    if served == to:
        raise InvalidInput(
            f"the endpoint already serves {ref.name}/{to}; give --swap-to another version."
        )
    return _SwapPlan(store, ref.name, ref.alias, served, target.version, float(at))


# -- the engine -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    url: str
    host: str
    port: int
    tls: bool
    request: bytes

    @classmethod
    def parse(cls, url: str, body: bytes, headers: dict[str, str]) -> _Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(f"{url!r} is not an http:// or https:// URL.")
        tls = parts.scheme == "https"
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        fields = {"Host": parts.netloc, "User-Agent": "loopwise-loadtest"}
        fields["Content-Type"] = "application/json"
        for name, value in headers.items():
            if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name) or "\n" in value:
                raise InvalidInput(f"{name!r} is not a valid HTTP header.")
            fields = {k: v for k, v in fields.items() if k.lower() != name.lower()}
            fields[name] = value
        fields["Content-Length"] = str(len(body))
        head = "".join(f"{k}: {v}\r\n" for k, v in fields.items())
        request = f"POST {path} HTTP/1.1\r\n{head}\r\n".encode("latin-1") + body
        return cls(url, parts.hostname, parts.port or (443 if tls else 80), tls, request)


class _Closed(Exception):
    """The server closed the connection before the whole answer arrived."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection; ``send`` writes the request and returns (status, body)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future | None = None
        self.buf = bytearray()
        self.alive = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.alive = True
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, request: bytes) -> asyncio.Future:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        self.buf += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        answer = _parse_response(self.buf)
        if answer is not None:
            status, body, used, keep_alive = answer
            del self.buf[:used]
            if not keep_alive:
                self.close()
            waiter.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            answer = _parse_response(self.buf, eof=True)
            if answer is not None:
                waiter.set_result(answer[:2])
            else:
                waiter.set_exception(exc or _Closed("the server closed the connection"))

    def close(self) -> None:
        self.alive = False
        if self.transport is not None:
            self.transport.abort()


def _parse_response(buf: bytearray, eof: bool = False) -> tuple[int, bytes, int, bool] | None:
    """(status, body, bytes used, keep-alive) once ``buf`` holds a whole answer, else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end]).lower()
    status = int(head[9:12])
    start = end + 4
    keep_alive = b"\r\nconnection: close" not in head and head.startswith(b"http/1.1")
    at = head.find(b"\r\ncontent-length:")
    if at >= 0:
        stop = head.find(b"\r\n", at + 2)
        size = int(head[at + 17 : stop if stop >= 0 else None])
        if len(buf) < start + size:
            return None
        return status, bytes(buf[start : start + size]), start + size, keep_alive
    if b"\r\ntransfer-encoding: chunked" in head:
        chunked = _parse_chunked(buf, start)
        return None if chunked is None else (status, chunked[0], chunked[1], keep_alive)
    if status in (204, 304) or 100 <= status < 200:
        return status, b"", start, keep_alive
    if not eof:  # the body runs to the end of the connection
        return None
    return status, bytes(buf[start:]), len(buf), False


def _parse_chunked(buf: bytearray, pos: int) -> tuple[bytes, int] | None:
    """(body, bytes used) of a chunked body starting at ``pos``, once it is whole."""
    parts = []
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(bytes(buf[pos:line_end]).split(b";")[0], 16)
        pos = line_end + 2
        if size == 0:
            trailer = buf.find(b"\r\n\r\n", pos - 2)
            if trailer < 0:
                return None
            return b"".join(parts), trailer + 4
        if len(buf) < pos + size + 2:
            return None
        parts.append(bytes(buf[pos : pos + size]))
        pos += size + 2


def _expire(conn: _Connection, waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())
        conn.close()


def _describe(e: BaseException) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, socket.gaierror):
        return f"unknown host ({e.strerror})"
    if isinstance(e, TimeoutError):
        return "timed out"
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _error_message(raw: bytes) -> str:
    try:
        return str(json.loads(raw)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return repr(raw[:80])


def _http_error(status: int, body: bytes) -> str:
    """``"400 invalid_input"`` for a loopwise error body, else the status alone."""
    try:
        kind = json.loads(body)["error"]["type"]
    except (ValueError, KeyError, TypeError):
        return str(status)
    return f"{status} {kind}" if isinstance(kind, str) else str(status)


class _Run:
    """One run of the generator: its connections, workers, samples and the optional swap."""

    def __init__(
        self,
        target: _Target,
        concurrency: int,
        duration: float,
        timeout: float,
        progress: Progress | None,
        swap: _SwapPlan | None,
    ) -> None:
        self.target, self.concurrency, self.duration = target, concurrency, duration
        self.timeout, self.progress, self.plan = timeout, progress, swap
        self.ssl = ssl.create_default_context() if target.tls else None
        self.latencies: list[float] = []  # seconds, every request with an HTTP answer
        self.ok_times: list[float] = []  # perf_counter at each 2xx answer, in order
        self.errors: dict[str, int] = {}
        self.labels: dict[bytes, int] = {}
        self.first_seen: dict[bytes, float] = {}
        self.requests = 0
        self.failed = 0
        self.start = self.deadline = 0.0
        self.swap_report: SwapReport | None = None

    async def connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        opening = loop.create_connection(
            _Connection, self.target.host, self.target.port, ssl=self.ssl
        )
        _, conn = await asyncio.wait_for(opening, self.timeout)
        return conn

    async def main(self) -> LoadReport:
        try:
            first = await self.connect()
        except (OSError, TimeoutError) as e:
            raise NotFound(
                f"nothing answers at {self.target.url}: {_describe(e)}. Is the endpoint "
                "running and is the URL right?"
            ) from e
        conns = [first] + [await self.connect() for _ in range(self.concurrency - 1)]
        cpu = time.process_time()
        self.start = time.perf_counter()
        self.deadline = self.start + self.duration
        workers = [asyncio.create_task(self.worker(c)) for c in conns]
        ticker = asyncio.create_task(self.tick())
        swapper = asyncio.create_task(self.swap()) if self.plan is not None else None
        tasks = [*workers, ticker, *([swapper] if swapper else [])]
        try:
            await asyncio.gather(*workers)
            end = time.perf_counter()
            if swapper is not None:
                await swapper
        finally:
            for task in tasks:
                task.cancel()
            for conn in conns:
                conn.close()
            await asyncio.gather(*tasks, return_exceptions=True)
        if not ticker.cancelled() and ticker.exception() is not None:
            raise ticker.exception()  # the progress callback failed
        cpu = time.process_time() - cpu
        if self.progress is not None:
            self.progress(end - self.start, self.requests, self.failed)
        return self.report(end, cpu)

    async def worker(self, conn: _Connection | None) -> None:
        loop = asyncio.get_running_loop()
        request, timeout, perf = self.target.request, self.timeout, time.perf_counter
        latencies, ok_times, labels = self.latencies, self.ok_times, self.labels
        while True:
            sent = perf()
            if sent >= self.deadline:
                break
            try:
                if conn is None or not conn.alive:
                    conn = None
                    conn = await self.connect()
                waiter = conn.send(request)
                timer = loop.call_later(timeout, _expire, conn, waiter)
                try:
                    status, body = await waiter
                finally:
                    timer.cancel()
            except (OSError, TimeoutError, _Closed) as e:
                self.fail("timeout" if isinstance(e, TimeoutError) else _describe(e))
                if conn is not None:
                    conn.close()
                    conn = None
                else:  # could not connect: do not spin
                    await asyncio.sleep(0.05)
                continue
            done = perf()
            latencies.append(done - sent)
            self.requests += 1
            if 200 <= status < 300:
                ok_times.append(done)
                found = _MODEL_FIELD.search(body)
                if found is not None:
                    label = found.group(1)
                    if label in labels:
                        labels[label] += 1
                    else:
                        labels[label] = 1
                        self.first_seen[label] = done
            else:
                self.failed += 1
                key = _http_error(status, body)
                self.errors[key] = self.errors.get(key, 0) + 1
        if conn is not None:
            conn.close()

    def fail(self, key: str) -> None:
        self.requests += 1
        self.failed += 1
        self.errors[key] = self.errors.get(key, 0) + 1

    async def tick(self) -> None:
        if self.progress is None:
            return
        while True:
            await asyncio.sleep(_PROGRESS_EVERY)
            self.progress(time.perf_counter() - self.start, self.requests, self.failed)

    async def swap(self) -> None:
        from loopwise.registry.models import set_alias

        plan = self.plan
        await asyncio.sleep(max(0.0, self.start + plan.at - time.perf_counter()))
        requested = time.perf_counter() - self.start
        moved_at_s = moved_at = error = None
        try:
            move = await asyncio.to_thread(
                set_alias,
                plan.store,
                plan.model,
                plan.alias,
                plan.to_version,
                reason="loopwise loadtest",
            )
        except Exception as e:  # reported, and the load goes on
            error = str(e) if isinstance(e, LoopwiseError) else f"{type(e).__name__}: {e}"
        else:
            moved_at_s = time.perf_counter() - self.start
            moved_at = move.moved_at.isoformat()
        self.swap_report = SwapReport(
            plan.model,
            plan.alias,
            plan.from_version,
            plan.to_version,
            requested,
            moved_at_s,
            moved_at,
            None,
            error,
        )

    def report(self, end: float, cpu: float) -> LoadReport:
        import numpy as np

        elapsed = end - self.start
        lat = np.asarray(self.latencies) * 1000.0
        p50 = p95 = p99 = top = mean = None
        if lat.size:
            p50, p95, p99 = (float(v) for v in np.percentile(lat, [50, 95, 99]))
            top, mean = float(lat.max()), float(lat.mean())
        ok = np.asarray(self.ok_times)
        gap = float(np.diff(ok).max() * 1000.0) if ok.size > 1 else None
        swap = self.swap_report
        if swap is not None:
            seen = self.first_seen.get(f"{swap.model}/{swap.to_version}".encode())
            first = None if seen is None else seen - self.start
            swap = dataclasses.replace(swap, first_answer_s=first)
        return LoadReport(
            url=self.target.url,
            concurrency=self.concurrency,
            duration_s=elapsed,
            requests=self.requests,
            ok=self.requests - self.failed,
            errors=dict(sorted(self.errors.items(), key=lambda kv: -kv[1])),
            throughput_rps=self.requests / elapsed if elapsed > 0 else 0.0,
            p50_ms=p50,
            p95_ms=p95,
            p99_ms=p99,
            max_ms=top,
            mean_ms=mean,
            models={k.decode(): self.labels[k] for k in self.first_seen},  # first seen first
            longest_gap_ms=gap,
            swap=swap,
            client_cpu_ms_per_request=cpu * 1000.0 / self.requests if self.requests else None,
        )


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
