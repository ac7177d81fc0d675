"""An endpoint's declaration: which models it serves, with what traffic, under which flag.

Why: the traffic split, the shadows and the fallback are decisions a team reviews like code,
so they live in a small YAML file (``loopwise serve --config endpoint.yaml``)::

    name: credit-risk                  # the endpoint (prediction log, metrics, feedback)
    variants:                          # A/B: weights need not sum to 100
      - {name: champion, model: "models:/credit-risk@champion", weight: 90}
      - {name: challenger, model: "models:/credit-risk@challenger", weight: 10}
    shadows:                           # called off the request path; logged, not returned
      - {name: candidate, model: "models:/credit-risk/7"}
    sticky: true                       # a request's "routing_key" always picks one variant
    fallback: 0                        # what the endpoint answers while the model flag is off
    poll_interval: 2                   # seconds between checks of each alias
    max_body_bytes: 1000000
    log: {flush_interval: 1.0}         # prediction log; "log: false" turns it off
    docs: token                        # /docs, /redoc, /openapi.json: token, public or off
    cors_origins: []                   # web origins whose pages may call the API (none)

A single-model endpoint is ``EndpointConfig.single("models:/credit-risk@champion")``; the
walking skeleton (a constant answer, no model) is ``EndpointConfig.skeleton(0.5)``. The whole
document is checked when read, so a typo fails at start with its key path, not at the first
request.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopwise.errors import InvalidInput
from loopwise.ids import slug_pattern
from loopwise.param_errors import path_error, refuse_unknown_keys
from loopwise.refs import parse_ref

_NAME = slug_pattern()
_TOP = (
    "name", "variants", "shadows", "sticky", "fallback", "poll_interval", "max_body_bytes",
    "log", "smoke_tests", "docs", "cors_origins",
)  # fmt: skip
_VARIANT = ("name", "model", "weight")
_LOG = ("flush_interval",)
SKELETON = "skeleton"
#: Who may read the API documentation (``docs``): with ``token``, whoever holds a token
#: with the ``read`` permission once tokens are enabled (everyone before); with
#: ``public``, everyone; with ``off``, no one (the routes are not served).
DOCS_MODES = ("token", "public", "off")


@dataclass(frozen=True)
class VariantConfig:
    """One model behind the endpoint: a name, a ``models:/`` URI and a traffic weight."""

    name: str
    model: str
    weight: float = 1.0


@dataclass(frozen=True)
class EndpointConfig:
    """The checked form of an endpoint document (see the module doc)."""

    name: str
    variants: tuple[VariantConfig, ...] = ()
    shadows: tuple[VariantConfig, ...] = ()
    sticky: bool = True
    fallback: Any = None
    poll_interval: float = 2.0
    max_body_bytes: int = 1_000_000
    log: bool = True
    flush_interval: float = 1.0
    smoke_tests: tuple[Any, ...] = field(default=())
    docs: str = "token"
    cors_origins: tuple[str, ...] = ()

    @property
    def is_skeleton(self) -> bool:
        """True for the walking skeleton: no model, every answer is ``fallback``."""
        return not self.variants

    @classmethod
    def single(cls, uri: str, **options: Any) -> EndpointConfig:
        """One variant serving ``uri``; the endpoint is named after the model."""
        ref = parse_ref(uri, kind="models")
        document = {"name": ref.name, "variants": [{"name": "default", "model": uri}]}
        return cls.from_dict(document | options)

    @classmethod
    def skeleton(cls, answer: Any, *, name: str = SKELETON, **options: Any) -> EndpointConfig:
        """The walking skeleton: the real API, answering ``answer`` for every row."""
        _json_scalar(answer, "fallback")
        return cls.from_dict({"name": name, "fallback": answer} | options)

    @classmethod
    def from_dict(cls, d: Any) -> EndpointConfig:
        """Check a document (a mapping) and build the config; errors name the key path."""
        if not isinstance(d, dict):
            raise path_error("", f"an endpoint config must be a mapping; got {type(d).__name__}.")
        refuse_unknown_keys(d, _TOP, "")
        name = _name(d.get("name"), "name")
        variants = _variants(d.get("variants", []), "variants", weighted=True)
        shadows = _variants(d.get("shadows", []), "shadows", weighted=False)
        taken = [v.name for v in variants + shadows]
        for dup in sorted({n for n in taken if taken.count(n) > 1}):
            raise path_error("variants", f"variant name {dup!r} is used twice; names must differ.")
        if shadows and not variants:
            raise path_error("shadows", "shadows need at least one variant to follow.")
        fallback = d.get("fallback")
        if fallback is not None:
            _json_scalar(fallback, "fallback")
        if not variants and fallback is None:
            raise path_error(
                "variants",
                "list at least one variant (name, model, weight), or give a 'fallback' "
                "answer for a walking skeleton.",
            )
        sticky = d.get("sticky", True)
        if not isinstance(sticky, bool):
            raise path_error("sticky", f"must be true or false; got {sticky!r}.")
        log, flush_interval = _log(d.get("log", True))
        smoke = ()
        if d.get("smoke_tests") is not None:
            from loopwise.evaluation.policy import Policy

            try:
                smoke = Policy.from_dict({"smoke_tests": d["smoke_tests"]}).smoke_tests
            except InvalidInput as e:
                raise path_error("", str(e)) from e
        return cls(
            name=name,
            variants=variants,
            shadows=shadows,
            sticky=sticky,
            fallback=fallback,
            poll_interval=_positive(d.get("poll_interval", 2.0), "poll_interval"),
            max_body_bytes=int(_positive(d.get("max_body_bytes", 1_000_000), "max_body_bytes")),
            log=log,
            flush_interval=flush_interval,
            smoke_tests=smoke,
            docs=_docs(d.get("docs", "token")),
            cors_origins=_origins(d.get("cors_origins", [])),
        )

    @classmethod
    def load(cls, path: str | Path) -> EndpointConfig:
        """Read an endpoint config from a YAML (or JSON) file."""
        from loopwise.documents import load_document

        return load_document(path, "endpoint config", cls.from_dict)

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data, as it would be written in YAML."""
        out: dict[str, Any] = {"name": self.name}
        if self.variants:
            out["variants"] = [vars(v).copy() for v in self.variants]
        if self.shadows:
            out["shadows"] = [{"name": s.name, "model": s.model} for s in self.shadows]
        out |= {"sticky": self.sticky, "fallback": self.fallback}
        out |= {"poll_interval": self.poll_interval, "max_body_bytes": self.max_body_bytes}
        out["log"] = {"flush_interval": self.flush_interval} if self.log else False
        out["docs"] = self.docs
        if self.cors_origins:
            out["cors_origins"] = list(self.cors_origins)
        return out


def check_endpoint_name(name: Any) -> str:
    """An endpoint name, checked: it becomes a path in the prediction log and a label."""
    try:
        return _name(name, "endpoint name")
    except InvalidInput as e:
        raise InvalidInput(f"{e} Example: 'credit-risk'.") from None


def _name(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise path_error(
            path,
            f"must be lower-case letters, digits, '-' or '_' (at most 63); got {value!r}.",
        )
    return value


def _positive(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise path_error(path, f"must be a number > 0; got {value!r}.")
    if not math.isfinite(value):
        raise path_error(path, f"must be finite; got {value!r}.")
    return float(value)


def _json_scalar(value: Any, path: str) -> None:
    ok = (
        value is None
        or isinstance(value, str | bool | int)
        or (isinstance(value, float) and math.isfinite(value))
    )
    if not ok:
        raise path_error(path, f"must be a number, text or true/false; got {value!r}.")


def _variants(value: Any, path: str, *, weighted: bool) -> tuple[VariantConfig, ...]:
    if not isinstance(value, list):
        raise path_error(path, f"must be a list of {{name, model}} entries; got {value!r}.")
    out = []
    for i, item in enumerate(value):
        where = f"{path}[{i}]"
        if not isinstance(item, dict):
            raise path_error(where, f"must be a mapping with name and model; got {item!r}.")
        refuse_unknown_keys(item, _VARIANT if weighted else _VARIANT[:2], where)
        model = item.get("model")
        if not isinstance(model, str) or not model.startswith("models:/"):
            raise path_error(f"{where}.model", f"must be a models:/ URI; got {model!r}.")
        try:
            parse_ref(model, kind="models")
        except InvalidInput as e:
            raise path_error(f"{where}.model", str(e)) from e
        weight = item.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight >= 0:
            raise path_error(f"{where}.weight", f"must be a number ≥ 0; got {weight!r}.")
        out.append(VariantConfig(_name(item.get("name"), f"{where}.name"), model, float(weight)))
    if weighted and out and not sum(v.weight for v in out) > 0:
        raise path_error(path, "at least one variant needs a weight above 0.")
    return tuple(out)


def _log(value: Any) -> tuple[bool, float]:
    if isinstance(value, bool):
        return value, 1.0
    if not isinstance(value, dict):
        raise path_error(
            "log", f"must be false or a mapping such as {{flush_interval: 1}}; got {value!r}."
        )
    refuse_unknown_keys(value, _LOG, "log")
    return True, _positive(value.get("flush_interval", 1.0), "log.flush_interval")


def _docs(value: Any) -> str:
    if value is False:  # YAML reads an unquoted ``docs: off`` as false
        return "off"
    if isinstance(value, str) and value in DOCS_MODES:
        return value
    hint = " (YAML reads an unquoted on, yes or true as true)" if value is True else ""
    raise path_error(
        "docs",
        "must be 'token' (a token with the read permission, once tokens are enabled), "
        f"'public' (open to anyone) or 'off' (not served); got {value!r}{hint}.",
    )


_ORIGIN = re.compile(r"https?://[^/\s]+")


def _origins(value: Any) -> tuple[str, ...]:
    """Web origins allowed to call the API from a browser (CORS): none by default."""
    if not isinstance(value, list):
        raise path_error("cors_origins", f"must be a list of origins; got {value!r}.")
    for i, origin in enumerate(value):
        if origin != "*" and not (isinstance(origin, str) and _ORIGIN.fullmatch(origin)):
            raise path_error(
                f"cors_origins[{i}]",
                "must be an origin such as 'https://app.example.com' (scheme, host and "
                f"optional port; no path) or '*' for any; got {origin!r}.",
            )
    return tuple(value)
