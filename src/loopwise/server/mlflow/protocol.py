"""MLflow's REST protocol on the loopwise server: its error shape, its request bodies and
the wrapper every MLflow route runs in.

Why a wrapper rather than the API's own error handlers: an MLflow client reads errors as
``{"error_code", "message"}`` with MLflow's codes, and it retries a 5xx for minutes, so
every refusal of a caller's mistake must be a 4xx in that shape -- a loopwise error, a bad
body, a missing token alike. The wrapper checks the token (the server's tokens; an MLflow
client sends ``MLFLOW_TRACKING_TOKEN`` as ``Authorization: Bearer``), reads the body once
(JSON, bounded in size and depth; MLflow's client spells non-finite numbers ``"NaN"`` and
``"Infinity"`` as strings, and Python's ``NaN`` literal is read too), runs the handler off
the event loop and answers its dict as JSON.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from loopwise.errors import (
    Conflict,
    DataValidationError,
    Forbidden,
    InvalidInput,
    LoopwiseError,
    NotFound,
    ParamConflict,
    StoreUnavailable,
    Unauthorized,
)
from loopwise.server.access import authorize

logger = logging.getLogger(__name__)

#: The largest JSON body an MLflow route reads (a log-batch of 1,000 metrics is ~100 KB).
MAX_BODY_BYTES = 16 * 1024 * 1024
#: The deepest nesting an MLflow body may have (its messages are two or three deep).
MAX_DEPTH = 32

INVALID = "INVALID_PARAMETER_VALUE"
MISSING = "RESOURCE_DOES_NOT_EXIST"
EXISTS = "RESOURCE_ALREADY_EXISTS"
UNSUPPORTED = "NOT_IMPLEMENTED"


class MlflowApiError(Exception):
    """A refusal in MLflow's terms: its error code, an HTTP status and a message."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


def invalid(message: str) -> MlflowApiError:
    """400 INVALID_PARAMETER_VALUE."""
    return MlflowApiError(INVALID, message)


def unsupported(what: str) -> MlflowApiError:
    """501 NOT_IMPLEMENTED, naming what loopwise does not do and where it is listed."""
    return MlflowApiError(
        UNSUPPORTED,
        f"{what} is not supported by loopwise's MLflow API; docs/mlflow.md lists what is.",
        501,
    )


class MlflowJSON(JSONResponse):
    """An answer's JSON, written by orjson: a search page of a hundred runs is ~150 KB,
    which the standard library writes in a few milliseconds and orjson in a tenth of that.
    Metric values reach it already spelled as MLflow spells non-finite numbers ("NaN",
    "Infinity": :func:`loopwise.server.mlflow.entities.double`), so orjson's own writing
    of a float NaN as null never happens to a value."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_body(code: str, message: str, status: int) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


def _from_loopwise(error: LoopwiseError) -> tuple[str, int]:
    """MLflow's code and status for a loopwise error."""
    if isinstance(error, NotFound):
        return MISSING, 404
    if isinstance(error, Unauthorized):
        return "UNAUTHENTICATED", 401
    if isinstance(error, Forbidden):
        return "PERMISSION_DENIED", 403
    if isinstance(error, ParamConflict | InvalidInput | DataValidationError):
        return INVALID, 400
    if isinstance(error, Conflict):
        return EXISTS, 400
    if isinstance(error, StoreUnavailable):
        return "TEMPORARILY_UNAVAILABLE", 503
    status = getattr(error, "http_status", 400)
    return (INVALID, 400) if 400 <= status < 500 else ("INTERNAL_ERROR", 500)


def _from_http(error: HTTPException) -> tuple[str, int]:
    codes = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: MISSING, 413: INVALID}
    status = 400 if error.status_code == 413 else error.status_code
    return codes.get(error.status_code, INVALID), status


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def _finite(text: str) -> float:
    """A JSON number as a float, refused when it is past the float range (``1e400``):
    stored, it would be an infinity nobody sent."""
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:40]} is too large for a double")
    return value


async def read_json(request: Request) -> dict[str, Any]:
    """The request's JSON object (an empty one without a body), bounded and checked."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise invalid(f"the body is larger than {MAX_BODY_BYTES:,} bytes; send less at a time.")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise invalid(f"the body is larger than {MAX_BODY_BYTES:,} bytes; send less at a time.")
    if not raw.strip():
        return {}
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        # A JSON content type forces a browser's CORS preflight: no web page can make its
        # visitors write to a server on their machine with a plain form post.
        raise MlflowApiError(
            INVALID,
            f"The body must be sent as application/json, not {kind[:100] or 'no type'!r}.",
            415,
        )
    try:
        body = json.loads(bytes(raw), parse_float=_finite)
    except RecursionError:
        raise invalid(f"the body is nested deeper than {MAX_DEPTH} levels.") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise invalid(f"the body is not JSON: {str(e)[:200]}.") from None
    if not isinstance(body, dict):
        raise invalid(f"the body must be a JSON object, got {type(body).__name__}.")
    if _depth(body) > MAX_DEPTH:
        raise invalid(f"the body is nested deeper than {MAX_DEPTH} levels.")
    return body


async def guarded(
    request: Request, permission: str, work: Callable[[], Awaitable[Any]]
) -> Response:
    """Check the caller's token for ``permission``, await ``work()`` and answer its dict as
    JSON (a Response as it is); every failure becomes MLflow's error body."""
    try:
        authorize(request, permission)  # in memory: no thread hop (scopes: per handler)
        answer = await work()
    except MlflowApiError as e:
        return error_body(e.code, e.message, e.status)
    except LoopwiseError as e:
        code, status = _from_loopwise(e)
        if status >= 500:
            logger.exception("MLflow route %s failed", request.url.path)
        return error_body(code, str(e), status)
    except HTTPException as e:
        code, status = _from_http(e)
        return error_body(code, str(e.detail), status)
    except Exception:
        logger.exception("MLflow route %s failed", request.url.path)
        return error_body(
            "INTERNAL_ERROR", "loopwise failed on this request; see the server log.", 500
        )
    return answer if isinstance(answer, Response) else MlflowJSON(answer)


def endpoint(permission: str, *, body: bool = True) -> Callable[..., Any]:
    """Wrap ``handler(request, message)`` -- ``message`` is the JSON body for a write
    (``body=True``) or the query parameters for a read -- as an MLflow route; the handler
    runs off the event loop."""

    def wrap(handler: Callable[..., dict[str, Any] | Response]) -> Callable[..., Any]:
        async def route(request: Request) -> Response:
            async def work() -> Any:
                # A write's fields come in its JSON body (a DELETE's may come in the query).
                message = (
                    {**_query(request), **await read_json(request)} if body else _query(request)
                )
                return await run_in_threadpool(handler, request, message)

            return await guarded(request, permission, work)

        # Not functools.wraps: FastAPI would read the handler's signature as the route's.
        route.__name__, route.__doc__ = handler.__name__, handler.__doc__
        return route

    return wrap


def _query(request: Request) -> dict[str, Any]:
    """Query parameters as a message: repeated keys become lists (``experiment_ids``)."""
    message: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        if key in message:
            held = message[key]
            message[key] = [*held, value] if isinstance(held, list) else [held, value]
        else:
            message[key] = value
    return message


# -- fields of a message ---------------------------------------------------------------------


def text(message: dict[str, Any], field: str, *, required: bool = True, limit: int = 10_000) -> Any:
    """A text field; INVALID_PARAMETER_VALUE naming it when missing or not text."""
    value = message.get(field)
    if value is None or value == "":
        if required:
            raise invalid(f"Missing value for required parameter '{field}'.")
        return None
    if not isinstance(value, str):
        raise invalid(f"Parameter '{field}' must be a string, got {type(value).__name__}.")
    if len(value) > limit or "\x00" in value:
        raise invalid(f"Parameter '{field}' must be at most {limit:,} characters, without NUL.")
    return value


def integer(message: dict[str, Any], field: str, *, default: int | None = None) -> int | None:
    """An int64 field (MLflow's clients send some as strings); None when absent."""
    value = message.get(field)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise invalid(f"Parameter '{field}' must be an integer, got {value!r}.")
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise invalid(f"Parameter '{field}' must be an integer, got {value[:40]!r}.") from None
    if isinstance(value, float):
        if not value.is_integer():
            raise invalid(f"Parameter '{field}' must be an integer, got {value!r}.")
        value = int(value)
    if not isinstance(value, int) or not -(2**63) <= value < 2**63:
        raise invalid(f"Parameter '{field}' must be a 64-bit integer, got {str(value)[:40]}.")
    return value


def number(value: Any, field: str) -> float:
    """A double as MLflow sends it: a number, or "NaN" / "Infinity" / "-Infinity"."""
    if isinstance(value, str):
        spelled = {"nan": math.nan, "infinity": math.inf, "-infinity": -math.inf}
        found = spelled.get(value.strip().lower())
        if found is None:
            try:
                parsed = float(value)
            except ValueError:
                raise invalid(
                    f"Parameter '{field}' must be a number, got {value[:40]!r}."
                ) from None
            if not math.isfinite(parsed):  # "1e400": no one meant an infinity
                raise invalid(f"Parameter '{field}' is too large for a double: {value[:40]!r}.")
            return parsed
        return found
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(f"Parameter '{field}' must be a number, got {type(value).__name__}.")
    try:
        return float(value)
    except OverflowError:
        raise invalid(f"Parameter '{field}' is too large for a double.") from None


def items(message: dict[str, Any], field: str, *, limit: int = 10_000) -> list[dict[str, Any]]:
    """A repeated message field (a list of objects), possibly absent."""
    value = message.get(field)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise invalid(f"Parameter '{field}' must be a list of objects.")
    if len(value) > limit:
        raise invalid(f"Parameter '{field}' holds {len(value):,} items; at most {limit:,}.")
    return value


def run_id_of(message: dict[str, Any]) -> str:
    """The run a message names: ``run_id``, or ``run_uuid`` as older clients send it."""
    run_id = text(message, "run_id", required=False, limit=256)
    run_uuid = text(message, "run_uuid", required=False, limit=256)
    if run_id is None and run_uuid is None:
        raise invalid("Missing value for required parameter 'run_id'.")
    return run_id or run_uuid


__all__ = [
    "MlflowApiError",
    "endpoint",
    "error_body",
    "guarded",
    "integer",
    "invalid",
    "items",
    "number",
    "read_json",
    "run_id_of",
    "text",
    "unsupported",
]
