"""The search filter language: a tokenizer and recursive-descent parser to a small AST.

Example: ``name LIKE 'fraud%' AND metrics.auc >= 0.9 AND tags.team = 'risk'``.
This module only parses; turning the AST into SQL is the store's job. Every error is an
:class:`~modelreg.errors.InvalidFilter` carrying a 0-based offset into the input text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from modelreg.errors import InvalidFilter

Op: TypeAlias = Literal["=", "!=", "<", "<=", ">", ">="]
Namespace: TypeAlias = Literal["attr", "metrics", "params", "tags"]
Value: TypeAlias = str | int | float | bool
_TokenKind: TypeAlias = Literal["word", "field", "string", "number", "op", "(", ")", ",", "eof"]

OPS: tuple[Op, ...] = ("=", "!=", "<", "<=", ">", ">=")
NAMESPACES: tuple[Namespace, ...] = ("metrics", "params", "tags")
MAX_LENGTH = 10_000
MAX_DEPTH = 50

# Integers beyond 64 bits cannot be bound as SQL parameters by any backend we support.
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_OP_NAMES: dict[str, Op] = {**{op: op for op in OPS}, "==": "=", "<>": "!="}
_NAMESPACE_NAMES: dict[str, Namespace] = {ns: ns for ns in NAMESPACES}
_PUNCT: dict[str, _TokenKind] = {"(": "(", ")": ")", ",": ","}
_KEYWORDS = frozenset({"and", "or", "not", "in", "is", "null", "like", "ilike", "true", "false"})
# re.ASCII so that Unicode digits and letters never slip into identifiers or numbers.
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/:]*", re.ASCII)
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_OP = re.compile(r"==|!=|<>|<=|>=|=|<|>")
_WORD_RUN = re.compile(r"[A-Za-z0-9_.]+", re.ASCII)


@dataclass(frozen=True, slots=True)
class Field:
    """A field reference: a core attribute (``attr``) or a key in metrics, params or tags."""

    namespace: Namespace
    key: str
    position: int

    def __str__(self) -> str:
        if self.namespace == "attr":
            return self.key
        if _KEY.fullmatch(self.key):
            return f"{self.namespace}.{self.key}"
        return f"{self.namespace}.`{self.key.replace('`', '``')}`"


# Every predicate's ``position`` is its field's offset, so errors found later (say, a
# type mismatch when compiling to SQL) can still point at the right place.
@dataclass(frozen=True, slots=True)
class Compare:
    field: Field
    op: Op
    value: Value
    position: int


@dataclass(frozen=True, slots=True)
class Like:
    field: Field
    pattern: str
    case_insensitive: bool
    negated: bool
    position: int


@dataclass(frozen=True, slots=True)
class In:
    field: Field
    values: tuple[Value, ...]
    negated: bool
    position: int


@dataclass(frozen=True, slots=True)
class IsNull:
    field: Field
    negated: bool
    position: int


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Expr


Expr: TypeAlias = Compare | Like | In | IsNull | And | Or | Not


@dataclass(frozen=True, slots=True)
class OrderKey:
    field: Field
    descending: bool


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _TokenKind
    pos: int
    text: str  # as written
    value: Value | Field | None = None

    def is_word(self, *words: str) -> bool:
        """True for a bare word that is (case-insensitively) one of ``words``."""
        return self.kind == "word" and self.text.lower() in words

    def describe(self) -> str:
        return "end of input" if self.kind == "eof" else repr(self.text)


def _scan_quoted(text: str, start: int, what: str) -> tuple[str, int]:
    """Read a quoted run starting at the opening quote; a doubled quote is a literal one."""
    quote = text[start]
    parts: list[str] = []
    i = start + 1
    while True:
        j = text.find(quote, i)
        if j < 0:
            raise InvalidFilter(f"unterminated {what}", start)
        parts.append(text[i:j])
        if text.startswith(quote, j + 1):
            parts.append(quote)
            i = j + 2
        else:
            return "".join(parts), j + 1


def _scan_field(text: str, pos: int) -> tuple[Field | str, int]:
    """Read an identifier at ``pos``; if a '.' follows, it is a namespace and a key follows.

    Returns a :class:`Field` for a namespaced field and the raw identifier otherwise (it may
    be a keyword, which only the caller can tell apart from an attribute).
    """
    m = _IDENT.match(text, pos)
    if m is None:
        raise InvalidFilter("expected a field", pos)
    word, end = m.group(), m.end()
    if not text.startswith(".", end):
        return word, end
    namespace = _NAMESPACE_NAMES.get(word.lower())
    if namespace is None:
        raise InvalidFilter(f"unknown field namespace {word!r}", pos)
    key_pos = end + 1
    if text.startswith("`", key_pos):
        key, end = _scan_quoted(text, key_pos, "backtick-quoted key")
        if not key:
            raise InvalidFilter("empty field key", key_pos)
    else:
        k = _KEY.match(text, key_pos)
        if k is None:
            raise InvalidFilter(f"expected a key after '{word}.'", key_pos)
        key, end = k.group(), k.end()
    return Field(namespace, key, pos), end


def _number(text: str, start: int, end: int) -> int | float:
    raw = text[start:end]
    if (run := _WORD_RUN.match(text, end)) is not None:
        # "1abc", "1.2.3" and "1e" are typos, not a number followed by something else.
        raise InvalidFilter(f"invalid number {text[start : run.end()]!r}", start)
    if any(c in raw for c in ".eE"):
        value = float(raw)
        if value in (float("inf"), float("-inf")):
            raise InvalidFilter(f"number out of range {raw!r}", start)
        return value
    if len(raw) > 20 or not _INT_MIN <= int(raw) <= _INT_MAX:
        raise InvalidFilter(f"integer out of range {raw!r}", start)
    return int(raw)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "'\"":
            s, end = _scan_quoted(text, i, "string")
            tokens.append(_Token("string", i, text[i:end], s))
            i = end
        elif c in "(),":
            tokens.append(_Token(_PUNCT[c], i, c))
            i += 1
        elif (op := _OP.match(text, i)) is not None:
            tokens.append(_Token("op", i, op.group()))
            i = op.end()
        elif (num := _NUMBER.match(text, i)) is not None:
            tokens.append(_Token("number", i, num.group(), _number(text, i, num.end())))
            i = num.end()
        elif _IDENT.match(text, i):
            field, end = _scan_field(text, i)
            if isinstance(field, Field):
                tokens.append(_Token("field", i, text[i:end], field))
            else:
                tokens.append(_Token("word", i, field))
            i = end
        elif c == "`":
            raise InvalidFilter(
                "a backtick-quoted key needs a metrics., params. or tags. prefix", i
            )
        else:
            raise InvalidFilter(f"unexpected character {c!r}", i)
    tokens.append(_Token("eof", n, ""))
    return tokens


def _attr_field(word: str, pos: int, attributes: frozenset[str]) -> Field:
    name = word.lower()
    if name not in attributes:
        allowed = ", ".join([*sorted(attributes), "metrics.*", "params.*", "tags.*"])
        raise InvalidFilter(f"unknown field {word!r}; expected one of: {allowed}", pos)
    return Field("attr", name, pos)


def _check_length(text: str) -> None:
    if len(text) > MAX_LENGTH:
        raise InvalidFilter(f"filter is longer than {MAX_LENGTH} characters", MAX_LENGTH)


class _Parser:
    def __init__(self, tokens: list[_Token], attributes: frozenset[str]) -> None:
        self._tokens = tokens
        self._i = 0
        self._depth = 0
        self._attributes = attributes

    def _peek(self) -> _Token:
        return self._tokens[self._i]

    def _next(self) -> _Token:
        tok = self._tokens[self._i]
        self._i += tok.kind != "eof"
        return tok

    def _accept(self, *words: str) -> _Token | None:
        return self._next() if self._peek().is_word(*words) else None

    def _fail(self, expected: str, tok: _Token | None = None) -> InvalidFilter:
        tok = tok or self._peek()
        return InvalidFilter(f"expected {expected}, found {tok.describe()}", tok.pos)

    def _expect(self, kind: _TokenKind, what: str) -> _Token:
        if self._peek().kind != kind:
            raise self._fail(what)
        return self._next()

    def parse(self) -> Expr:
        expr = self._or()
        tok = self._peek()
        if tok.kind != "eof":
            raise InvalidFilter(f"unexpected trailing input {tok.describe()}", tok.pos)
        return expr

    def _or(self) -> Expr:
        items = [self._and()]
        while self._accept("or"):
            items.append(self._and())
        # Flatten so that "(a OR b) OR c" and "a OR b OR c" give the same tree.
        flat = [x for item in items for x in (item.items if isinstance(item, Or) else (item,))]
        return flat[0] if len(flat) == 1 else Or(tuple(flat))

    def _and(self) -> Expr:
        items = [self._not()]
        while self._accept("and"):
            items.append(self._not())
        flat = [x for item in items for x in (item.items if isinstance(item, And) else (item,))]
        return flat[0] if len(flat) == 1 else And(tuple(flat))

    def _not(self) -> Expr:
        tok = self._peek()
        if not (tok.is_word("not") or tok.kind == "("):
            return self._predicate()
        # Parentheses and NOT are the only recursion; bounding them keeps arbitrary input
        # far away from Python's recursion limit.
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise InvalidFilter(f"filter is nested deeper than {MAX_DEPTH} levels", tok.pos)
        self._next()
        if tok.kind == "(":
            expr = self._or()
            self._expect(")", "')'")
        else:
            expr = Not(self._not())
        self._depth -= 1
        return expr

    def _field(self) -> Field:
        tok = self._next()
        if isinstance(tok.value, Field):
            return tok.value
        if tok.kind == "word" and tok.text.lower() not in _KEYWORDS:
            return _attr_field(tok.text, tok.pos, self._attributes)
        raise self._fail("a field or '('", tok)

    def _value(self) -> Value:
        tok = self._next()
        value = tok.value
        if tok.kind in ("string", "number") and isinstance(value, (str, int, float)):
            return value
        if tok.is_word("true", "false"):
            return tok.is_word("true")
        hint = " (use IS NULL to test for a missing value)" if tok.is_word("null") else ""
        raise self._fail(f"a value{hint}", tok)

    def _predicate(self) -> Expr:
        field = self._field()
        pos = field.position
        tok = self._next()
        if tok.kind == "op":
            return Compare(field, _OP_NAMES[tok.text], self._value(), pos)
        if tok.is_word("is"):
            negated = self._accept("not") is not None
            if not self._accept("null"):
                raise self._fail("NULL")
            return IsNull(field, negated, pos)
        negated = tok.is_word("not")
        if negated and not (tok := self._next()).is_word("in", "like", "ilike"):
            raise self._fail("IN, LIKE or ILIKE after NOT", tok)
        if tok.is_word("in"):
            return In(field, self._in_list(), negated, pos)
        if tok.is_word("like", "ilike"):
            pattern = self._next()
            if pattern.kind != "string" or not isinstance(pattern.value, str):
                raise self._fail(f"a quoted string pattern after {tok.text.upper()}", pattern)
            return Like(field, pattern.value, tok.is_word("ilike"), negated, pos)
        raise self._fail("an operator", tok)

    def _in_list(self) -> tuple[Value, ...]:
        opening = self._expect("(", "'(' after IN")
        if self._peek().kind == ")":
            raise InvalidFilter("empty IN list", opening.pos)
        values = [self._value()]
        while self._peek().kind == ",":
            self._next()
            values.append(self._value())
        self._expect(")", "')' or ','")
        return tuple(values)


def parse_filter(text: str | None, attributes: frozenset[str]) -> Expr | None:
    """Parse a filter expression into an AST, or return None for empty text.

    ``attributes`` are the lowercase names allowed as bare fields; ``metrics.``,
    ``params.`` and ``tags.`` fields take any key. Raises :class:`InvalidFilter` with the
    offset of the offending character on any syntax or field error.
    """
    if text is None:
        return None
    _check_length(text)
    if not text.strip():
        return None
    return _Parser(_tokenize(text), attributes).parse()


def _split_clauses(text: str) -> list[tuple[int, str]]:
    """Split on commas outside backticks, keeping each piece's offset for error positions."""
    pieces: list[tuple[int, str]] = []
    start, quoted = 0, False
    for i, c in enumerate(text):
        if c == "`":
            quoted = not quoted  # a doubled backtick toggles twice, so it needs no case
        elif c == "," and not quoted:
            pieces.append((start, text[start:i]))
            start = i + 1
    pieces.append((start, text[start:]))
    return pieces


def _order_key(item: str, offset: int, clause: str, attributes: frozenset[str]) -> OrderKey:
    # Scan the whole item (bounded at the clause end) so positions are offsets into `item`.
    text = item[: offset + len(clause)]

    def fail(reason: str, at: int | None) -> InvalidFilter:
        return InvalidFilter(f"invalid order_by clause {clause.strip()!r}: {reason}", at)

    i = offset + len(clause) - len(clause.lstrip())
    sign = text[i] if text[i] in "+-" else ""
    i += len(sign)
    try:
        field, i = _scan_field(text, i)
        if not isinstance(field, Field):
            field = _attr_field(field, i - len(field), attributes)
    except InvalidFilter as exc:
        reason, at = exc.message.removesuffix(f" at position {exc.position}"), exc.position
        raise fail(reason, at) from None
    rest = text[i:]
    descending = sign == "-"
    if rest.strip():
        at = len(text) - len(rest.lstrip())
        words = rest.split()
        direction = words[0].lower()
        if len(words) > 1 or direction not in ("asc", "desc") or not rest[0].isspace():
            raise fail(f"expected ASC or DESC, found {rest.strip()!r}", at)
        if sign:
            raise fail("use a +/- prefix or ASC/DESC, not both", at)
        descending = direction == "desc"
    return OrderKey(field, descending)


def parse_order_by(
    clauses: Sequence[str] | str | None, attributes: frozenset[str]
) -> tuple[OrderKey, ...]:
    """Parse order-by clauses: ``field``, ``-field``, ``+field``, ``field ASC|DESC``.

    A single string may hold comma-separated clauses; so may each item of a sequence.
    Fields follow the filter rules. Positions in errors are offsets into the string that
    holds the clause. Blank input yields ``()``; a field listed twice is an error.
    """
    if clauses is None:
        return ()
    items = [clauses] if isinstance(clauses, str) else list(clauses)
    keys: list[OrderKey] = []
    seen: set[tuple[str, str]] = set()
    for item in items:
        _check_length(item)
        if not item.strip():
            continue
        for offset, clause in _split_clauses(item):
            if not clause.strip():
                raise InvalidFilter(f"empty order_by clause in {item!r}", offset)
            key = _order_key(item, offset, clause, attributes)
            ident = (key.field.namespace, key.field.key)
            if ident in seen:
                name = str(key.field)
                raise InvalidFilter(f"duplicate order_by field {name!r}", key.field.position)
            seen.add(ident)
            keys.append(key)
    return tuple(keys)
