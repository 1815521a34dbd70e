"""Transition requests: how a version enters a protected stage.

A contributor requests the move with a reason; reviewers other than the requester approve
it; the approval that reaches the policy's count applies the transition in the same
transaction. A reviewer may instead reject it with a comment, and the requester (or an
admin) may cancel it. Every step is recorded in the version's history.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelreg.auth.principal import Principal
from modelreg.auth.roles import Permission, Role
from modelreg.domain.entities import Page
from modelreg.domain.gates import GateEvaluation
from modelreg.domain.governance import REQUEST_STATUSES, Approval, TransitionRequest
from modelreg.domain.lifecycle import Lifecycle
from modelreg.domain.names import validate_model_name
from modelreg.domain.refs import parse_ref
from modelreg.errors import Conflict, InvalidArgument, NotFound, PermissionDenied
from modelreg.service.authz import read_scope, require, require_role
from modelreg.service.common import MAX_REASON, check_text
from modelreg.service.events import record, utcnow
from modelreg.service.gates import enforce_gate, evaluate_gate
from modelreg.service.labels import LabelsService
from modelreg.service.policy import stage_rule
from modelreg.store import queries as q
from modelreg.store import search as s
from modelreg.store import tables as t

_R = t.transition_requests.c
_A = t.request_approvals.c


class RequestsService(LabelsService):
    """Opening, approving, rejecting and cancelling transition requests."""

    def request_transition(
        self, actor: Principal, ref: str, stage: str, *, reason: str
    ) -> TransitionRequest:
        """Ask for a version to be moved into ``stage``; a reason is required."""
        parsed = parse_ref(ref)
        if not isinstance(stage, str):
            raise InvalidArgument("stage must be a string")
        check_text(reason, "reason", MAX_REASON)
        if not reason.strip():
            raise InvalidArgument("a transition request needs a reason")
        target = stage.lower()
        require(actor, Permission.REQUEST, parsed.name, f"request transitions of {parsed.name!r}")
        with self.db.write() as conn:
            q.model_row(conn, parsed.name, lock=True)
            lc = q.lifecycle(conn)
            row = q.version_row(conn, parsed, lc)
            lc.check_transition(row.stage, target)
            # A request that its gate already refuses would only wait to fail: say so now.
            _check_gate(conn, actor, row, target, lc)
            duplicate = conn.execute(
                sa.select(_R.id).where(
                    _R.version_id == row.id, _R.to_stage == target, _R.status == "open"
                )
            ).scalar()
            if duplicate is not None:
                raise Conflict(
                    f"request {duplicate} to move {row.model_name}/{row.version} into "
                    f"{target} is already open",
                    request=duplicate,
                )
            rule = stage_rule(conn, row.model_name, target)
            request_id = conn.execute(
                sa.insert(t.transition_requests)
                .values(
                    version_id=row.id,
                    model_name=row.model_name,
                    version=row.version,
                    from_stage=row.stage,
                    to_stage=target,
                    reason=reason,
                    status="open",
                    approvals_required=max(1, rule.approvals),
                    requested_by=actor.name,
                    requested_at=utcnow(),
                )
                .returning(_R.id)
            ).scalar_one()
            record(
                conn,
                actor,
                "transition_requested",
                row.model_name,
                row.version,
                from_stage=row.stage,
                to_stage=target,
                reason=reason,
                request=request_id,
                approvals_required=max(1, rule.approvals),
            )
            return self._request(conn, request_id)

    def get_request(self, actor: Principal, request_id: int) -> TransitionRequest:
        """One transition request with its approvals."""
        _check_id(request_id)
        with self.db.read() as conn:
            found = self._request(conn, request_id)
        _hide_unreadable(actor, request_id, found.name)
        return found

    def list_requests(
        self,
        actor: Principal,
        *,
        model: str | None = None,
        status: str | None = "open",
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Page[TransitionRequest]:
        """Requests, oldest first, optionally of one model and in one status (default
        open); only requests of models the caller may read."""
        if status is not None and status not in REQUEST_STATUSES:
            raise InvalidArgument(f"unknown status {status!r}: use {', '.join(REQUEST_STATUSES)}")
        if model is not None:
            validate_model_name(model)
            require(actor, Permission.READ, model, f"see requests of {model!r}")
        size = s.check_page_size(page_size)
        fingerprint = s.query_fingerprint("requests", model, status)
        query = sa.select(_R.id)
        if model is not None:
            query = query.where(_R.model_name == model)
        if status is not None:
            query = query.where(_R.status == status)
        scope = read_scope(actor, _R.model_name)
        if scope is not None:
            query = query.where(scope)
        if page_token:
            (after,) = s.decode_token(page_token, fingerprint, [s.SortColumn(_R.id, False)])
            query = query.where(_R.id > after)
        with self.db.read() as conn:
            ids = conn.execute(query.order_by(_R.id).limit(size + 1)).scalars().all()
            items = [self._request(conn, i) for i in ids[:size]]
        token = s.encode_token(fingerprint, [ids[size - 1]]) if len(ids) > size else None

        def more(next_token: str) -> Page[TransitionRequest]:
            return self.list_requests(
                actor, model=model, status=status, page_size=page_size, page_token=next_token
            )

        return Page(items=items, next_page_token=token, fetch_next=more)

    def approve_request(
        self, actor: Principal, request_id: int, *, comment: str = ""
    ) -> TransitionRequest:
        """Approve a request; the approval that reaches the required count applies the
        transition. The requester may not approve their own request."""
        _check_id(request_id)
        check_text(comment, "comment", MAX_REASON)
        with self.db.write() as conn:
            req = self._open_request(conn, actor, request_id)
            rule = stage_rule(conn, req.model_name, req.to_stage)
            self._require_reviewer(actor, req.model_name, rule.role)
            if actor.name == req.requested_by:
                raise PermissionDenied(
                    f"{actor.name} requested this transition and may not approve it: "
                    "approvals must come from someone other than the requester",
                    request=request_id,
                    principal=actor.name,
                )
            already = conn.execute(
                sa.select(_A.approver).where(_A.request_id == request_id, _A.approver == actor.name)
            ).first()
            if already is not None:
                raise Conflict(f"{actor.name} already approved request {request_id}")
            now = utcnow()
            conn.execute(
                sa.insert(t.request_approvals).values(
                    request_id=request_id, approver=actor.name, at=now, comment=comment
                )
            )
            record(
                conn,
                actor,
                "transition_approved",
                req.model_name,
                req.version,
                at=now,
                to_stage=req.to_stage,
                reason=comment or None,
                request=request_id,
            )
            approvers = (
                conn.execute(
                    sa.select(_A.approver).where(_A.request_id == request_id).order_by(_A.at)
                )
                .scalars()
                .all()
            )
            if len(approvers) >= req.approvals_required:
                self._apply(conn, actor, req, list(approvers))
            return self._request(conn, request_id)

    def reject_request(
        self, actor: Principal, request_id: int, *, comment: str
    ) -> TransitionRequest:
        """Reject a request with a comment saying why (reviewers)."""
        _check_id(request_id)
        check_text(comment, "comment", MAX_REASON)
        if not comment.strip():
            raise InvalidArgument("rejecting a request needs a comment")
        with self.db.write() as conn:
            req = self._open_request(conn, actor, request_id)
            rule = stage_rule(conn, req.model_name, req.to_stage)
            self._require_reviewer(actor, req.model_name, rule.role)
            self._close(conn, actor, req, "rejected", comment)
            return self._request(conn, request_id)

    def cancel_request(
        self, actor: Principal, request_id: int, *, comment: str = ""
    ) -> TransitionRequest:
        """Withdraw a request (its requester, or an admin on the model)."""
        _check_id(request_id)
        check_text(comment, "comment", MAX_REASON)
        with self.db.write() as conn:
            req = self._open_request(conn, actor, request_id)
            if actor.name != req.requested_by:
                require(
                    actor,
                    Permission.ADMIN,
                    req.model_name,
                    f"cancel {req.requested_by}'s request {request_id}",
                )
            self._close(conn, actor, req, "cancelled", comment)
            return self._request(conn, request_id)

    # ----------------------------------------------------------------- helpers

    def _require_reviewer(self, actor: Principal, model: str, stage_role: Role) -> None:
        # Deciding needs the stage's role, and never less than reviewer: an unprotected
        # stage open to contributors still has its requests decided by reviewers.
        role = stage_role if stage_role.rank >= Role.REVIEWER.rank else Role.REVIEWER
        require_role(actor, role, model, f"decide requests of {model!r}", "approving and rejecting")

    def _open_request(self, conn: Connection, actor: Principal, request_id: int) -> Any:
        row = conn.execute(
            sa.select(t.transition_requests).where(_R.id == request_id).with_for_update()
        ).first()
        if row is None:
            raise NotFound(f"transition request {request_id} does not exist", request=request_id)
        _hide_unreadable(actor, request_id, row.model_name)
        if row.status != "open":
            raise Conflict(
                f"transition request {request_id} is {row.status}, not open",
                request=request_id,
                status=row.status,
            )
        return row

    def _apply(self, conn: Connection, actor: Principal, req: Any, approvers: list[str]) -> None:
        q.model_row(conn, req.model_name, lock=True)
        lc = q.lifecycle(conn)
        row = conn.execute(
            sa.select(*q.VERSION_COLUMNS)
            .select_from(q.VERSION_FROM)
            .where(t.versions.c.id == req.version_id)
        ).one()
        # The version may have moved since the request was opened; the lifecycle decides
        # again, and a refusal rolls the approval back with it.
        lc.check_transition(row.stage, req.to_stage)
        # The gate is evaluated again against the stage's holder at this moment.
        evaluation = _check_gate(conn, actor, row, req.to_stage, lc)
        gates = {"gates": evaluation.to_dict()} if evaluation is not None else {}
        self._move(
            conn,
            actor,
            row,
            req.to_stage,
            lc,
            req.reason,
            request=req.id,
            requested_by=req.requested_by,
            approved_by=approvers,
            **gates,
        )
        conn.execute(
            sa.update(t.transition_requests)
            .where(_R.id == req.id)
            .values(status="applied", decided_by=actor.name, decided_at=utcnow())
        )

    def _close(
        self, conn: Connection, actor: Principal, req: Any, status: str, comment: str
    ) -> None:
        conn.execute(
            sa.update(t.transition_requests)
            .where(_R.id == req.id)
            .values(status=status, decided_by=actor.name, decided_at=utcnow(), comment=comment)
        )
        record(
            conn,
            actor,
            f"transition_{status}",
            req.model_name,
            req.version,
            to_stage=req.to_stage,
            reason=comment or None,
            request=req.id,
        )

    def _request(self, conn: Connection, request_id: int) -> TransitionRequest:
        row = conn.execute(sa.select(t.transition_requests).where(_R.id == request_id)).first()
        if row is None:
            raise NotFound(f"transition request {request_id} does not exist", request=request_id)
        approvals = conn.execute(
            sa.select(t.request_approvals).where(_A.request_id == request_id).order_by(_A.at)
        ).all()
        return TransitionRequest(
            id=row.id,
            name=row.model_name,
            version=row.version,
            from_stage=row.from_stage,
            to_stage=row.to_stage,
            reason=row.reason,
            status=row.status,
            approvals_required=row.approvals_required,
            requested_by=row.requested_by,
            requested_at=row.requested_at,
            approvals=tuple(Approval(a.approver, a.at, a.comment) for a in approvals),
            decided_by=row.decided_by,
            decided_at=row.decided_at,
            comment=row.comment,
        )


def _check_gate(
    conn: Connection, actor: Principal, row: Any, target: str, lc: Lifecycle
) -> GateEvaluation | None:
    # Requests carry no override: a failing gate is overridden only by an admin's direct
    # transition, with its reason.
    evaluation = evaluate_gate(conn, row, target, lc)
    enforce_gate(evaluation, override=False, reason="", actor=actor, model=row.model_name)
    return evaluation


def _hide_unreadable(actor: Principal, request_id: int, model: str) -> None:
    # A request of a model the caller may not read is answered as if it did not exist,
    # so request ids do not reveal other teams' model names.
    if not actor.has(Permission.READ, model):
        raise NotFound(f"transition request {request_id} does not exist", request=request_id)


def _check_id(request_id: object) -> None:
    # The bound keeps ids inside a 64-bit column on both databases.
    if (
        isinstance(request_id, bool)
        or not isinstance(request_id, int)
        or not 0 < request_id < 2**62
    ):
        raise InvalidArgument(f"request id must be a positive integer, not {request_id!r}")
