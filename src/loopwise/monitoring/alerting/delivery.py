"""Where alerts go: the log, webhooks (JSON or Slack), and actions (a command to retrain).

Webhooks are declared as data::

    webhooks:
      - {url: "http://127.0.0.1:9000/hook", format: json}
      - {url_env: SLACK_WEBHOOK_URL, format: slack, timeout: 5, retries: 2}

``url_env`` names an environment variable read at delivery time, so the secret lives in
neither the YAML nor the store. A URL is a secret: logs, stored delivery records and error
messages show it masked (:func:`mask_url`). A delivery never raises: every attempt ends in
a record ``{"target", "format", "event", "status": "delivered" | "failed", "http_status",
"attempts", "error", "at"}``.

An action is a mapping with one key naming its kind (:data:`ACTION_KINDS`):
``{command: [...], timeout: 3600, cwd: ..., cooldown: 6h}`` runs a command, and
``{pipeline: churn-train, params: {...}, timeout: ..., cooldown: ...}`` runs a registered
pipeline. Every kind has a ``timeout`` (after it the run is over, which is how a ``running``
record left by a dead process is known to be stale) and an optional ``cooldown``
(:func:`parse_cooldown`); :mod:`.gate` applies both before an action starts.
Actions run on a small pool of background threads (:func:`submit`); ``run`` gets the
alert's store, where a ``pipeline`` action's run is recorded. The interpreter waits for
them at exit.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import math
import os
import re
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol
from urllib.parse import parse_qsl, urlsplit

from loopwise._version import __version__
from loopwise.clock import format_duration, parse_duration
from loopwise.clock import now as clock_now
from loopwise.errors import InvalidInput
from loopwise.param_errors import path_error, refuse_unknown_keys, suggestion

log = logging.getLogger("loopwise.alerts")

FORMATS = ("json", "slack")
_WEBHOOK_KEYS = ("url", "url_env", "format", "timeout", "retries", "headers")
PAYLOAD_FORMAT_VERSION = 1
TAIL_BYTES = 4096  # of stdout and stderr kept with an action's result
MAX_ACTION_THREADS = 2
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# -- webhooks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Webhook:
    """One checked webhook; ``url`` (or the variable ``url_env``) is never shown in clear."""

    url: str | None = field(default=None, repr=False)
    url_env: str | None = None
    format: str = "json"
    timeout: float = 5.0
    retries: int = 2
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @property
    def target(self) -> str:
        """How records and logs name this webhook (masked URL, or the variable's name)."""
        return mask_url(self.url) if self.url else f"${self.url_env}"

    def resolve_url(self) -> str:
        """The URL to post to; raises KeyError naming the variable when it is not set."""
        if self.url:
            return self.url
        value = os.environ.get(self.url_env or "", "")
        if not value:
            raise KeyError(self.url_env)
        return value

    def to_dict(self, *, secrets: bool = False) -> dict[str, Any]:
        """As written in YAML; the URL masked and header values hidden unless ``secrets``."""
        out: dict[str, Any] = {}
        if self.url:
            out["url"] = self.url if secrets else mask_url(self.url)
        else:
            out["url_env"] = self.url_env
        out |= {"format": self.format, "timeout": self.timeout, "retries": self.retries}
        if self.headers:
            out["headers"] = {k: v if secrets else "***" for k, v in self.headers}
        return out


def parse_webhooks(value: Any, path: str = "webhooks") -> tuple[Webhook, ...]:
    """Check the ``webhooks`` section (a list of mappings); raise InvalidInput naming the key."""
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise path_error(
            path, f"must be a list of {{url, format}} entries; got {type(value).__name__}."
        )
    return tuple(
        item if isinstance(item, Webhook) else _webhook(item, f"{path}[{i}]")
        for i, item in enumerate(value)
    )


def _webhook(item: Any, path: str) -> Webhook:
    if not isinstance(item, Mapping):
        raise path_error(path, "must be a mapping such as {url: 'https://...', format: json}.")
    d = dict(item)
    refuse_unknown_keys(d, _WEBHOOK_KEYS, path)
    url, url_env = d.get("url"), d.get("url_env")
    if (url is None) == (url_env is None):
        raise path_error(
            path,
            "give exactly one of url (the address) or url_env (the name of an "
            "environment variable holding it, to keep the secret out of the file).",
        )
    if url is not None:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            shown = mask_url(url) if isinstance(url, str) else repr(url)
            raise path_error(f"{path}.url", f"must be an http:// or https:// URL; got {shown}.")
    elif not isinstance(url_env, str) or not _ENV_NAME.fullmatch(url_env):
        raise path_error(
            f"{path}.url_env", f"must be an environment variable name; got {url_env!r}."
        )
    fmt = d.get("format", "json")
    if fmt not in FORMATS:
        raise path_error(f"{path}.format", f"unknown format {fmt!r}{suggestion(fmt, FORMATS)}")
    timeout = d.get("timeout", 5.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 60:
        raise path_error(f"{path}.timeout", f"must be seconds in (0, 60]; got {timeout!r}.")
    retries = d.get("retries", 2)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 5:
        raise path_error(f"{path}.retries", f"must be an integer in [0, 5]; got {retries!r}.")
    headers = d.get("headers") or {}
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise path_error(f"{path}.headers", "must map header names to text values.")
    return Webhook(url, url_env, fmt, float(timeout), retries, tuple(sorted(headers.items())))


_PLAIN_SEGMENT = re.compile(r"[a-z][a-z_-]{0,19}|v[0-9]{1,2}")


def mask_url(url: str) -> str:
    """``url`` safe to log: credentials, query values and token-like path parts as ``***``.

    ``https://hooks.slack.com/services/T0/B0/XyZ`` becomes
    ``https://hooks.slack.com/services/***/***/***``: a path part is kept only when it reads
    like a word (``hook``, ``api``, ``v1``).
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "***"
    host = f"[{host}]" if ":" in host else host
    user = "***@" if parts.username or parts.password else ""
    path = "/".join(
        s if not s or _PLAIN_SEGMENT.fullmatch(s) else "***" for s in parts.path.split("/")
    )
    query = "&".join(f"{k}=***" for k, _ in parse_qsl(parts.query, keep_blank_values=True))
    return f"{parts.scheme}://{user}{host}{port}{path}" + (f"?{query}" if query else "")


def webhook_body(fmt: str, kind: str, alert: Mapping[str, Any], text: str) -> dict[str, Any]:
    """The POST body of one event: loopwise's JSON, or Slack's ``{"text", "blocks"}``."""
    if fmt == "json":
        return {
            "format_version": PAYLOAD_FORMAT_VERSION,
            "loopwise_version": __version__,
            "event": kind,
            "text": text,
            "alert": dict(alert),
        }
    state = "FIRING" if kind == "fired" else "RESOLVED"
    title = f"[{state}] {alert['rule']} ({alert['severity']}) · {alert['endpoint']}"
    where = [f"monitor *{_slack(alert['monitor'])}*", f"endpoint *{_slack(alert['endpoint'])}*"]
    if alert.get("model"):
        where.append(f"model *{_slack(alert['model'])}*")
    where.append(f"alert `{alert['id']}`")
    return {
        "text": f"[{state}] {text}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _slack(text)[:3000]}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(where)}]},
        ],
    }


def _slack(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Deliverer:
    """Delivers the events of one evaluation to the log and the webhooks; never raises.

    A webhook that failed for one event is not tried again for the later events of the
    same evaluation (a backfill must not wait minutes on a dead receiver); those events get
    a failed record that says so. Posts go through :mod:`urllib.request`, which honours
    ``HTTPS_PROXY`` and, unlike httpx's client, logs no URLs (they hold secrets).
    """

    def __init__(self, webhooks: tuple[Webhook, ...]) -> None:
        self.webhooks = webhooks
        self._down: dict[int, str] = {}

    def deliver(self, kind: str, alert: Mapping[str, Any], text: str, at: datetime) -> list[dict]:
        """One record per target (the log first) for event ``kind`` of ``alert``."""
        records = [_log_event(kind, alert, text, at)]
        for i, hook in enumerate(self.webhooks):
            record = {"target": hook.target, "format": hook.format, "event": kind}
            record["at"] = at.isoformat()
            if i in self._down:
                reason = f"failed for an earlier event of this evaluation ({self._down[i]})"
                record |= {"status": "failed", "attempts": 0, "error": f"not attempted: {reason}"}
            else:
                record |= _post(hook, webhook_body(hook.format, kind, alert, text))
            if record["status"] == "failed" and i not in self._down:
                self._down[i] = record["error"]
                log.warning(
                    "alert %s: webhook %s failed after %d attempt(s): %s",
                    alert["id"], hook.target, record["attempts"], record["error"],
                )  # fmt: skip
            records.append(record)
        return records


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is reported as the 3xx it is, never followed with the body


_opener = urllib.request.build_opener(_NoRedirects)


def _post(hook: Webhook, body: dict[str, Any]) -> dict[str, Any]:
    """POST ``body`` as JSON with retries (connection errors, timeouts, 429 and 5xx)."""
    try:
        url = hook.resolve_url()
    except KeyError:
        error = f"environment variable {hook.url_env} is not set"
        return {"status": "failed", "attempts": 0, "error": error}
    headers = {"Content-Type": "application/json", "User-Agent": f"loopwise/{__version__}"}
    data = json.dumps(body).encode()
    error, status = "", None
    for attempt in range(1, hook.retries + 2):
        if attempt > 1:
            time.sleep(0.5 * 2 ** (attempt - 2))
        request = urllib.request.Request(
            url, data=data, method="POST", headers=headers | dict(hook.headers)
        )
        try:
            with _opener.open(request, timeout=hook.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as e:
            status, error = e.code, f"HTTP {e.code} {e.reason}".strip()
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
            reason = e.reason if isinstance(e, urllib.error.URLError) else e
            status, error = None, _scrub(f"{type(reason).__name__}: {reason}", url)
            continue
        if 200 <= status < 300:
            return {"status": "delivered", "http_status": status, "attempts": attempt}
        if status != 429 and status < 500:
            return {"status": "failed", "http_status": status, "attempts": attempt, "error": error}
    attempts = hook.retries + 1
    return {"status": "failed", "http_status": status, "attempts": attempts, "error": error}


def _scrub(text: str, url: str) -> str:
    """``text`` with the URL, and any secret part of it, masked."""
    text = text.replace(url, mask_url(url))
    parts = urlsplit(url)
    secrets = [parts.query, parts.username, parts.password]
    secrets += [s for s in parts.path.split("/") if s and not _PLAIN_SEGMENT.fullmatch(s)]
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _log_event(kind: str, alert: Mapping[str, Any], text: str, at: datetime) -> dict[str, Any]:
    if kind == "fired":
        level = logging.ERROR if alert["severity"] == "critical" else logging.WARNING
    else:
        level = logging.INFO
    log.log(
        level,
        "alert %s %s (%s/%s): %s",
        alert["rule"],
        kind,
        alert["monitor"],
        alert["id"],
        text,
        extra={"alert": dict(alert), "alert_event": kind},
    )
    return {"target": "log", "event": kind, "status": "delivered", "at": at.isoformat()}


# -- actions -----------------------------------------------------------------------------------

PLACEHOLDERS = ("rule", "monitor", "endpoint", "slice", "metric", "value", "model", "alert_id")


class Action(Protocol):
    """What an action kind provides; ``run`` blocks, never raises, and returns a record.

    ``timeout`` bounds a run in seconds; ``cooldown`` (seconds, or None) is how long after
    one of its rule's actions started no other may start.
    """

    kind: ClassVar[str]
    timeout: float
    cooldown: float | None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], path: str) -> Action: ...
    def describe(self) -> str: ...
    def run(self, alert: Mapping[str, Any], store: Any = None) -> dict[str, Any]: ...
    def to_dict(self) -> dict[str, Any]: ...


def _process_options(d: Mapping[str, Any], path: str) -> tuple[float, str | None, float | None]:
    """The ``timeout``, ``cwd`` and ``cooldown`` every action kind that runs a process
    takes, checked (``path`` names them in errors)."""
    timeout = d.get("timeout", 3600.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise path_error(f"{path}.timeout", f"must be seconds > 0; got {timeout!r}.")
    cwd = d.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        raise path_error(f"{path}.cwd", f"must be a folder path; got {cwd!r}.")
    return float(timeout), cwd, parse_cooldown(d.get("cooldown"), f"{path}.cooldown")


def _process_fields(cwd: str | None, cooldown: float | None) -> dict[str, Any]:
    """``cwd`` and ``cooldown`` as an action's document writes them (when set)."""
    out: dict[str, Any] = {}
    if cwd:
        out["cwd"] = cwd
    if cooldown is not None:  # (a fraction of a second has no duration text)
        out["cooldown"] = format_duration(cooldown) if cooldown == int(cooldown) else cooldown
    return out


@dataclass(frozen=True)
class CommandAction:
    """Run ``command`` (a list of arguments, no shell) with placeholders filled in.

    The child gets the environment plus ``LOOPWISE_ALERT`` (the alert as JSON); after
    ``timeout`` seconds its process group is killed. The record holds the command, times,
    exit code and the last :data:`TAIL_BYTES` of stdout and stderr.
    """

    kind: ClassVar[str] = "command"
    keys: ClassVar[tuple[str, ...]] = ("command", "timeout", "cwd", "cooldown")
    command: tuple[str, ...]
    timeout: float = 3600.0
    cwd: str | None = None
    cooldown: float | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], path: str) -> CommandAction:
        refuse_unknown_keys(dict(d), cls.keys, path)
        command = d.get("command")
        if isinstance(command, str):
            raise path_error(
                f"{path}.command",
                "must be a list of arguments such as [python, "
                "retrain.py, --reason, '{rule}']; a single string would need a shell, "
                "which loopwise never uses.",
            )
        if not isinstance(command, list | tuple) or not command:
            raise path_error(
                f"{path}.command", f"must be a non-empty list of arguments; got {command!r}."
            )
        for i, arg in enumerate(command):
            if not isinstance(arg, str | int | float) or isinstance(arg, bool):
                raise path_error(f"{path}.command[{i}]", f"must be text; got {arg!r}.")
            _check_placeholders(str(arg), f"{path}.command[{i}]")
        timeout, cwd, cooldown = _process_options(d, path)
        return cls(tuple(str(a) for a in command), timeout, cwd, cooldown)

    def describe(self) -> str:
        return " ".join(self.command)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"command": list(self.command), "timeout": self.timeout}
        return out | _process_fields(self.cwd, self.cooldown)

    def run(self, alert: Mapping[str, Any], store: Any = None) -> dict[str, Any]:
        fill = placeholder_values(alert)
        argv = [arg.format_map(fill) for arg in self.command]
        env = os.environ | {"LOOPWISE_ALERT": json.dumps(dict(alert), default=str)}
        record: dict[str, Any] = {"kind": self.kind, "command": argv, "timeout": self.timeout}
        return _run_process(argv, env, self.cwd, self.timeout, record)


def _run_process(
    argv: list[str],
    env: Mapping[str, str],
    cwd: str | None,
    timeout: float,
    record: dict[str, Any],
    *,
    full_stdout: list[str] | None = None,
) -> dict[str, Any]:
    """Run ``argv`` (no shell, its own process group, killed after ``timeout``); ``record``
    completed with times, status, exit code and the tails of its output. ``full_stdout``,
    when given, receives the whole of stdout."""
    started = time.monotonic()
    record["started_at"] = _now()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=dict(env),
                cwd=cwd,
                start_new_session=os.name == "posix",
            )
        except OSError as e:
            return record | {
                "status": "error",
                "exit_code": None,
                "finished_at": _now(),
                "error": f"could not start {argv[0]!r}: {e.strerror or e}",
            }
        try:
            code = proc.wait(timeout)
            status, error = ("succeeded" if code == 0 else "failed"), None
        except subprocess.TimeoutExpired:
            _kill(proc)
            code = proc.wait()
            status, error = "timed_out", f"killed after the timeout of {timeout:g} s"
        record |= {
            "status": status,
            "exit_code": code,
            "finished_at": _now(),
            "duration_s": round(time.monotonic() - started, 3),
        }
        if error:
            record["error"] = error
        if full_stdout is not None:
            out.seek(0)
            full_stdout.append(out.read().decode("utf-8", errors="replace"))
        return record | {"stdout": _tail(out), "stderr": _tail(err)}


_PIPELINE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")
#: ``module:function`` or ``path/file.py:function``, as ``loopwise pipelines run`` takes.
_ENTRYPOINT = re.compile(r"^[\w./\\-]+:[A-Za-z_][\w.]*$")


@dataclass(frozen=True)
class PipelineAction:
    """Run the registered pipeline ``pipeline`` with ``params`` (text values may hold the
    placeholders of a command: ``{rule}``, ``{value}``...).

    Monitoring sits before pipelines in the layers and never imports them: the run is a
    child process, ``python -m loopwise pipelines run <pipeline> --trigger
    alert:<rule>@<alert id> --json``, on the store the alert is stored in (its URLs passed
    in the environment, which ``ps`` does not show, unlike arguments; without a store, the
    child's settings decide). The record is a command's (exit code, output tails) plus
    ``pipeline``, ``params``, ``trigger``, and ``run_id`` and ``run_status`` read from the
    child's JSON: the pipeline run the alert started.
    """

    kind: ClassVar[str] = "pipeline"
    keys: ClassVar[tuple[str, ...]] = ("pipeline", "params", "timeout", "cwd", "cooldown")
    pipeline: str
    params: tuple[tuple[str, Any], ...] = ()
    timeout: float = 3600.0
    cwd: str | None = None
    cooldown: float | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], path: str) -> PipelineAction:
        refuse_unknown_keys(dict(d), cls.keys, path)
        name = d.get("pipeline")
        if not isinstance(name, str) or not (
            _PIPELINE_NAME.fullmatch(name) or _ENTRYPOINT.fullmatch(name)
        ):
            raise path_error(
                f"{path}.pipeline",
                f"must be the name of a pipeline that has run (loopwise pipelines list) or "
                f"its entrypoint (module:function, path/file.py:function); got {name!r}.",
            )
        params = d.get("params") or {}
        if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
            raise path_error(
                f"{path}.params", f"must map parameter names to values; got {params!r}."
            )
        for key, value in params.items():
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError):
                raise path_error(
                    f"{path}.params.{key}", f"must be a JSON value; got {value!r}."
                ) from None
            if isinstance(value, str):
                _check_placeholders(value, f"{path}.params.{key}")
        timeout, cwd, cooldown = _process_options(d, path)
        frozen = tuple((k, json.dumps(v, sort_keys=True)) for k, v in params.items())
        return cls(name, frozen, timeout, cwd, cooldown)

    @property
    def values(self) -> dict[str, Any]:
        """The parameters as given (before placeholders are filled)."""
        return {k: json.loads(v) for k, v in self.params}

    def describe(self) -> str:
        given = " ".join(f"{k}={json.dumps(v)}" for k, v in self.values.items())
        return f"pipeline {self.pipeline}" + (f" {given}" if given else "")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pipeline": self.pipeline, "timeout": self.timeout}
        if self.params:
            out["params"] = self.values
        return out | _process_fields(self.cwd, self.cooldown)

    def run(self, alert: Mapping[str, Any], store: Any = None) -> dict[str, Any]:
        fill = placeholder_values(alert)
        params = {
            k: v.format_map(fill) if isinstance(v, str) else v for k, v in self.values.items()
        }
        trigger = f"alert:{alert.get('rule', '')}@{alert.get('id', '')}"[:512]
        argv = [sys.executable, "-m", "loopwise", "pipelines", "run", self.pipeline]
        argv += ["--trigger", trigger, "--json"]
        for key, value in params.items():  # as JSON, which --param reads back exactly
            argv += ["--param", f"{key}={json.dumps(value)}"]
        env = dict(os.environ) | {"LOOPWISE_ALERT": json.dumps(dict(alert), default=str)}
        if store is not None:
            env.pop("LOOPWISE_TRACKING_URL", None)  # the run goes to the alert's store
            env["LOOPWISE_STORE_URL"] = str(store.settings.store_url)
            env["LOOPWISE_ARTIFACTS_URL"] = str(store.settings.artifacts_url)
        record: dict[str, Any] = {
            "kind": self.kind,
            "pipeline": self.pipeline,
            "params": params,
            "trigger": trigger,
            "command": argv[1:],
            "timeout": self.timeout,
        }
        stdout: list[str] = []
        record = _run_process(argv, env, self.cwd, self.timeout, record, full_stdout=stdout)
        run = _last_json_object(stdout[0] if stdout else "")
        record["run_id"] = run.get("id") if run else None
        record["run_status"] = run.get("status") if run else None
        return record


def _last_json_object(text: str) -> dict[str, Any] | None:
    """The JSON object that ends ``text`` (``--json`` prints last; steps may print before)."""
    end = text.rstrip()
    start = len(end)
    while (start := end.rfind("{", 0, start)) >= 0:
        if start == 0 or end[start - 1] == "\n":
            try:
                found = json.loads(end[start:])
            except ValueError:
                continue
            return found if isinstance(found, dict) else None
    return None


#: Action kinds by the key that names them in a rule's ``action`` mapping.
ACTION_KINDS: dict[str, Any] = {"command": CommandAction, "pipeline": PipelineAction}


def parse_action(value: Any, path: str) -> Action:
    """Check a rule's ``action`` mapping and build the action of its kind."""
    if not isinstance(value, Mapping):
        raise path_error(path, "must be a mapping such as {command: [python, retrain.py]}.")
    kinds = [k for k in ACTION_KINDS if k in value]
    if len(kinds) != 1:
        raise path_error(
            path,
            f"name exactly one action kind ({', '.join(ACTION_KINDS)}); got "
            f"keys {', '.join(map(str, value)) or 'none'}.",
        )
    return ACTION_KINDS[kinds[0]].from_dict(value, path)


def parse_cooldown(value: Any, path: str) -> float | None:
    """Seconds of an action's ``cooldown``: a duration as a monitor's ``window`` is written
    (``30m``, ``6h``, ``1d``), seconds as a number, or None (no cooldown)."""
    if value is None:
        return None
    problem = (
        "must be a duration such as 30m, 6h or 1d, or seconds as a number > 0 (leave the "
        f"key out for no cooldown); got {value!r}."
    )
    if isinstance(value, bool):
        raise path_error(path, problem)
    if isinstance(value, int | float):
        if not math.isfinite(value) or value <= 0:
            raise path_error(path, problem)
        return float(value)
    try:
        return float(parse_duration(value, path))
    except InvalidInput as e:
        raise path_error(path, problem) from e


def placeholder_values(alert: Mapping[str, Any]) -> dict[str, Any]:
    """What ``{rule}``, ``{value}``, ... stand for in an action's arguments."""
    out = {k: alert.get(k) if alert.get(k) is not None else "" for k in PLACEHOLDERS}
    out["alert_id"] = alert.get("id", "")
    if isinstance(out["value"], float):
        out["value"] = _Figure(out["value"])
    return out


class _Figure(float):
    """A float that prints with 6 significant digits unless a format spec says otherwise."""

    def __format__(self, spec: str) -> str:
        return format(float(self), spec or ".6g")


def _check_placeholders(arg: str, path: str) -> None:
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(arg) if f is not None]
    except ValueError as e:
        raise path_error(path, f"{e} in {arg!r}; write {{{{ and }}}} for literal braces.") from e
    for name in fields:
        if name not in PLACEHOLDERS:
            raise path_error(
                path, f"unknown placeholder {{{name}}}{suggestion(name, PLACEHOLDERS)}"
            )
    sample = dict.fromkeys(PLACEHOLDERS, "x") | {"value": 0.5}
    try:
        arg.format_map(sample)
    except (ValueError, TypeError) as e:
        raise path_error(path, f"{arg!r} does not format: {e}.") from e


def _kill(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()


def _tail(f: Any) -> str:
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - TAIL_BYTES))
    text = f.read().decode("utf-8", errors="replace")
    return ("…" + text) if size > TAIL_BYTES else text


def _now() -> str:
    return clock_now().isoformat()


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def submit(fn: Callable[..., Any], *args: Any) -> Future:
    """Run ``fn(*args)`` on the action threads (at most :data:`MAX_ACTION_THREADS` at once)."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(MAX_ACTION_THREADS, thread_name_prefix="loopwise-action")
        return _executor.submit(fn, *args)
