"""The audit log: every change's record, hash-chained; reading it and proving it intact."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg.auth.principal import Principal
from modelreg.auth.roles import Permission
from modelreg.domain.audit import GENESIS, record_hash
from modelreg.domain.entities import HistoryEvent, Page
from modelreg.domain.governance import AuditReport
from modelreg.errors import InvalidArgument
from modelreg.service.authz import require
from modelreg.service.common import ServiceBase
from modelreg.service.events import to_event
from modelreg.store import search as s
from modelreg.store import tables as t

_E = t.events.c
_CONTENT = ("at", "actor", "kind", "model_name", "version", "from_stage", "to_stage", "reason")
# Records around a break that are searched for the break's content, to tell a record that
# was moved from one that was edited.
_WINDOW = 32


class AuditService(ServiceBase):
    """Reading and verifying the audit chain (admin on every model)."""

    def audit_log(
        self,
        actor: Principal,
        *,
        model: str | None = None,
        principal: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[HistoryEvent]:
        """Every change, oldest first, filtered by model (``""``: registry-wide changes),
        acting principal, kind and time."""
        require(actor, Permission.ADMIN, None, "read the audit log")
        for bound, what in ((since, "since"), (until, "until")):
            if bound is not None and (not isinstance(bound, datetime) or bound.tzinfo is None):
                raise InvalidArgument(f"{what} must be a timezone-aware datetime")
        size = s.check_page_size(page_size)
        fingerprint = s.query_fingerprint("audit", model, principal, kind, since, until)
        query = sa.select(t.events)
        for column, value in ((_E.model_name, model), (_E.actor, principal), (_E.kind, kind)):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(_E.at >= since)
        if until is not None:
            query = query.where(_E.at < until)
        if page_token:
            (after,) = s.decode_token(page_token, fingerprint, [s.SortColumn(_E.id, False)])
            query = query.where(_E.id > after)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(_E.id).limit(size + 1)).all()
        token = s.encode_token(fingerprint, [rows[size - 1].id]) if len(rows) > size else None

        def more(next_token: str) -> Page[HistoryEvent]:
            return self.audit_log(
                actor,
                model=model,
                principal=principal,
                kind=kind,
                since=since,
                until=until,
                page_size=page_size,
                page_token=next_token,
            )

        return Page(
            items=[to_event(r) for r in rows[:size]], next_page_token=token, fetch_next=more
        )

    def audit_verify(
        self, actor: Principal, *, anchor: tuple[int, str] | None = None
    ) -> AuditReport:
        """Recompute the whole chain and name the first record that was edited, removed or
        moved. ``anchor`` (a record id and the hash noted for it earlier, e.g. from a past
        report's head) also proves the chain was not rewritten wholesale since then."""
        require(actor, Permission.ADMIN, None, "verify the audit log")
        with self.db.read() as conn:
            head = conn.execute(sa.select(t.audit_head).where(t.audit_head.c.id == 1)).first()
            if head is None:
                return AuditReport(False, 0, 0, "", 1, "the chain head is missing")
            rows = conn.execution_options(yield_per=2000).execute(
                sa.select(t.events).order_by(_E.id)
            )
            try:
                report = _walk(conn, rows, head)
            finally:
                rows.close()  # a break ends the walk early, with the cursor still open
            if report.ok and anchor is not None:
                report = _check_anchor(conn, report, anchor)
        return report


def _hash_of(row: Any, previous: str, position: int | None = None) -> str:
    content = {name: getattr(row, name) for name in _CONTENT}
    return record_hash(
        previous, id=row.id if position is None else position, details=row.details, **content
    )


def _walk(conn: Connection, rows: Iterable[Any], head: Any) -> AuditReport:
    previous, count, last_id = GENESIS, 0, 0

    def broken(first_bad: int, problem: str) -> AuditReport:
        return AuditReport(False, count, head.seq, head.hash, first_bad, problem)

    for row in rows:
        expected = last_id + 1
        if row.id != expected:
            return broken(expected, f"record {expected} was removed (the next record is {row.id})")
        if _hash_of(row, previous) != row.hash:
            return broken(row.id, _diagnose(conn, row, previous))
        previous, last_id, count = row.hash, row.id, count + 1
    if head.seq > last_id:
        return broken(last_id + 1, f"records {last_id + 1} to {head.seq} were removed")
    if head.seq < last_id or head.hash != previous:
        return broken(last_id, f"record {last_id} does not match the chain head")
    return AuditReport(True, count, head.seq, head.hash)


def _diagnose(conn: Connection, row: Any, previous: str) -> str:
    """Why record ``row`` fails: moved from another position, or edited."""
    nearby = conn.execute(
        sa.select(_E.id, _E.hash)
        .where(_E.id.between(row.id - _WINDOW - 1, row.id + _WINDOW))
        .order_by(_E.id)
    ).all()
    # A moved record still hashes right at its original position after its original
    # predecessor, both of which now sit somewhere nearby.
    predecessors = [GENESIS, *(r.hash for r in nearby)]
    for position in sorted({r.id for r in nearby} - {row.id}, key=lambda p: abs(p - row.id)):
        for before in predecessors:
            if _hash_of(row, before, position) == row.hash:
                return f"record {row.id} was moved: it was written as record {position} (reordered)"
    return f"record {row.id} was edited: its content does not match its hash"


def _check_anchor(conn: Connection, report: AuditReport, anchor: tuple[int, str]) -> AuditReport:
    seq, digest = anchor
    stored = conn.execute(sa.select(_E.hash).where(_E.id == seq)).scalar()
    if stored == digest:
        return report
    problem = (
        f"record {seq} no longer has the anchored hash: the chain was rewritten"
        if stored is not None
        else f"anchored record {seq} is missing: the chain was rewritten or truncated"
    )
    return AuditReport(False, report.records, report.head_seq, report.head_hash, seq, problem)
