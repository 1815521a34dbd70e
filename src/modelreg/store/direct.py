"""Statements run on the database driver's own cursor, for the registry's hottest paths.

``Connection.execute`` spends about 45 µs a statement beyond the driver's own work (an
execution context, event dispatch, result metadata), measured on the reference machine
where the driver took 10 µs. A registration runs eight statements and a model read two,
so that was a fifth to a third of their time in the service layer.

A ``Direct`` statement is compiled by SQLAlchemy once per dialect, so its SQL is exactly
what SQLAlchemy would send, and then runs on the DBAPI cursor of the caller's connection,
inside the caller's transaction, with the column types' own processors for parameters and
results. Driver errors are raised as SQLAlchemy's exception classes, so the database
layer's error handling cannot tell the difference.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

Processor = Callable[[Any], Any]


@dataclass(slots=True)
class _Compiled:
    sql: str
    dialect: Dialect
    # Parameter names in order for a positional paramstyle (SQLite's qmark), else None.
    positional: tuple[str, ...] | None
    defaults: dict[str, Any]
    binds: tuple[tuple[str, Processor], ...]
    column_types: tuple[sa.types.TypeEngine[Any], ...]
    make_row: Callable[[Iterable[Any]], Any] | None
    # (column index, processor) for the result columns that have one; set on the first
    # execution, as a processor may depend on the type the driver reports (PostgreSQL's
    # numeric types).
    results: tuple[tuple[int, Processor], ...] | None = None


class Direct:
    """A Core statement that runs on the DBAPI cursor (see the module's docstring).

    An insert or update is compiled for the keys of the parameters it is given, as
    SQLAlchemy does: an insert names those columns and fills the others' defaults."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._dml = isinstance(statement, sa.sql.expression.UpdateBase)
        # By dialect and, for an insert or update, the parameters' keys. Two threads
        # compiling the same entry at once each get a correct one: no lock needed.
        self._cache: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    def all(self, conn: Connection, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every result row (named tuples, values processed as SQLAlchemy would)."""
        return self._fetch(conn, params, one=False)

    def first(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Any | None:
        """The first result row, or None."""
        rows = self._fetch(conn, params, one=True)
        return rows[0] if rows else None

    def execute(self, conn: Connection, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement whose result is not needed."""
        params = params or {}
        self._run(conn, self._compiled(conn.dialect, params), params).close()

    def execute_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run a statement once per parameter set (an insert of many rows, all with the
        same keys)."""
        if rows:
            self._run(conn, self._compiled(conn.dialect, rows[0]), rows, many=True).close()

    def _fetch(self, conn: Connection, params: Mapping[str, Any] | None, *, one: bool) -> list[Any]:
        params = params or {}
        compiled = self._compiled(conn.dialect, params)
        cursor = self._run(conn, compiled, params)
        try:
            fetched = cursor.fetchmany(1) if one else cursor.fetchall()
            _learn_results(compiled, cursor)
        finally:
            cursor.close()
        return _rows(compiled, fetched)

    def _run(
        self,
        conn: Connection,
        compiled: _Compiled,
        params: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        many: bool = False,
    ) -> Any:
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None  # a Connection in a transaction holds its DBAPI one
        cursor = dbapi.cursor()
        try:
            if many:
                assert isinstance(params, Sequence)
                cursor.executemany(compiled.sql, [_bind(compiled, p) for p in params])
            else:
                assert isinstance(params, Mapping)
                cursor.execute(compiled.sql, _bind(compiled, params))
        except conn.dialect.loaded_dbapi.Error as exc:
            cursor.close()
            raise sa.exc.DBAPIError.instance(
                compiled.sql, None, exc, conn.dialect.loaded_dbapi.Error
            ) from exc
        return cursor

    def _compiled(self, dialect: Dialect, params: Mapping[str, Any]) -> _Compiled:
        keys = tuple(params) if self._dml else ()
        found = self._cache.get((dialect.name, keys))
        if found is None:
            found = self._cache[(dialect.name, keys)] = _compile(
                self.statement, dialect, list(keys) if self._dml else None
            )
        return found


def _bind(compiled: _Compiled, params: Mapping[str, Any]) -> Any:
    values = {**compiled.defaults, **params}
    for name, process in compiled.binds:
        if name in values:
            values[name] = process(values[name])
    if compiled.positional is None:
        return values
    return tuple(values[name] for name in compiled.positional)


def _learn_results(compiled: _Compiled, cursor: Any) -> None:
    if compiled.results is not None or compiled.make_row is None:
        return
    dialect, found = compiled.dialect, []
    for index, (type_, described) in enumerate(
        zip(compiled.column_types, cursor.description, strict=True)
    ):
        process = type_.dialect_impl(dialect).result_processor(dialect, described[1])
        if process is not None:
            found.append((index, process))
    compiled.results = tuple(found)


def _rows(compiled: _Compiled, fetched: Sequence[Sequence[Any]]) -> list[Any]:
    make = compiled.make_row
    assert make is not None, "the statement returns no rows"
    if not compiled.results:
        return [make(row) for row in fetched]
    out = []
    for row in fetched:
        values = list(row)
        for index, process in compiled.results:
            values[index] = process(values[index])
        out.append(make(values))
    return out


def _compile(statement: ClauseElement, dialect: Dialect, keys: list[str] | None) -> _Compiled:
    compiled = statement.compile(dialect=dialect, column_keys=keys)
    assert isinstance(compiled, SQLCompiler)  # a query or DML statement, not DDL
    names = compiled.bind_names  # each bind parameter -> its name in the SQL
    defaults: dict[str, Any] = {}
    binds: list[tuple[str, Processor]] = []
    for param, name in names.items():
        if not param.required:
            defaults[name] = param.effective_value
        process = param.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            binds.append((name, process))
    # Columns left out of an insert or update whose Python-side default SQLAlchemy would
    # compute while executing: a constant is all this schema uses, so it is bound here.
    prefetched = [(c, c.default) for c in compiled.insert_prefetch]
    prefetched += [(c, c.onupdate) for c in compiled.update_prefetch]
    for column, default in prefetched:
        if not (isinstance(default, sa.schema.ColumnDefault) and default.is_scalar):
            raise TypeError(f"{column}: only constant defaults run directly, not {default!r}")
        defaults[column.key] = default.arg
    columns = _result_columns(statement)
    make_row = None
    if columns:
        row_type = namedtuple("Row", [name for name, _ in columns], rename=True)  # type: ignore[misc]
        make_row = row_type._make
    positional = tuple(compiled.positiontup) if compiled.positiontup is not None else None
    return _Compiled(
        sql=compiled.string,
        dialect=dialect,
        positional=positional,
        defaults=defaults,
        binds=tuple(binds),
        column_types=tuple(type_ for _name, type_ in columns),
        make_row=make_row,
    )


def _result_columns(statement: ClauseElement) -> list[tuple[str, sa.types.TypeEngine[Any]]]:
    if isinstance(statement, sa.sql.expression.SelectBase):
        return [(str(c.key), c.type) for c in statement.selected_columns]
    if isinstance(statement, sa.sql.expression.UpdateBase):
        return [(d["name"], d["type"]) for d in statement.returning_column_descriptions]
    return []
