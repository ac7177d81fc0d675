"""The loopwise error tree.

Every failure a user can cause raises a subclass of :class:`LoopwiseError`. Its message
names the thing at fault (a run id, a key, a value, a URL) and says how to fix it. Each
class carries the HTTP status the REST server answers with, so no bad input ever becomes
a 500.

::

    LoopwiseError                 500  root; never raised directly
    ├── InvalidInput              400  a value, key, name or argument is not acceptable
    │   ├── InvalidFilter         400  a search filter or order_by does not parse
    │   ├── InvalidReference      400  a "runs:/...", "models:/..." URI is malformed
    │   └── DataValidationError   400  data failed its schema; ``.report`` holds every anomaly
    ├── ConfigurationError        400  settings, loopwise.toml or a store URL is wrong
    ├── Unauthorized              401  no API token, or one that is unknown, expired or revoked
    ├── Forbidden                 403  the API token's role lacks the permission a route needs
    ├── NotFound                  404  no such run, experiment, artifact ...
    ├── Conflict                  409  the request contradicts stored state
    │   └── ParamConflict         409  a param was logged again with another value
    ├── StoreUnavailable          503  the metadata database or artifact store is unreachable
    └── NoActiveRun               400  a fluent call was made outside ``start_run``
"""

from __future__ import annotations

from typing import Any


class LoopwiseError(Exception):
    """Root of every error loopwise raises on purpose."""

    http_status: int = 500


class InvalidInput(LoopwiseError, ValueError):
    """A value, key, name or argument given by the user is not acceptable."""

    http_status = 400


class InvalidFilter(InvalidInput):
    """A search filter or an ``order_by`` clause does not parse."""


class InvalidReference(InvalidInput):
    """A reference such as ``runs:/<id>`` or ``models:/name@alias`` is malformed."""


class DataValidationError(InvalidInput):
    """Data failed validation; ``.report`` (a ``ValidationReport``) holds every anomaly."""

    def __init__(self, report: Any, *, what: str = "data") -> None:
        self.report = report
        errors = report.errors
        shown = "; ".join(f"{a.kind} {a.column or ''}: {a.message}" for a in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        counted = f"{len(errors)} error" + ("" if len(errors) == 1 else "s")
        super().__init__(
            f"{what} failed validation with {counted}: {shown}{more}. "
            "See report.summary() or report.to_html(path)."
        )


class ConfigurationError(LoopwiseError):
    """Settings from arguments, environment or ``loopwise.toml`` are wrong."""

    http_status = 400


class Unauthorized(LoopwiseError):
    """A request carries no API token, or one that is unknown, expired or revoked."""

    http_status = 401


class Forbidden(LoopwiseError):
    """A valid API token's role does not grant the permission the request needs."""

    http_status = 403


class NotFound(LoopwiseError, LookupError):
    """The named entity does not exist in the store."""

    http_status = 404


class Conflict(LoopwiseError):
    """The request contradicts what the store already holds."""

    http_status = 409


class ParamConflict(Conflict):
    """A parameter was logged a second time with a different value (params are immutable)."""


class StoreUnavailable(LoopwiseError):
    """The metadata database or the artifact store cannot be reached."""

    http_status = 503


class NoActiveRun(LoopwiseError):
    """A module-level logging call was made while no run is active."""

    http_status = 400
