"""Errors for a bad parameter or a bad key in a config document, each written one way.

Two templates, so every message reads the same wherever the check sits:

- a function's parameter (scikit-learn's wording): ``The 'alpha' parameter of detect_drift
  must be a share in (0, 1]. Got -1 instead.``
- a key path in a document (monitor, gate policy, alert rules, endpoint config), with the
  closest known name when there is one: ``checks.feature_drift.method: unknown test 'pis' —
  did you mean 'psi'?``, else the names to choose from.

And one for a renamed parameter or attribute (``label`` -> ``target``, ``since`` ->
``start``): :func:`renamed` takes the old name with a DeprecationWarning that names the new
one, and refuses both at once (neither can be taken silently without dropping what the
caller meant by the other). The warning points at the caller's line (``stacklevel``), so
pytest's "deprecations raised from loopwise modules are errors" rule catches loopwise code
still using an old name, and a user's warning shows their own line.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from loopwise.errors import InvalidInput


def bad_param(func: str, name: str, rule: str, value: Any) -> InvalidInput:
    """``The 'name' parameter of func must be rule. Got value instead.``"""
    return InvalidInput(f"The {name!r} parameter of {func} must be {rule}. Got {value!r} instead.")


def path_error(path: str, problem: str) -> InvalidInput:
    """``path: problem`` (just the problem at the top of a document, where the path is empty)."""
    return InvalidInput(f"{path}: {problem}" if path else problem)


def join_path(path: str, key: object) -> str:
    """The path of ``key`` inside ``path``: ``checks`` + ``schema`` -> ``checks.schema``."""
    return f"{path}.{key}" if path else str(key)


def closest(value: object, choices: Iterable[str]) -> str | None:
    """The choice ``value`` most likely meant (the closest spelling, or one that contains
    it), or None."""
    import difflib  # only when a check fails: importing this module stays cheap

    names = list(choices)
    close = difflib.get_close_matches(str(value), names, n=1) or [
        name for name in names if str(value).lower() in name
    ]
    return close[0] if close else None


def suggestion(value: object, choices: Iterable[str]) -> str:
    """`` — did you mean 'x'?`` for the :func:`closest` choice, else `` — expected one of: a,
    b, c.``"""
    names = list(choices)
    close = closest(value, names)
    if close is not None:
        return f" — did you mean {close!r}?"
    return f" — expected one of: {', '.join(names)}."


def refuse_unknown_keys(data: Mapping[str, Any], allowed: Sequence[str], path: str) -> None:
    """An InvalidInput at the first key of ``data`` that is not ``allowed``: a typo in a
    document fails with its path instead of being ignored."""
    for key in data:
        if key not in allowed:
            raise path_error(join_path(path, key), f"unknown key {key!r}{suggestion(key, allowed)}")


def check_choice(value: Any, choices: Sequence[str], path: str, what: str) -> str:
    """``value`` when it is one of ``choices``; otherwise ``path: unknown <what> 'value' — did
    you mean ...``."""
    if value in choices:
        return value
    raise path_error(path, f"unknown {what} {value!r}{suggestion(value, choices)}")


def renamed(
    func: str, new: str, new_value: Any, old: str, old_value: Any, *, stacklevel: int = 3
) -> Any:
    """The value to use for parameter ``new`` of ``func``, given a call that may have used
    its former name ``old`` (None: not given). ``stacklevel`` counts from here: the default
    3 is the caller of ``func`` when ``func`` calls this directly."""
    if old_value is None:
        return new_value
    if new_value is not None:
        raise InvalidInput(
            f"{func} takes {new!r} or its deprecated name {old!r}, not both. "
            f"Got {new}={new_value!r} and {old}={old_value!r}; drop {old!r}."
        )
    warnings.warn(
        f"{func}({old}=...) is deprecated; use {func}({new}=...).",
        DeprecationWarning,
        stacklevel=stacklevel,
    )
    return old_value


def renamed_attribute(owner: str, new: str, old: str, *, stacklevel: int = 3) -> None:
    """Warn that attribute ``owner.old`` is now ``owner.new`` (called from the property that
    keeps the old name working)."""
    warnings.warn(
        f"{owner}.{old} is deprecated; use {owner}.{new}.",
        DeprecationWarning,
        stacklevel=stacklevel,
    )
