"""What every part of the service layer shares: the stores, small loaders, input checks."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg.artifacts.base import ArtifactStore
from modelreg.domain.entities import Model, ModelVersion
from modelreg.domain.lifecycle import Lifecycle
from modelreg.domain.names import validate_key, validate_tag_value
from modelreg.domain.refs import Ref
from modelreg.errors import InvalidArgument
from modelreg.store import queries as q
from modelreg.store import search as s
from modelreg.store import tables as t
from modelreg.store.database import Database

MAX_DESCRIPTION = 20_000
MAX_REASON = 2_000


class ServiceBase:
    """The metadata database and blob store every use case works on."""

    def __init__(self, db: Database, blobs: ArtifactStore) -> None:
        self.db = db
        self.blobs = blobs

    def _model(self, conn: Connection, name: str) -> Model:
        return q.load_models(conn, [q.model_row(conn, name)])[0]

    def _version(self, conn: Connection, ref: Ref, lc: Lifecycle | None = None) -> ModelVersion:
        return q.load_versions(conn, [q.version_row(conn, ref, lc)])[0]

    def _write_tags(
        self, conn: Connection, table: sa.Table, owner: str, owner_id: int, tags: dict[str, str]
    ) -> None:
        if not tags:
            return
        conn.execute(
            sa.delete(table).where(table.c[owner] == owner_id, table.c.key.in_(list(tags)))
        )
        conn.execute(
            sa.insert(table), [{owner: owner_id, "key": k, "value": v} for k, v in tags.items()]
        )


def check_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    """Validated tags (string keys and values), or InvalidArgument/InvalidName."""
    if tags is not None and not isinstance(tags, Mapping):
        raise InvalidArgument("tags must be a mapping of strings")
    return {validate_key(k, "tag"): validate_tag_value(k, v) for k, v in (tags or {}).items()}


def check_text(value: object, what: str, limit: int) -> None:
    """Refuse a free-text field that is not a string or is longer than ``limit``."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} must be a string")
    if len(value) > limit:
        raise InvalidArgument(f"{what} is longer than {limit} characters")


def param_text(value: Any) -> str | None:
    """The text form of a parameter, which string filters compare against."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def param_number(value: Any) -> float | None:
    """The numeric form of a parameter, which number filters compare against."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def delta(a: float | None, b: float | None) -> float | None:
    """``b - a`` when both exist and the difference is finite."""
    if a is None or b is None:
        return None
    difference = b - a
    return difference if math.isfinite(difference) else None


def upsert_setting(conn: Connection, key: str, value: str) -> None:
    """Insert or replace one registry-wide setting inside the caller's transaction."""
    updated = conn.execute(
        sa.update(t.settings).where(t.settings.c.key == key).values(value=value)
    ).rowcount
    if not updated:
        conn.execute(sa.insert(t.settings).values(key=key, value=value))


def rows_by_id(
    conn: Connection,
    query: sa.Select[Any],
    id_column: sa.ColumnElement[Any],
    *,
    fingerprint: str,
    page_size: int | None,
    page_token: str | None,
) -> tuple[list[Any], str | None]:
    """One page of ``query``, newest (highest id) first, and the next page's token."""
    size = s.check_page_size(page_size)
    if page_token:
        (before,) = s.decode_token(page_token, fingerprint, [s.SortColumn(id_column, True)])
        query = query.where(id_column < before)
    rows = list(conn.execute(query.order_by(id_column.desc()).limit(size + 1)).all())
    token = s.encode_token(fingerprint, [rows[size - 1].id]) if len(rows) > size else None
    return rows[:size], token
