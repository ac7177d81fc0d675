"""Names: readable run names, and the rule that param, metric and tag keys must follow.

Runs get a memorable default name (``brave-otter-42``) so people can talk about them
without copying ULIDs around.

Keys are checked against a rule. The default, ``printable``, takes the keys that
libraries already produce (scikit-learn's ``clf__C``, Keras' ``val_loss``, Lightning's
``lr-Adam``, XGBoost's ``validation_0-logloss``, ``f1 (macro)``), so
``lw.log_params(pipe.get_params())`` just works; it refuses only what breaks display,
filtering or storage: empty keys, control and invisible characters, surrounding spaces,
lone surrogates. Projects that want one spelling opt in to ``snake_case`` (or
``kebab-case``, or a regex), so that ``learningRate``, ``learning-rate`` and
``learning_rate`` do not end up as three different columns; a rejected key comes with
the spelling to use instead.
"""

from __future__ import annotations

import functools
import random
import re
import unicodedata
from dataclasses import dataclass, field

from loopwise.errors import ConfigurationError, InvalidInput

__all__ = ["DEFAULT_KEY_RULE", "MAX_KEY_LENGTH", "NamingRule", "generate_run_name", "naming_rule"]

MAX_KEY_LENGTH = 250

_ADJECTIVES = (
    "agile", "amber", "bold", "brave", "bright", "brisk", "calm", "cheerful", "clever",
    "cosy", "curious", "daring", "dazzling", "eager", "easy", "fancy", "fearless", "festive",
    "fluffy", "friendly", "gentle", "giddy", "glad", "golden", "graceful", "happy", "hardy",
    "honest", "humble", "jolly", "keen", "kind", "lively", "lucky", "mellow", "merry",
    "mighty", "nimble", "noble", "patient", "peppy", "plucky", "polite", "proud", "quick",
    "quiet", "radiant", "rapid", "serene", "sharp", "shiny", "smart", "snug", "sturdy",
    "sunny", "swift", "tidy", "trusty", "vivid", "warm", "wise", "witty", "zesty",
)  # fmt: skip

_ANIMALS = (
    "alpaca", "badger", "beaver", "bison", "bobcat", "camel", "cheetah", "condor", "crane",
    "dingo", "dolphin", "duck", "eagle", "falcon", "ferret", "finch", "fox", "gazelle",
    "gecko", "giraffe", "goose", "heron", "hippo", "ibis", "impala", "jaguar", "koala",
    "lemur", "leopard", "lion", "llama", "lynx", "marmot", "meerkat", "mole", "moose",
    "narwhal", "newt", "ocelot", "orca", "otter", "owl", "panda", "parrot", "pelican",
    "penguin", "puffin", "quail", "rabbit", "raccoon", "raven", "robin", "salmon", "seal",
    "sparrow", "stork", "swan", "tapir", "tiger", "toucan", "turtle", "walrus", "wombat",
    "yak", "zebra",
)  # fmt: skip


def generate_run_name(rng: random.Random | None = None) -> str:
    """Return a readable run name such as ``"brave-otter-42"`` (adjective-animal-0..999)."""
    rng = rng if rng is not None else random.Random()
    return f"{rng.choice(_ADJECTIVES)}-{rng.choice(_ANIMALS)}-{rng.randint(0, 999)}"


# --- key naming rules --------------------------------------------------------------------

_ACCEPTED_CACHE_LIMIT = 100_000  # keys remembered per rule before the cache starts over

_SNAKE_WORD = r"(?:[a-z0-9]+|[A-Z0-9]+)"
_SNAKE_SEGMENT = rf"{_SNAKE_WORD}(?:_{_SNAKE_WORD})*"
_KEBAB_SEGMENT = r"[a-z0-9]+(?:-[a-z0-9]+)*"

# Control characters (C0, DEL, C1) and the Unicode line/paragraph separators.
_CONTROL = "\x00-\x1f\x7f-\x9f\u2028\u2029"
# Lone surrogates: no UTF-8 encoding, so neither SQLite nor PostgreSQL can store them.
_SURROGATE = "\ud800-\udfff"
# Invisible format characters (soft hyphen, zero-width spaces and joiners, direction
# marks and overrides, word joiner, BOM): two keys differing only by one look the same.
_INVISIBLE = "\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff"

_UNPRINTABLE = _CONTROL + _SURROGATE + _INVISIBLE
_EDGE_CHAR = rf"[^\s{_UNPRINTABLE}]"  # first and last character: not a space either

# Rules that refuse only what cannot be shown, filtered or stored: no looser rule to
# suggest when they refuse a key.
_PERMISSIVE = {"printable", "any"}

DEFAULT_KEY_RULE = "printable"

_BUILTIN = {
    "printable": (
        rf"{_EDGE_CHAR}(?:[^{_UNPRINTABLE}]*{_EDGE_CHAR})?",
        "any text without control or invisible characters, and without leading or trailing spaces",
    ),
    "snake_case": (
        rf"{_SNAKE_SEGMENT}(?:[/.]{_SNAKE_SEGMENT})*",
        "words of lower-case or upper-case letters and digits joined by '_', "
        "segments separated by '/' or '.'",
    ),
    "kebab-case": (
        rf"{_KEBAB_SEGMENT}(?:/{_KEBAB_SEGMENT})*",
        "words of lower-case letters and digits joined by '-', segments separated by '/'",
    ),
    "any": (f"[^{_CONTROL}{_SURROGATE}]+", "any non-empty text without control characters"),
}


@dataclass(frozen=True)
class NamingRule:
    """A rule that keys (or names) must follow; :meth:`check` rejects the others."""

    name: str
    pattern: re.Pattern[str]
    description: str
    _accepted: set[str] = field(default_factory=set, init=False, repr=False, compare=False)

    def check(
        self,
        key: str,
        *,
        kind: str,
        owner: str | None = None,
        setting: str = "LOOPWISE_KEY_RULE",
    ) -> None:
        """Raise :class:`~loopwise.errors.InvalidInput` unless ``key`` follows this rule.

        ``kind`` names what is checked ("Metric key"), ``owner`` where it belongs
        ("run 01JD..."), and ``setting`` the setting that changes the rule.
        """
        if isinstance(key, str) and key in self._accepted:  # the common path
            return
        where = f" of {owner}" if owner else ""
        if not isinstance(key, str):
            raise InvalidInput(f"{kind}{where} must be a string, not {type(key).__name__}.")
        if len(key) > MAX_KEY_LENGTH:
            raise InvalidInput(
                f"{kind} {key[:40]!r}...{where} is {len(key)} characters long; "
                f"the limit is {MAX_KEY_LENGTH}."
            )
        if self.pattern.fullmatch(key) is None:
            suggestion = self._suggest(key)
            raise InvalidInput(
                f"{kind} {key!r}{where} does not follow the naming rule {self.name!r} "
                f"({self.description}). {self._fix(suggestion, setting)}"
            )
        if len(self._accepted) >= _ACCEPTED_CACHE_LIMIT:
            self._accepted.clear()
        self._accepted.add(key)

    def _fix(self, suggestion: str | None, setting: str) -> str:
        """How to get past a refusal: the suggested spelling, and a looser rule if any."""
        if self.name in _PERMISSIVE:
            return f"Use {suggestion!r} instead." if suggestion else "Choose a key that does."
        fix = f"Use {suggestion!r} instead, or set" if suggestion else "Set"
        return f"{fix} {setting} (for example to '{DEFAULT_KEY_RULE}') to change the rule."

    def _suggest(self, key: str) -> str | None:
        """Return a spelling of ``key`` that follows this rule, if one can be derived."""
        for candidate in (_strip(key), _respell(key, "_", "/."), _respell(key, "-", "/")):
            if (
                candidate
                and candidate != key
                and len(candidate) <= MAX_KEY_LENGTH
                and self.pattern.fullmatch(candidate)
            ):
                return candidate
        return None


@functools.lru_cache(maxsize=32)
def naming_rule(spec: str) -> NamingRule:
    """Return the rule named ``spec``: "printable", "snake_case", "kebab-case", "any" or a regex.

    Rules are cached, so every caller shares one rule (and its cache of accepted keys).
    A regular expression must match the whole key.
    """
    if spec in _BUILTIN:
        pattern, description = _BUILTIN[spec]
        return NamingRule(spec, re.compile(pattern), description)
    try:
        compiled = re.compile(spec)
    except re.error as exc:
        raise ConfigurationError(
            f"Naming rule {spec!r} is neither 'printable', 'snake_case', 'kebab-case' nor "
            f"'any', and is not a valid regular expression either: {exc}."
        ) from None
    return NamingRule(spec, compiled, "keys must fully match this regular expression")


_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_WORD = re.compile(r"[^A-Za-z0-9]+")


def _respell(key: str, joiner: str, separators: str) -> str:
    """Spell ``key`` as lower-case words joined by ``joiner``, keeping segment separators."""
    ascii_key = unicodedata.normalize("NFKD", key).encode("ascii", "ignore").decode()
    parts = re.split(f"([{re.escape(separators)}])", ascii_key)
    result, separator = "", ""
    for index, part in enumerate(parts):
        if index % 2:  # a separator
            separator = part
            continue
        words = [w.lower() for w in _NON_WORD.split(_CAMEL_BOUNDARY.sub("_", part)) if w]
        if words:
            result += (separator if result else "") + joiner.join(words)
    return result


def _strip(key: str) -> str:
    """Turn control characters (line breaks, tabs) into spaces, drop invisible ones and
    lone surrogates, and trim surrounding whitespace."""
    spaced = re.sub(f"[{_CONTROL}]+", " ", key)
    return re.sub(f"[{_SURROGATE}{_INVISIBLE}]", "", spaced).strip()
