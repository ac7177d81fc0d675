"""What the prediction app's OpenAPI document says of each route: request bodies and every
status a route answers, with its body.

Why by hand: the routes parse their bodies themselves (a missing field is a 400, not
FastAPI's 422), so FastAPI cannot see their schemas; without this the document would list
only a 200 and no ``/feedback`` body, and a client generated from it, or a schema-driven
test (schemathesis), would disagree with the server. ``tests/serving/test_openapi_
conformance.py`` runs schemathesis with every check against a live app to hold the two
together.
"""

from __future__ import annotations

from typing import Any

from loopwise.ids import ID_PATTERN
from loopwise.registry.signature import Signature
from loopwise.serving.request_io import MAX_LABEL_CHARS

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {
                "type": {"type": "string"},
                "message": {"type": "string"},
                "request_id": {"type": "string"},
            },
        }
    },
}

_WHY = {
    400: "The request is malformed, or its inputs do not match the model (see the message).",
    401: "API tokens are enabled and the request has no valid token.",
    403: "The token lacks the permission this route needs.",
    404: "Feedback for a request id this endpoint never answered, or a row it did not have.",
    409: "The endpoint keeps no prediction log, so feedback cannot be recorded.",
    413: "The body is over the endpoint's size limit.",
    415: "The body is not declared as JSON (send Content-Type: application/json).",
    500: "The model failed on valid input; the server log has the details.",
    503: "No model is loaded yet.",
}

_ANY_CELL = {"description": "A value of the column (a number, text, true/false or null)."}
_INT64 = {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}
_FLOAT_MAX = 1.7976931348623157e308
_BOOLEAN = {"type": "boolean"}
_CELLS = {  # the values each signature column type takes (as check_input casts them)
    "integer": [_INT64, _BOOLEAN],
    "float": [{"type": "number"}, _BOOLEAN],
    "boolean": [_BOOLEAN],
    "string": [{"type": "string"}],
    "datetime": [{"type": "string", "format": "date-time"}],
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` entries of the error statuses a route answers."""
    return {
        status: {"description": _WHY[status], "content": {"application/json": {"schema": _ERROR}}}
        for status in statuses
    }


def json_answer(description: str, schema: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """A 200 with a JSON body of ``schema``."""
    return {200: {"description": description, "content": {"application/json": {"schema": schema}}}}


def predict_openapi(signature: Signature | None, example_row: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` of ``POST /predict``: its body (typed by the model's ``signature``
    when it has one) and every answer."""
    body = {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "inputs": _inputs(signature),
            "proba": {"type": "boolean", "default": False},
            "routing_key": {
                "oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}],
                "description": "Keeps a caller on one variant (null: none).",
            },
        },
    }
    answer = {
        "type": "object",
        "required": ["predictions", "model", "request_id", "variant"],
        "properties": {
            "predictions": {"type": "array", "description": "One per row; null if not finite."},
            "probabilities": {"type": "array", "items": {"type": "array"}},
            "model": {"type": "string"},
            "request_id": {"type": "string"},
            "variant": {"type": "string"},
            "non_finite_rows": {
                "type": "array",
                "items": {"type": "integer"},
                "description": "Rows whose prediction the model gave as NaN or an infinity.",
            },
        },
    }
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": body, "example": {"inputs": [example_row]}}},
        },
        "responses": json_answer("The predictions.", answer)
        | errors(400, 401, 403, 413, 415, 500, 503),
    }


def _inputs(signature: Signature | None) -> dict[str, Any]:
    """The schema of ``inputs``: records or columns, of the signature's columns if known."""
    if signature is None or not signature.inputs or signature.is_tensor:
        cell = {"type": "array"} if signature is not None and signature.is_tensor else _ANY_CELL
        records: dict[str, Any] = {"type": "object", "additionalProperties": cell}
        columns: dict[str, Any] = {"type": "object", "minProperties": 1}
        columns["additionalProperties"] = {"not": {"type": "array", "maxItems": 0}}
    else:
        names = signature.input_names
        cells = {c.name: {"anyOf": [*_CELLS[c.type], {"type": "null"}]} for c in signature.inputs}
        records = {"properties": cells}
        columns = {
            "properties": {
                name: {"oneOf": [{"type": "array", "minItems": 1, "items": cell}, cell]}
                for name, cell in cells.items()
            }
        }
        for form in (records, columns):
            form |= {"type": "object", "required": names, "additionalProperties": False}
    records_form = {
        "type": "array",
        "minItems": 1,
        "items": records,
        "description": "Records: one object per row (null: a missing value).",
    }
    columns_form = columns | {
        "description": "Columns: a list of values per column, all of one length (or one "
        "value per column for one row)."
    }
    return {"oneOf": [records_form, columns_form]}


def feedback_openapi() -> dict[str, Any]:
    """``openapi_extra`` of ``POST /feedback``: its body and every answer."""
    body = {
        "type": "object",
        "required": ["request_id", "label"],
        "additionalProperties": False,
        "properties": {
            "request_id": {"type": "string", "pattern": f"^{ID_PATTERN}$"},
            "label": {
                "oneOf": [
                    {"type": "number", "minimum": -_FLOAT_MAX, "maximum": _FLOAT_MAX},
                    {"type": "string", "minLength": 1, "maxLength": MAX_LABEL_CHARS},
                    {"type": "boolean"},
                ]
            },
            "row": {
                "oneOf": [
                    {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
                    {"type": "null"},
                ],
                "description": "The row of the request this label is for (null: every row).",
            },
        },
    }
    answer = {
        "type": "object",
        "required": ["status", "request_id"],
        "properties": {"status": {"type": "string"}, "request_id": {"type": "string"}},
    }
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": json_answer("The label was recorded.", answer)
        | errors(400, 401, 403, 404, 409, 413, 415),
    }


def metrics_openapi() -> dict[str, Any]:
    """``openapi_extra`` of ``GET /metrics``: Prometheus text, not JSON."""
    text = {"text/plain": {"schema": {"type": "string"}}}
    return {
        "responses": {200: {"description": "Prometheus text format.", "content": text}}
        | errors(401, 403)
    }


def status_openapi(description: str, *statuses: int) -> dict[str, Any]:
    """``openapi_extra`` of a ``GET`` route answering a JSON object, or ``statuses``."""
    return {"responses": json_answer(description, {"type": "object"}) | errors(*statuses)}
