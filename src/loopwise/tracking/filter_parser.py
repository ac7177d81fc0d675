"""Parse the ``filter`` and ``order_by`` strings of ``search_runs`` into a small AST.

People type filters by hand (``metrics.auc > 0.8 and params.model = 'rf'``), so a typo
must come back as an error that points at the exact spot and says how to fix it, never
as a SQL error from deep inside the store. This module only turns text into frozen
dataclasses; it touches no database, and the store compiles the AST to SQL.

It is a hand-written tokenizer and recursive-descent parser, so the grammar and every
error message stay under our control. Keywords are case-insensitive::

    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" expr ")" | comparison
    comparison := field op value
                | field ["not"] "in" "(" value ("," value)* ")"
                | field "is" ["not"] "null"
                | field ["not"] ("like" | "ilike") string
    field      := entity "." key | attribute
    order_by   := field ["asc" | "desc"] ("," field ["asc" | "desc"])*
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import NoReturn

from loopwise.errors import InvalidFilter

__all__ = [
    "ATTRIBUTES",
    "ENTITIES",
    "And",
    "Comparison",
    "FilterExpr",
    "Not",
    "Or",
    "OrderKey",
    "parse_filter",
    "parse_order_by",
]


@dataclass(frozen=True)
class Comparison:
    """One test such as ``metrics.auc > 0.8``; ``value`` is a tuple for ``in`` lists."""

    entity: str  # "metrics" | "params" | "tags" | "attributes"
    key: str  # metric/param/tag key, or the canonical attribute name
    op: str  # "=", "!=", "<", "<=", ">", ">=", "[not] in", "is [not] null", "[not] [i]like"
    value: object = None


@dataclass(frozen=True)
class And:
    """All of ``items`` hold."""

    items: tuple[FilterExpr, ...]


@dataclass(frozen=True)
class Or:
    """At least one of ``items`` holds."""

    items: tuple[FilterExpr, ...]


@dataclass(frozen=True)
class Not:
    """``item`` does not hold."""

    item: FilterExpr


@dataclass(frozen=True)
class OrderKey:
    """One ``order_by`` item such as ``metrics.auc DESC``."""

    entity: str
    key: str
    descending: bool


FilterExpr = Comparison | And | Or | Not

# Accepted spellings -> canonical names.
ENTITIES = {
    "metrics": "metrics",
    "metric": "metrics",
    "params": "params",
    "param": "params",
    "tags": "tags",
    "tag": "tags",
    "attributes": "attributes",
    "attribute": "attributes",
    "attr": "attributes",
}
ATTRIBUTES = {
    "run_id": "run_id",
    "id": "run_id",
    "name": "name",
    "run_name": "name",
    "status": "status",
    "experiment": "experiment",
    "experiment_id": "experiment_id",
    "start_time": "start_time",
    "end_time": "end_time",
    "parent_run_id": "parent_run_id",
    "user": "user",
}

_OPERATORS = {
    "=": "=",
    "==": "=",
    "!=": "!=",
    "<>": "!=",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
}
_SPECIAL_FLOATS = {"nan": math.nan, "inf": math.inf, "infinity": math.inf}

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-/:]*")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_SIGNED_SPECIAL = re.compile(r"[+-](?:infinity|inf|nan)\b", re.IGNORECASE)
_NUMBER_TAIL = re.compile(r"[A-Za-z0-9_.]*")
_OPERATOR = re.compile(r"[=!<>~]+")

_FILTER_HINT = "Write comparisons like \"metrics.auc > 0.8 and params.model = 'rf'\"."
_ORDER_HINT = 'Write order_by items like "metrics.auc DESC", "start_time" or "params.C ASC".'
_OPERATOR_HINT = (
    "Use one of =, !=, <, <=, >, >=, [not] in (...), is [not] null, [not] like, [not] ilike."
)
_VALUE_HINT = "Write numbers like 0.8, -3, 1e-4, nan or inf, text in quotes like 'rf'."
_KEY_HINT = "Put the key right after the dot, e.g. metrics.auc, or quote it: metrics.`val loss`."
_PAREN_HINT = "Add the missing ')' or remove the extra '('."


@dataclass(frozen=True)
class _Token:
    kind: str  # "word" | "number" | "string" | "op" | "(" | ")" | "," | "end"
    text: str  # the source text, quotes included
    pos: int
    value: object = None
    quote: str = ""  # ', " or ` for strings

    @property
    def end(self) -> int:
        return self.pos + len(self.text)


def parse_filter(text: str | None) -> FilterExpr | None:
    """Parse a ``search_runs`` filter; ``None`` or blank text means "no filter"."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise InvalidFilter(f"A filter must be a string, not {type(text).__name__}.")
    if not text.strip():
        return None
    parser = _Parser(text, "filter", _FILTER_HINT)
    node = parser.or_expr()
    parser.expect_filter_end()
    return node


def parse_order_by(items: str | list[str] | tuple[str, ...] | None) -> list[OrderKey]:
    """Parse ``order_by``: one string (items may be comma-separated) or a list of them."""
    if items is None:
        return []
    keys: list[OrderKey] = []
    for item in [items] if isinstance(items, str) else items:
        if not isinstance(item, str):
            raise InvalidFilter(f"order_by items must be strings, not {type(item).__name__}.")
        if item.strip():
            keys.extend(_Parser(item, "order_by", _ORDER_HINT).order_by())
    return keys


class _Parser:
    def __init__(self, text: str, label: str, hint: str) -> None:
        self.text = text
        self.label = label
        self.hint = hint
        self.tokens = self._tokenize()
        self.index = 0
        self.last_end = 0

    # --- errors ------------------------------------------------------------------------

    def fail(self, pos: int, problem: str, hint: str | None = None) -> NoReturn:
        shown = re.sub(r"\s", " ", self.text)
        raise InvalidFilter(
            f"Invalid {self.label} at position {pos + 1}: {problem}.\n"
            f"  {shown}\n  {' ' * pos}^\n{hint or self.hint}"
        )

    def describe(self, tok: _Token) -> str:
        if tok.kind == "end":
            return f"end of {self.label}"
        return tok.text if tok.kind == "string" else f"'{tok.text}'"

    # --- tokens ------------------------------------------------------------------------

    def _tokenize(self) -> list[_Token]:
        text, i, tokens = self.text, 0, []
        while i < len(text):
            ch = text[i]
            if ch.isspace():
                i += 1
                continue
            if ch in "(),":
                tok = _Token(ch, ch, i)
            elif ch in "'\"`":
                tok = self._quoted(i)
            elif m := _SIGNED_SPECIAL.match(text, i) or _NUMBER.match(text, i):
                tok = self._number(m)
            elif m := _WORD.match(text, i):
                tok = _Token("word", m.group(), i)
            elif m := _OPERATOR.match(text, i):
                tok = _Token("op", m.group(), i)
            else:
                hint = "Write 'and' / 'or' instead of '&&' / '||'." if ch in "&|" else None
                self.fail(i, f"unexpected character {ch!r}", hint)
            tokens.append(tok)
            i = tok.end
        tokens.append(_Token("end", "", len(text.rstrip())))
        return tokens

    def _quoted(self, start: int) -> _Token:
        text, quote, i, chars = self.text, self.text[start], start + 1, []
        while i < len(text):
            ch = text[i]
            if ch == "\\" and quote != "`" and i + 1 < len(text):
                nxt = text[i + 1]
                chars.append(nxt if nxt in "\\'\"" else ch + nxt)
                i += 2
            elif ch == quote and text[i + 1 : i + 2] == quote:
                chars.append(quote)
                i += 2
            elif ch == quote:
                return _Token("string", text[start : i + 1], start, "".join(chars), quote)
            else:
                chars.append(ch)
                i += 1
        self.fail(
            start,
            f"unterminated string: the {quote} opened here is never closed",
            f"Close it with a matching {quote}; write a {quote} inside it as {quote * 2}.",
        )

    def _number(self, match: re.Match[str]) -> _Token:
        raw, start = match.group(), match.start()
        tail = _NUMBER_TAIL.match(self.text, match.end())
        if tail.group():
            self.fail(start, f"malformed number '{raw + tail.group()}'", _VALUE_HINT)
        if re.fullmatch(r"[+-]?\d+", raw) and len(raw.lstrip("+-")) <= 18:
            return _Token("number", raw, start, int(raw))  # fits int64: compared exactly
        if raw.lstrip("+-").lower() == "nan":
            return _Token("number", raw, start, math.nan)  # the shared nan keeps == working
        return _Token("number", raw, start, float(raw))

    @property
    def tok(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        tok = self.tokens[self.index]
        if tok.kind != "end":
            self.index += 1
            self.last_end = tok.end
        return tok

    def accept(self, word: str) -> bool:
        if self.tok.kind == "word" and self.tok.text.lower() == word:
            self.advance()
            return True
        return False

    # --- filter grammar ----------------------------------------------------------------

    def expect_filter_end(self) -> None:
        tok = self.tok
        if tok.kind == ")":
            self.fail(tok.pos, "unbalanced parentheses: this ')' has no matching '('", _PAREN_HINT)
        if tok.kind != "end":
            self.fail(
                tok.pos,
                f"unexpected {self.describe(tok)} after a complete comparison",
                "Join comparisons with 'and' or 'or', e.g. \"metrics.auc > 0.8 and status = "
                "'FINISHED'\".",
            )

    def or_expr(self) -> FilterExpr:
        items = [self.and_expr()]
        while self.accept("or"):
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> FilterExpr:
        items = [self.not_expr()]
        while self.accept("and"):
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else And(tuple(items))

    def not_expr(self) -> FilterExpr:
        if self.accept("not"):
            return Not(self.not_expr())
        opening = self.tok
        if opening.kind != "(":
            return self.comparison()
        self.advance()
        node = self.or_expr()
        closing = self.advance()
        if closing.kind == "end":
            self.fail(opening.pos, "unbalanced parentheses: this '(' is never closed", _PAREN_HINT)
        if closing.kind != ")":
            self.fail(closing.pos, f"expected ')', 'and' or 'or', found {self.describe(closing)}")
        return node

    def comparison(self) -> Comparison:
        field_pos = self.tok.pos
        entity, key = self.field()
        field = self.text[field_pos : self.last_end]
        metric = key if entity == "metrics" else None
        tok = self.advance()
        if tok.kind == "op":
            if tok.text not in _OPERATORS:
                self.fail(tok.pos, f"unknown operator '{tok.text}'", _OPERATOR_HINT)
            return Comparison(entity, key, _OPERATORS[tok.text], self.value(tok.text, metric))
        word = tok.text.lower() if tok.kind == "word" else ""
        if word == "is":
            op = "is not null" if self.accept("not") else "is null"
            if not self.accept("null"):
                found = self.describe(self.tok)
                self.fail(
                    self.tok.pos,
                    f"expected 'null' after '{tok.text}', found {found}",
                    "Write 'is null' or 'is not null'.",
                )
            return Comparison(entity, key, op)
        negated = word == "not"
        if negated:
            tok = self.advance()
            word = tok.text.lower() if tok.kind == "word" else ""
        prefix = "not " if negated else ""
        if word == "in":
            return Comparison(entity, key, prefix + "in", self.value_list(tok, metric))
        if word in ("like", "ilike"):
            if metric is not None:
                self.fail(
                    tok.pos, _metric_problem(metric), "Use like/ilike on params, tags or name."
                )
            pattern = self.tok
            value = self.value(tok.text, None)
            if not isinstance(value, str):
                self.fail(pattern.pos, f"'{word}' needs a quoted pattern such as 'rf-%'")
            return Comparison(entity, key, prefix + word, value)
        if negated:
            found = self.describe(tok)
            self.fail(
                tok.pos,
                f"expected 'in', 'like' or 'ilike' after 'not', found {found}",
                _OPERATOR_HINT,
            )
        if tok.kind == "end":
            self.fail(
                tok.pos,
                f"expected an operator after '{field}', found end of filter",
                _OPERATOR_HINT,
            )
        self.fail(tok.pos, f"unknown operator {self.describe(tok)}", _OPERATOR_HINT)

    def value_list(self, in_tok: _Token, metric: str | None) -> tuple[object, ...]:
        opening = self.advance()
        list_hint = "Write lists like params.model in ('rf', 'svm')."
        if opening.kind != "(":
            found = self.describe(opening)
            self.fail(opening.pos, f"expected '(' after '{in_tok.text}', found {found}", list_hint)
        if self.tok.kind == ")":
            self.fail(self.tok.pos, f"'{in_tok.text}' needs at least one value", list_hint)
        values, separator = [], opening
        while True:
            values.append(self.value(separator.text, metric))
            separator = self.advance()
            if separator.kind == ")":
                return tuple(values)
            if separator.kind == "end":
                self.fail(
                    opening.pos, "unbalanced parentheses: this '(' is never closed", _PAREN_HINT
                )
            if separator.kind != ",":
                found = self.describe(separator)
                self.fail(
                    separator.pos, f"expected ',' or ')' in the list, found {found}", list_hint
                )

    def value(self, after: str, metric: str | None) -> object:
        tok = self.advance()
        word = tok.text.lower() if tok.kind == "word" else None
        if tok.kind == "number" or word in _SPECIAL_FLOATS:
            return tok.value if word is None else _SPECIAL_FLOATS[word]
        if word == "null":
            self.fail(
                tok.pos,
                "null cannot be compared with an operator",
                "Write 'is null' or 'is not null'.",
            )
        if tok.kind == "string" and tok.quote == "`":
            self.fail(tok.pos, "backticks quote keys, not values", "Quote text values like 'rf'.")
        if tok.kind == "string" or word in ("true", "false"):
            if metric is not None:
                self.fail(tok.pos, _metric_problem(metric), "Text belongs in params.* or tags.*.")
            return tok.value if word is None else word == "true"
        hint = f"Quote text values: '{tok.text}'." if word else _VALUE_HINT
        if tok.kind == "end":
            hint = self.hint
        self.fail(tok.pos, f"expected a value after '{after}', found {self.describe(tok)}", hint)

    # --- fields and order_by -----------------------------------------------------------

    def field(self) -> tuple[str, str]:
        tok = self.advance()
        if tok.kind != "word" or tok.text.lower() in ("and", "or"):
            hint = None
            if tok.kind == "string" and tok.quote != "'":
                hint = f"Put the entity before a quoted key, e.g. metrics.{tok.text}."
            self.fail(
                tok.pos, f"expected a field such as metrics.auc, found {self.describe(tok)}", hint
            )
        head, dot, key = tok.text.partition(".")
        if not dot:
            return "attributes", self.attribute(head, tok.pos)
        entity = ENTITIES.get(head.lower())
        if entity is None:
            self.fail(
                tok.pos,
                f"unknown entity '{head}'",
                "Fields look like metrics.<key>, params.<key>, tags.<key> or attributes.<name>.",
            )
        quoted = self.tok
        if not key and quoted.kind == "string" and quoted.quote != "'" and quoted.pos == tok.end:
            key = self.advance().value
            if not key:
                self.fail(quoted.pos, f"empty key after '{head}.'", _KEY_HINT)
        elif not key:
            self.fail(tok.end, f"empty key after '{head}.'", _KEY_HINT)
        if entity == "attributes":
            key = self.attribute(key, tok.pos)
        return entity, key

    def attribute(self, name: str, pos: int) -> str:
        canonical = ATTRIBUTES.get(name.lower())
        if canonical is None:
            self.fail(
                pos,
                f"unknown attribute '{name}'; did you mean metrics.{name}, params.{name} "
                f"or tags.{name}?",
                f"Bare names must be one of: {', '.join(ATTRIBUTES)}.",
            )
        return canonical

    def order_by(self) -> list[OrderKey]:
        keys = []
        while True:
            entity, key = self.field()
            direction = self.tok
            if direction.kind == "word":
                if direction.text.lower() not in ("asc", "desc"):
                    self.fail(
                        direction.pos,
                        f"unknown sort direction '{direction.text}'",
                        'Use ASC or DESC, e.g. "metrics.auc DESC".',
                    )
                self.advance()
            descending = direction.kind == "word" and direction.text.lower() == "desc"
            keys.append(OrderKey(entity, key, descending))
            separator = self.advance()
            if separator.kind == "end":
                return keys
            if separator.kind != ",":
                self.fail(separator.pos, f"expected ',' or end, found {self.describe(separator)}")


def _metric_problem(key: str) -> str:
    return f"metrics are numbers; compare metrics.{key} with a number such as 0.8"
