"""Engines, transactions and migrations for SQLite and PostgreSQL.

Write transactions on SQLite start with ``BEGIN IMMEDIATE`` so that concurrent writers in
other processes queue on the busy timeout instead of failing half-way with "database is
locked"; on PostgreSQL writers serialise on row locks (``SELECT ... FOR UPDATE``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from modelreg.errors import Conflict, InvalidArgument, ModelregError, StorageError
from modelreg.store.direct import Direct

HEAD_REVISION = "0005"
_MIGRATIONS = Path(__file__).parent / "migrations"
# Arbitrary but fixed: every process that migrates the same PostgreSQL database takes it.
_PG_MIGRATION_LOCK = 0x6D6F64656C726567


def normalise_url(url: str) -> URL:
    """Parse a database URL; plain ``postgresql://`` means psycopg 3."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InvalidArgument(f"invalid database URL: {exc}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise InvalidArgument(
            f"unsupported database {parsed.get_backend_name()!r}: use sqlite:/// or postgresql://"
        )
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise InvalidArgument("SQLite needs a file path: sqlite:///path/to/registry.db")
        parsed = parsed.set(database=str(Path(parsed.database or "").expanduser()))
    return parsed


class Database:
    """One metadata database: a pooled engine plus read and write transactions."""

    def __init__(self, url: str, *, busy_timeout: float = 60.0, durable: bool = True) -> None:
        self.url = normalise_url(url)
        self.dialect = self.url.get_backend_name()
        kwargs: dict[str, Any] = {}
        if self.dialect == "sqlite":
            assert self.url.database is not None
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": busy_timeout, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
            kwargs["pool_size"] = 5
            kwargs["connect_args"] = {"connect_timeout": 10}
        try:
            self.engine: Engine = sa.create_engine(self.url, **kwargs)
        except (ArgumentError, NoSuchModuleError) as exc:
            raise InvalidArgument(f"cannot open database {self.safe_url}: {exc}") from exc
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine, busy_timeout, durable)

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden, for messages."""
        return self.url.render_as_string(hide_password=True)

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction; committed on success, rolled back on any error."""
        with self._transaction(write=True) as conn:
            yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (one consistent snapshot)."""
        with self._transaction(write=False) as conn:
            yield conn

    @contextlib.contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                conn.execution_options(modelreg_write=write)
                current = conn.info[_TRANSACTION] = _Transaction()
                try:
                    with conn.begin():
                        yield conn
                        for hook in current.hooks:
                            hook(conn)
                finally:
                    # conn.info outlives the transaction (it belongs to the pooled
                    # connection), so nothing of this transaction may stay in it.
                    del conn.info[_TRANSACTION]
        except ModelregError:
            raise
        except sa.exc.IntegrityError as exc:
            # Reached only when a concurrent writer won a race the service layer's checks
            # could not see; the transaction was rolled back, so nothing is half-written.
            raise Conflict(
                f"concurrent change conflicted, nothing was written: {exc.orig}"
            ) from exc
        except (DBAPIError, SQLAlchemyError) as exc:
            raise StorageError(
                f"metadata database {self.safe_url} failed: {_first_line(exc)}"
            ) from exc

    def upgrade(self) -> None:
        """Apply pending migrations; cheap when the schema is already current."""
        try:
            with self.engine.connect() as conn:
                if _revision(conn) == HEAD_REVISION:
                    return
            with self._migration_lock() as conn:
                _run_alembic(conn)
        except ModelregError:
            raise
        except (DBAPIError, SQLAlchemyError) as exc:
            raise StorageError(f"cannot migrate {self.safe_url}: {_first_line(exc)}") from exc

    def current_revision(self) -> str | None:
        """The applied schema revision, or None for an empty database."""
        try:
            with self.engine.connect() as conn:
                return _revision(conn)
        except (DBAPIError, SQLAlchemyError) as exc:
            raise StorageError(f"cannot read {self.safe_url}: {_first_line(exc)}") from exc

    @contextlib.contextmanager
    def _migration_lock(self) -> Iterator[Connection]:
        # Two processes opening a fresh registry at once must not both create the schema.
        if self.dialect == "postgresql":
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
                conn.commit()
                try:
                    yield conn
                finally:
                    conn.execute(
                        sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK}
                    )
                    conn.commit()
            return
        import fcntl

        assert self.url.database is not None
        lock_path = Path(self.url.database).expanduser().with_suffix(".migrate.lock")
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with self.engine.connect() as conn:
                yield conn
        finally:
            os.close(fd)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


_BEGIN_WRITE = Direct(sa.text("BEGIN IMMEDIATE"))
_BEGIN_READ = Direct(sa.text("BEGIN"))


def _configure_sqlite(engine: Engine, busy_timeout: float, durable: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
        # Take transaction control away from the sqlite3 module so BEGIN IMMEDIATE is ours.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        # LIKE is case-sensitive on PostgreSQL; make SQLite agree (ILIKE is the other one).
        cur.execute("PRAGMA case_sensitive_like=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("modelreg_write", True)
        # On the driver's cursor: through exec_driver_sql, this one statement cost as
        # much as a model read's two queries.
        (_BEGIN_WRITE if write else _BEGIN_READ).execute(conn)


def _revision(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    return None if revision is None else str(revision)


def _run_alembic(conn: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = conn
    command.upgrade(config, "head")
    conn.commit()


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_TRANSACTION = "modelreg_transaction"


@dataclass
class _Transaction:
    """What lives exactly as long as one transaction: its hooks and their state."""

    hooks: list[Callable[[Connection], None]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)


def transaction_state(conn: Connection) -> dict[str, Any]:
    """A dict that lives as long as ``conn``'s current transaction, for its hooks."""
    current: _Transaction = conn.info[_TRANSACTION]
    return current.state


def before_commit(conn: Connection, hook: Callable[[Connection], None]) -> None:
    """Run ``hook`` as the last step of ``conn``'s write transaction, before it commits.

    For work that must take its locks last, such as appending to the audit chain, whose
    head row every change locks: taken at the end, it is held only for the commit and
    never waited on while holding another row.
    """
    current: _Transaction | None = conn.info.get(_TRANSACTION)
    if current is None:
        raise RuntimeError("before_commit() needs a connection from Database.write()")
    current.hooks.append(hook)
