"""References: the one parser for ``runs:/<id>``, ``models:/name/3``, ``models:/name@alias``,
``datasets:/name/7``, ``datasets:/name@latest`` and ``endpoints:/name``.

The API, the CLI and (later) the REST server accept the same strings; a malformed one is
an :class:`~loopwise.errors.InvalidReference` that shows the accepted forms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from loopwise.errors import InvalidReference

KINDS = ("runs", "models", "datasets", "endpoints")
_FORMS = (
    "runs:/<run id>, models:/<name>/<version>, models:/<name>@<alias>, "
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
        if not re.fullmatch(r"[0-9a-z]{26}", rest):
            raise InvalidReference(
                f"{text!r} does not name a run: expected runs:/ followed by a 26-character id."
            )
        return Ref("runs", rest)
    match = _VERSIONED.fullmatch(rest)
    if match is None or (scheme == "endpoints" and (match["version"] or match["alias"])):
        raise InvalidReference(f"Cannot read {text!r}. Use one of: {_FORMS}.")
    version = int(match["version"]) if match["version"] else None
    return Ref(scheme, match["name"], version, match["alias"])


def run_id_of(text: str) -> str:
    """A run id from either a bare id or a ``runs:/<id>`` reference."""
    if isinstance(text, str) and text.startswith("runs:/"):
        return parse_ref(text, kind="runs").name
    return text
