"""Statements run on the driver's cursor give what SQLAlchemy's execute gives, on both
databases, and fail the same way."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from modelreg.config import Config
from modelreg.embedded import EmbeddedRegistry
from modelreg.errors import Conflict, StorageError
from modelreg.store import tables as t
from modelreg.store.direct import Direct

NOW = datetime(2026, 11, 27, 12, 30, 15, 123456, tzinfo=timezone.utc)
INSERT_MODEL = Direct(sa.insert(t.models))


@pytest.fixture
def registry(registry_uri: str, tmp_path: Path) -> Iterator[EmbeddedRegistry]:
    config = Config.load(uri=registry_uri, artifacts=str(tmp_path / "blobs"), auth="off")
    registry = EmbeddedRegistry(config)
    yield registry
    registry.close()


def _model(name: str, description: str = "") -> dict[str, object]:
    return {
        "name": name,
        "description": description,
        "created_at": NOW,
        "created_by": "alice",
        "updated_at": NOW,
        "next_version": 1,
    }


def test_rows_match_sqlalchemy(registry: EmbeddedRegistry) -> None:
    with registry.db.write() as conn:
        INSERT_MODEL.execute_many(conn, [_model("fraud", "scores"), _model("churn")])
    query = sa.select(t.models).where(t.models.c.name == sa.bindparam("name"))
    with registry.db.read() as conn:
        direct = Direct(query).first(conn, {"name": "fraud"})
        expected = conn.execute(query, {"name": "fraud"}).first()
    assert direct is not None
    assert expected is not None
    assert tuple(direct) == tuple(expected)
    assert direct._fields == tuple(expected._fields)
    # Timestamps come back aware and exact, like every other read of the store.
    assert direct.created_at == NOW
    assert direct.created_at.tzinfo is not None
    assert direct.description == "scores"


def test_parameters_with_defaults_and_limits(registry: EmbeddedRegistry) -> None:
    with registry.db.write() as conn:
        INSERT_MODEL.execute_many(conn, [_model(f"m-{i}") for i in range(5)])
    # A literal and a LIMIT are parameters the statement carries itself.
    query = Direct(
        sa.select(sa.literal("x", sa.Text()).label("kind"), t.models.c.name)
        .where(t.models.c.name > sa.bindparam("after"))
        .order_by(t.models.c.name)
        .limit(2)
    )
    with registry.db.read() as conn:
        rows = query.all(conn, {"after": "m-1"})
    assert [(r.kind, r.name) for r in rows] == [("x", "m-2"), ("x", "m-3")]


def test_a_missing_row_is_none(registry: EmbeddedRegistry) -> None:
    with registry.db.read() as conn:
        assert Direct(sa.select(t.models.c.id).where(t.models.c.name == "nope")).first(conn) is None


def test_returning_gives_the_new_row(registry: EmbeddedRegistry) -> None:
    insert = Direct(sa.insert(t.models).returning(t.models.c.id))
    with registry.db.write() as conn:
        first = insert.first(conn, _model("a"))
        second = insert.first(conn, _model("b"))
    assert first is not None
    assert second is not None
    assert second.id == first.id + 1


def test_an_insert_names_the_columns_it_is_given(registry: EmbeddedRegistry) -> None:
    # Compiled for each call's keys, as SQLAlchemy does: the columns left out get their
    # defaults (description "" and next_version 1 for a model).
    given = _model("fraud", "scores")
    short = {k: v for k, v in _model("churn").items() if k not in ("description", "next_version")}
    with registry.db.write() as conn:
        INSERT_MODEL.execute(conn, given)
        INSERT_MODEL.execute(conn, short)
    query = Direct(sa.select(t.models.c.name, t.models.c.description, t.models.c.next_version))
    with registry.db.read() as conn:
        rows = sorted(tuple(r) for r in query.all(conn))
    assert rows == [("churn", "", 1), ("fraud", "scores", 1)]


def test_a_driver_error_is_the_store_error_it_always_was(registry: EmbeddedRegistry) -> None:
    with registry.db.write() as conn:
        INSERT_MODEL.execute(conn, _model("fraud"))

    # A unique violation surfaces as Conflict, and the transaction is rolled back.
    def insert_both() -> None:
        with registry.db.write() as conn:
            INSERT_MODEL.execute(conn, _model("other"))
            INSERT_MODEL.execute(conn, _model("fraud"))

    with pytest.raises(Conflict):
        insert_both()
    with registry.db.read() as conn:
        names = [r.name for r in Direct(sa.select(t.models.c.name)).all(conn)]
    assert names == ["fraud"]

    # Any other driver failure is a StorageError.
    def read_bad_column() -> None:
        with registry.db.read() as conn:
            Direct(sa.text("SELECT no_such_column FROM models")).all(conn)

    with pytest.raises(StorageError):
        read_bad_column()
