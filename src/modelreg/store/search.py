"""Compile parsed filters and order-by clauses to parameterised SQL, with keyset paging.

Values never become SQL text: every literal is a bound parameter. Metric, parameter and
tag predicates become ``EXISTS`` sub-queries that use the ``(key, value)`` indexes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from modelreg.domain.entities import LINEAGE_FIELDS
from modelreg.domain.filters import (
    And,
    Compare,
    Expr,
    Field,
    In,
    IsNull,
    Like,
    Not,
    Or,
    OrderKey,
    Value,
    parse_filter,
    parse_order_by,
)
from modelreg.errors import InvalidArgument, InvalidFilter
from modelreg.store import tables as t

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100

Column = ColumnElement[Any]


@dataclass(frozen=True)
class AttrSpec:
    """A plain field of the searched entity: its column and value type."""

    column: Column
    kind: str  # "str" | "int" | "time" | "alias"


def _version_attrs() -> dict[str, AttrSpec]:
    v = t.versions.c
    attrs = {
        "name": AttrSpec(t.models.c.name, "str"),
        "version": AttrSpec(v.version, "int"),
        "stage": AttrSpec(v.stage, "str"),
        "description": AttrSpec(v.description, "str"),
        "created_by": AttrSpec(v.created_by, "str"),
        "created_at": AttrSpec(v.created_at, "time"),
        "updated_at": AttrSpec(v.updated_at, "time"),
        "size": AttrSpec(v.total_size, "int"),
        "manifest_digest": AttrSpec(v.manifest_digest, "str"),
        "alias": AttrSpec(v.id, "alias"),
    }
    for name in LINEAGE_FIELDS:
        attrs[name] = AttrSpec(v[name], "str")
    return attrs


def _model_attrs() -> dict[str, AttrSpec]:
    m = t.models.c
    return {
        "name": AttrSpec(m.name, "str"),
        "description": AttrSpec(m.description, "str"),
        "created_by": AttrSpec(m.created_by, "str"),
        "created_at": AttrSpec(m.created_at, "time"),
        "updated_at": AttrSpec(m.updated_at, "time"),
    }


VERSION_ATTRS = _version_attrs()
MODEL_ATTRS = _model_attrs()
# Sortable plain fields
VERSION_SORT = frozenset({"name", "version", "stage", "created_at", "updated_at", "size"})
MODEL_SORT = frozenset({"name", "created_at", "updated_at"})


@dataclass(frozen=True)
class Target:
    """What a search runs over: versions (joined to their model) or models."""

    kind: str
    attrs: dict[str, AttrSpec]
    row_id: Column
    sortable: frozenset[str]
    # namespace ("metrics", "params", "tags") -> its key/value table and owner column
    keyed: dict[str, tuple[sa.Table, str]]
    default_order: tuple[str, ...]

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(self.attrs)


VERSION_TARGET = Target(
    "versions",
    VERSION_ATTRS,
    t.versions.c.id,
    VERSION_SORT,
    {
        "metrics": (t.version_metrics, "version_id"),
        "params": (t.version_params, "version_id"),
        "tags": (t.version_tags, "version_id"),
    },
    ("name", "-version"),
)
MODEL_TARGET = Target(
    "models",
    MODEL_ATTRS,
    t.models.c.id,
    MODEL_SORT,
    {"tags": (t.model_tags, "model_id")},
    ("name",),
)


def compile_filter(expr: Expr | None, target: Target) -> Column:
    """Turn a filter AST into a WHERE clause for ``target``."""
    if expr is None:
        return sa.true()
    return _Compiler(target).expr(expr)


class _Compiler:
    def __init__(self, target: Target) -> None:
        self.target = target

    def expr(self, node: Expr) -> Column:
        if isinstance(node, And):
            return sa.and_(*(self.expr(item) for item in node.items))
        if isinstance(node, Or):
            return sa.or_(*(self.expr(item) for item in node.items))
        if isinstance(node, Not):
            return sa.not_(self.expr(node.item))
        field = node.field
        if field.namespace != "attr" and field.namespace not in self.target.keyed:
            raise InvalidFilter(
                f"'{field.namespace}.' fields are not available here", field.position
            )
        if field.namespace == "attr":
            return self.attr(node)
        return self.keyed(node)

    def attr(self, node: Compare | Like | In | IsNull) -> Column:
        spec = self.target.attrs[node.field.key]
        if spec.kind == "alias":
            return self.alias(node)
        column = spec.column
        if isinstance(node, IsNull):
            return column.is_not(None) if node.negated else column.is_(None)
        if isinstance(node, Like):
            if spec.kind != "str":
                raise InvalidFilter(
                    f"LIKE needs a text field, '{node.field.key}' is not", node.position
                )
            return _like(column, node)
        if isinstance(node, In):
            values = [_coerce(spec.kind, v, node.field) for v in node.values]
            return column.not_in(values) if node.negated else column.in_(values)
        return _compare(column, node.op, _coerce(spec.kind, node.value, node.field))

    def alias(self, node: Compare | Like | In | IsNull) -> Column:
        a = t.aliases.c
        base = sa.select(a.version_id).where(a.version_id == t.versions.c.id)
        if isinstance(node, IsNull):
            exists = base.exists()
            return exists if node.negated else ~exists
        if isinstance(node, Like):
            return base.where(_like(a.alias, node)).exists()
        if isinstance(node, In):
            values = [_coerce("str", v, node.field) for v in node.values]
            found = base.where(a.alias.in_(values)).exists()
            return ~found if node.negated else found
        if node.op not in ("=", "!="):
            raise InvalidFilter("alias supports only =, !=, IN, LIKE and IS NULL", node.position)
        found = base.where(a.alias == _coerce("str", node.value, node.field)).exists()
        return ~found if node.op == "!=" else found

    def keyed(self, node: Compare | Like | In | IsNull) -> Column:
        field = node.field
        table, owner = self.target.keyed[field.namespace]
        c = table.c
        base = sa.select(sa.literal(1)).where(c[owner] == self.target.row_id, c.key == field.key)
        if isinstance(node, IsNull):
            exists = base.exists()
            return exists if node.negated else ~exists
        if isinstance(node, Like):
            if field.namespace == "metrics":
                raise InvalidFilter("LIKE does not apply to metrics", node.position)
            return base.where(_like(c.value, node)).exists()
        values = node.values if isinstance(node, In) else (node.value,)
        column, coerced = _keyed_column(field, table, values)
        if isinstance(node, In):
            found = base.where(column.in_(coerced)).exists()
            return ~found if node.negated else found
        return base.where(_compare(column, node.op, coerced[0])).exists()


def _keyed_column(
    field: Field, table: sa.Table, values: Sequence[Value]
) -> tuple[Column, list[Any]]:
    numeric = [isinstance(v, int | float) and not isinstance(v, bool) for v in values]
    if field.namespace == "metrics":
        if not all(numeric):
            raise InvalidFilter(f"metrics.{field.key} is compared with a number", field.position)
        return table.c.value, [float(v) for v in values]
    if field.namespace == "params":
        if all(numeric):
            return table.c.value_num, [float(v) for v in values]
        if any(numeric):
            raise InvalidFilter("IN mixes numbers and strings", field.position)
        return table.c.value, [_param_text(v) for v in values]
    if any(numeric) or any(isinstance(v, bool) for v in values):
        raise InvalidFilter(f"tags.{field.key} is a string; quote the value", field.position)
    return table.c.value, list(values)


def _param_text(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _coerce(kind: str, value: Value, field: Field) -> Any:
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidFilter(f"'{field.key}' is compared with a number", field.position)
        return value
    if kind == "time":
        if not isinstance(value, str):
            raise InvalidFilter(
                f"'{field.key}' is compared with an ISO 8601 time string", field.position
            )
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidFilter(f"'{value}' is not an ISO 8601 time", field.position) from None
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    if not isinstance(value, str):
        raise InvalidFilter(f"'{field.key}' is a text field; quote the value", field.position)
    return value


def _compare(column: Column, op: str, value: Any) -> Column:
    ops: dict[str, Callable[[Column, Any], Column]] = {
        "=": lambda c, v: c == v,
        "!=": lambda c, v: c != v,
        "<": lambda c, v: c < v,
        "<=": lambda c, v: c <= v,
        ">": lambda c, v: c > v,
        ">=": lambda c, v: c >= v,
    }
    return ops[op](column, value)


def _like(column: Column, node: Like) -> Column:
    clause = column.ilike(node.pattern) if node.case_insensitive else column.like(node.pattern)
    return sa.not_(clause) if node.negated else clause


# ---------------------------------------------------------------- ordering and paging


@dataclass(frozen=True)
class SortColumn:
    """One ORDER BY term; nullable terms sort NULLs last in either direction."""

    expr: Column
    descending: bool


@dataclass(frozen=True)
class SortJoin:
    """A key/value table joined to sort by one of its keys."""

    table: sa.FromClause
    on: Column
    inner: bool


def sort_columns(
    keys: Sequence[OrderKey], target: Target, required: frozenset[tuple[str, str]] = frozenset()
) -> tuple[list[SortColumn], list[SortJoin]]:
    """ORDER BY terms for ``target`` plus the joins that keyed fields need.

    The row id always ends the list, so every row has a unique sort position. A metric the
    filter already requires (``metrics.auc >= 0.9``) is joined inner and sorted on its raw
    value, which lets the database walk the (key, value) index and stop after one page
    instead of sorting every match.
    """
    columns: list[SortColumn] = []
    joins: list[SortJoin] = []
    for index, key in enumerate(keys):
        field = key.field
        if field.namespace == "attr":
            if field.key not in target.sortable:
                raise InvalidFilter(f"cannot order by '{field.key}'", field.position)
            # created_at sorts by the row id, which is assigned in commit order
            expr = target.row_id if field.key == "created_at" else target.attrs[field.key].column
            columns.append(SortColumn(expr, key.descending))
            continue
        if field.namespace not in target.keyed:
            raise InvalidFilter(
                f"{target.kind} cannot be ordered by {field.namespace}", field.position
            )
        base, owner = target.keyed[field.namespace]
        table = base.alias(f"sort{index}")
        on = sa.and_(table.c[owner] == target.row_id, table.c.key == field.key)
        if (field.namespace, field.key) in required and field.namespace == "metrics":
            joins.append(SortJoin(table, on, inner=True))
            columns.append(SortColumn(table.c.value, key.descending))
            continue
        joins.append(SortJoin(table, on, inner=False))
        value = table.c.value_num if field.namespace == "params" else table.c.value
        _add_nullable(columns, value, key.descending, "" if field.namespace == "tags" else 0.0)
    if not any(c.expr is target.row_id for c in columns):
        columns.append(SortColumn(target.row_id, False))
    return columns, joins


def required_keys(expr: Expr | None) -> frozenset[tuple[str, str]]:
    """Keyed fields (namespace, key) that every row matching ``expr`` must have."""
    conjuncts = expr.items if isinstance(expr, And) else (expr,) if expr is not None else ()
    required = set()
    for item in conjuncts:
        if isinstance(item, Compare):
            implies = True
        elif isinstance(item, In | Like):
            implies = not item.negated
        elif isinstance(item, IsNull):
            implies = item.negated  # IS NOT NULL
        else:
            continue
        if implies and item.field.namespace != "attr":
            required.add((item.field.namespace, item.field.key))
    return frozenset(required)


@dataclass(frozen=True)
class PageQuery:
    """A compiled page request: the statement and what is needed to make the next token."""

    statement: sa.Select[Any]
    columns: list[SortColumn]
    fingerprint: str
    size: int

    def next_token(self, rows: Sequence[Any]) -> str | None:
        """The cursor after this page, or None if ``rows`` (size + 1 fetched) is the last."""
        if len(rows) <= self.size:
            return None
        last = rows[self.size - 1]._mapping
        return encode_token(self.fingerprint, [last[f"k{i}"] for i in range(len(self.columns))])


def page_query(
    target: Target,
    selected: Sequence[Any],
    source: sa.FromClause,
    *,
    filter: str | None,
    order_by: Sequence[str] | str | None,
    page_size: int | None,
    page_token: str | None,
    scope: Scope | None = None,
) -> PageQuery:
    """SELECT ``selected`` FROM ``source`` for one page of a filtered, ordered search,
    limited to ``scope`` (e.g. the models a caller may read) when given."""
    size = check_page_size(page_size)
    order = (order_by,) if isinstance(order_by, str) else tuple(order_by or ())
    key = (target.kind, id(source), filter, order, size, scope.key if scope else None)
    cached = _PLANS.get(key)
    if cached is None:
        cached = _plan(target, selected, source, filter, order_by, size)
        if scope is not None:
            _, unscoped, columns = cached
            scoped = unscoped.where(scope.condition())
            cached = (scoped.order_by(*order_clauses(columns)).limit(size + 1), scoped, columns)
        if len(_PLANS) >= MAX_PLANS:
            _PLANS.clear()  # a crude bound; the hot queries come back at once
        _PLANS[key] = cached
    first_page, filtered, columns = cached
    fingerprint = query_fingerprint(target.kind, filter, order_by)
    if not page_token:
        return PageQuery(first_page, columns, fingerprint, size)
    after = decode_token(page_token, fingerprint, columns)
    statement = filtered.where(keyset_after(columns, after))
    statement = statement.order_by(*order_clauses(columns)).limit(size + 1)
    return PageQuery(statement, columns, fingerprint, size)


@dataclass(frozen=True)
class Scope:
    """An extra condition on a search, built only when ``key`` is not cached yet."""

    key: Hashable
    condition: Callable[[], Any]


# Parsed and built searches, by (kind, source, filter, order, size, scope). Parsing a filter
# and composing its statement costs more Python time than a page query on an index.
_PLANS: dict[tuple[Any, ...], tuple[Any, Any, list[SortColumn]]] = {}
MAX_PLANS = 512


def _plan(
    target: Target,
    selected: Sequence[Any],
    source: sa.FromClause,
    filter: str | None,
    order_by: Sequence[str] | str | None,
    size: int,
) -> tuple[Any, Any, list[SortColumn]]:
    expr = parse_filter(filter, target.fields)
    where = compile_filter(expr, target)
    keys = parse_order_by(order_by or list(target.default_order), target.fields)
    columns, joins = sort_columns(keys, target, required_keys(expr))
    for join in joins:
        source = source.join(join.table, join.on, isouter=not join.inner)
    filtered = (
        sa.select(*selected, *(c.expr.label(f"k{i}") for i, c in enumerate(columns)))
        .select_from(source)
        .where(where)
    )
    first_page = filtered.order_by(*order_clauses(columns)).limit(size + 1)
    return first_page, filtered, columns


def _add_nullable(columns: list[SortColumn], value: Column, descending: bool, blank: Any) -> None:
    # A missing metric sorts last whatever the direction; coalescing keeps every keyset
    # comparison on non-NULL values, so paging never loses or repeats a row.
    columns.append(SortColumn(sa.case((value.is_(None), 1), else_=0), False))
    columns.append(SortColumn(sa.func.coalesce(value, blank), descending))


def order_clauses(columns: Sequence[SortColumn]) -> list[Column]:
    """The ORDER BY list for ``columns``."""
    return [c.expr.desc() if c.descending else c.expr.asc() for c in columns]


def keyset_after(columns: Sequence[SortColumn], values: Sequence[Any]) -> Column:
    """Rows strictly after the row whose sort values are ``values``."""
    alternatives = []
    for i, column in enumerate(columns):
        equal = [columns[j].expr == values[j] for j in range(i)]
        after = column.expr < values[i] if column.descending else column.expr > values[i]
        alternatives.append(sa.and_(*equal, after))
    # The redundant bound on the leading key gives the database an index range to start
    # from; the OR alone makes some planners scan from the first row on every page.
    first = columns[0]
    bound = first.expr <= values[0] if first.descending else first.expr >= values[0]
    return sa.and_(bound, sa.or_(*alternatives))


def query_fingerprint(*parts: object) -> str:
    """A short hash of the query a page token belongs to."""
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def encode_token(fingerprint: str, values: Sequence[Any]) -> str:
    """An opaque cursor: the last row's sort values and the query's fingerprint."""
    plain = [{"t": v.isoformat()} if isinstance(v, datetime) else v for v in values]
    raw = json.dumps({"q": fingerprint, "v": plain}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str, fingerprint: str, columns: Sequence[SortColumn]) -> list[Any]:
    """Read a cursor back; a damaged token, or one from another query, is an error.

    Each value must have its column's type, so a hand-made token cannot reach the
    database as a type error.
    """
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        values = [datetime.fromisoformat(v["t"]) if isinstance(v, dict) else v for v in data["v"]]
        ok = (
            data["q"] == fingerprint
            and len(values) == len(columns)
            and all(_fits(c.expr, v) for c, v in zip(columns, values, strict=True))
        )
    except (ValueError, KeyError, TypeError, AttributeError, NotImplementedError):
        ok = False
    if not ok:
        raise InvalidArgument("invalid page token: it is damaged or belongs to another query")
    return values


def _fits(expr: Column, value: Any) -> bool:
    python_type = expr.type.python_type
    if python_type in (int, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, python_type)


def check_page_size(page_size: int | None) -> int:
    """Validate a page size; None means the default."""
    if page_size is None:
        return DEFAULT_PAGE_SIZE
    if (
        isinstance(page_size, bool)
        or not isinstance(page_size, int)
        or not (1 <= page_size <= MAX_PAGE_SIZE)
    ):
        raise InvalidArgument(f"page_size must be between 1 and {MAX_PAGE_SIZE}, not {page_size!r}")
    return page_size
