"""Every write through the REST API, recorded in the audit log (:mod:`loopwise.auth.audit`).

:class:`AuditLog` is ASGI middleware around the whole app. For each ``POST``, ``PUT``,
``PATCH`` and ``DELETE`` under ``/api/v1`` (and each write of MLflow's API, whose searches
are POSTs but not writes) it notes the answer's status and, before the
answer's last bytes go out, records who (the token the route's permission check accepted,
see :mod:`.access`; ``anonymous`` otherwise), what (method, path, status, entity) and when.
Recording before the answer completes means a client that has its answer can already read
the event; refused writes (400, 401, 403, 404 ...) are recorded too.

The entity is what the route named with :func:`note_entity` (``models:/credit-risk/3``),
else the path's first two segments after ``/api/v1`` (``endpoints/credit-risk``).

Recording runs on a worker thread (the event loop never waits on the database). If it
fails, the failure is logged and the answer goes out unchanged: the write has happened,
and refusing to say so would only make the caller retry it.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import anyio
from fastapi import Request

from loopwise.auth.audit import ANONYMOUS, record_audit_event
from loopwise.server.body import ASGIApp, Message, Receive, Scope, Send
from loopwise.store import Store

logger = logging.getLogger(__name__)

PREFIX = "/api/v1/"
#: MLflow's API (:mod:`loopwise.server.mlflow`) writes through these too.
MLFLOW_PREFIXES = ("/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/", "/api/2.0/mlflow-artifacts/")
#: MLflow's reads sent as POST: not writes.
MLFLOW_READS = ("/runs/search", "/experiments/search", "/logged-models/search")
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_ENTITY = "audit_entity"


def note_entity(request: Request, entity: str) -> None:
    """Name what this write touched in its audit event (a reference such as
    ``runs:/<id>`` or ``models:/credit-risk/3``), instead of the path's first segments."""
    request.state.audit_entity = entity


def path_entity(path: str) -> str | None:
    """``endpoints/credit-risk`` for ``/api/v1/endpoints/credit-risk/feedback`` (and
    ``mlflow/runs`` for MLflow's ``/api/2.0/mlflow/runs/log-batch``)."""
    if not path.startswith(PREFIX):
        parts = [p for p in path.split("/") if p]
        return "/".join(["mlflow", *parts[3:4]]) if len(parts) > 3 else None
    parts = [p for p in path[len(PREFIX) :].split("/") if p]
    return "/".join(parts[:2]) or None


def audited(method: str, path: str) -> bool:
    """True for a write of loopwise's API or of MLflow's."""
    if method not in WRITES:
        return False
    if path.startswith(PREFIX):
        return True
    return path.startswith(MLFLOW_PREFIXES) and not path.endswith(MLFLOW_READS)


class AuditLog:
    """ASGI middleware: one audit event per write under ``/api/v1`` (see the module doc)."""

    def __init__(self, app: ASGIApp, store: Store) -> None:
        self.app, self.store = app, store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not audited(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        status = 500
        recorded = False

        async def record() -> None:
            nonlocal recorded
            if recorded:
                return
            recorded = True
            token = state.get("token")
            await anyio.to_thread.run_sync(
                partial(
                    self._record,
                    actor=ANONYMOUS if token is None else token.name,
                    token_id=None if token is None else token.id,
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    entity=state.get(_ENTITY) or path_entity(scope["path"]),
                )
            )

        async def send_recorded(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                await record()
            await send(message)

        try:
            await self.app(scope, receive, send_recorded)
        except Exception:
            status = 500
            await record()  # the outer error handler answers 500
            raise

    def _record(self, **event: Any) -> None:
        try:
            record_audit_event(self.store, **event)
        except Exception:  # the write happened: say so to the caller, log the miss
            logger.exception(
                "cannot record the audit event of %s %s", event["method"], event["path"]
            )


__all__ = ["AuditLog", "audited", "note_entity", "path_entity"]
