"""Writing timeline records: every change appends one in the transaction that makes it."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg.auth.principal import Principal
from modelreg.domain.audit import record_hash
from modelreg.domain.entities import HistoryEvent
from modelreg.errors import IntegrityError
from modelreg.store import tables as t
from modelreg.store.database import before_commit, transaction_state
from modelreg.store.direct import Direct


def utcnow() -> datetime:
    """The one clock of the service layer."""
    return datetime.now(timezone.utc)


_INSERT_EVENT = Direct(sa.insert(t.events))
# The chain head is locked first: changes append one at a time in commit order, so ids
# are dense and a reader following ids never skips a record committed late.
_HEAD = sa.select(t.audit_head.c.seq, t.audit_head.c.hash).where(t.audit_head.c.id == 1)
_HEAD_LOCKED = Direct(_HEAD.with_for_update())
_MOVE_HEAD = Direct(
    sa.update(t.audit_head)
    .where(t.audit_head.c.id == 1)
    .values(seq=sa.bindparam("new_seq"), hash=sa.bindparam("new_hash"))
)


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
    """Append one timeline (and audit) record to the caller's transaction.

    Records are chained by hash (see ``domain.audit``) under the chain head's row lock.
    They are written just before the transaction commits, in the order recorded, so the
    head's lock is the last one a change takes and is held only until its commit.
    """
    state = transaction_state(conn)
    pending: list[dict[str, Any]] | None = state.get(_PENDING)
    if pending is None:
        pending = state[_PENDING] = []
        before_commit(conn, _append_pending)
    pending.append(
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
        }
    )


_PENDING = "modelreg_pending_events"


def _append_pending(conn: Connection) -> None:
    pending: list[dict[str, Any]] = transaction_state(conn).pop(_PENDING)
    head = _HEAD_LOCKED.first(conn)
    if head is None:
        raise IntegrityError(
            "the audit chain's head row is missing, so no change can be recorded: "
            "run `modelreg audit verify` and restore the registry's database"
        )
    seq, digest = int(head.seq), str(head.hash)
    for values in pending:
        seq += 1
        digest = record_hash(digest, id=seq, **values)
        values["id"], values["hash"] = seq, digest
    _INSERT_EVENT.execute_many(conn, pending)
    _MOVE_HEAD.execute(conn, {"new_seq": seq, "new_hash": digest})


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
