"""Writing timeline records: every change appends one in the transaction that makes it."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg.auth.principal import Principal
from modelreg.domain.entities import HistoryEvent
from modelreg.store import tables as t


def utcnow() -> datetime:
    """The one clock of the service layer."""
    return datetime.now(timezone.utc)


_INSERT_EVENT = sa.insert(t.events)


def record(
    conn: Connection,
    actor: Principal,
    kind: str,
    model: str,
    version: int | None = None,
    *,
    at: datetime | None = None,
    from_stage: str | None = None,
    to_stage: str | None = None,
    reason: str | None = None,
    **details: Any,
) -> None:
    """Append one timeline record inside the caller's transaction."""
    # A plain insert with its values as parameters: no per-call statement building.
    conn.execute(
        _INSERT_EVENT,
        {
            "at": at or utcnow(),
            "actor": actor.name,
            "kind": kind,
            "model_name": model,
            "version": version,
            "from_stage": from_stage,
            "to_stage": to_stage,
            "reason": reason,
            "details": json.dumps(details, sort_keys=True, default=str),
        },
    )


def to_event(row: Any) -> HistoryEvent:
    """Turn an events row into a HistoryEvent."""
    return HistoryEvent(
        id=row.id,
        at=row.at,
        actor=row.actor,
        kind=row.kind,
        name=row.model_name,
        version=row.version,
        from_stage=row.from_stage,
        to_stage=row.to_stage,
        reason=row.reason,
        details=json.loads(row.details),
    )
