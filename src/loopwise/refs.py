"""References: the one parser for ``runs:/<id or name>``, ``models:/name/3``,
``models:/name@alias``, ``datasets:/name/7``, ``datasets:/name@latest`` and
``endpoints:/name``.

The API, the CLI and (later) the REST server accept the same strings; a malformed one is
an :class:`~loopwise.errors.InvalidReference` that shows the accepted forms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from loopwise.errors import InvalidReference

KINDS = ("runs", "models", "datasets", "endpoints")
_FORMS = (
    "runs:/<run id>, runs:/<run name>, models:/<name>/<version>, models:/<name>@<alias>, "
    "datasets:/<name>/<version>, datasets:/<name>@latest, endpoints:/<name>"
)
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.\-]*"
_VERSIONED = re.compile(rf"^(?P<name>{_NAME})(?:/(?P<version>\d+)|@(?P<alias>{_NAME}))?$")


@dataclass(frozen=True)
class Ref:
    """A parsed reference. ``version`` and ``alias`` are None when not given."""

    kind: str
    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.kind}:/{self.name}/{self.version}"
        if self.alias is not None:
            return f"{self.kind}:/{self.name}@{self.alias}"
        return f"{self.kind}:/{self.name}"


def parse_ref(text: str, *, kind: str | None = None) -> Ref:
    """Parse a reference; with ``kind``, refuse references to anything else."""
    if not isinstance(text, str) or ":/" not in text:
        raise InvalidReference(f"{text!r} is not a reference. Use one of: {_FORMS}.")
    scheme, _, rest = text.partition(":/")
    if scheme not in KINDS:
        raise InvalidReference(
            f"Unknown reference kind {scheme!r} in {text!r}. Use one of: {_FORMS}."
        )
    if kind is not None and scheme != kind:
        raise InvalidReference(f"Expected a {kind}:/ reference, got {text!r}.")
    if scheme == "runs":
        # A run id or a run name; which run it is, is decided where the store is known.
        if not rest or rest != rest.strip():
            raise InvalidReference(
                f"{text!r} does not name a run: use runs:/<run id> or runs:/<run name> "
                "(no surrounding spaces)."
            )
        return Ref("runs", rest)
    match = _VERSIONED.fullmatch(rest)
    if match is None or (scheme == "endpoints" and (match["version"] or match["alias"])):
        raise InvalidReference(f"Cannot read {text!r}. Use one of: {_FORMS}.")
    version = int(match["version"]) if match["version"] else None
    return Ref(scheme, match["name"], version, match["alias"])


def run_id_of(text: str) -> str:
    """What a ``runs:/`` reference names (a run id or name); other text as it is.

    Turning a name into an id needs the store: :func:`loopwise.tracking.runs.resolve_run_id`.
    """
    if isinstance(text, str) and text.startswith("runs:/"):
        return parse_ref(text, kind="runs").name
    return text
