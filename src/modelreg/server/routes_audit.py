"""/api/v1/audit: the hash-chained record of every change."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Query
from starlette.responses import Response

from modelreg.domain.entities import HistoryEvent
from modelreg.errors import InvalidArgument
from modelreg.server.context import Ctx
from modelreg.server.dispatch import blocking
from modelreg.server.responses import ok, page
from modelreg.server.routes_models import PageSize, PageToken
from modelreg.server.routing import api_router
from modelreg.server.schemas import AuditVerify

router = api_router("/api/v1/audit", tags=["audit"])

Text = Annotated[str | None, Query()]
Time = Annotated[str | None, Query(description="ISO 8601 with a timezone.")]


def _event(event: HistoryEvent) -> dict[str, object]:
    return event.to_dict()


def _time(value: str | None, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidArgument(f"{what} must be an ISO 8601 time, not {value!r}") from None
    if parsed.tzinfo is None:
        raise InvalidArgument(f"{what} needs a timezone, e.g. {value}+00:00")
    return parsed


@router.get("", summary="Read the audit log")
def audit_log(
    ctx: Ctx,
    model: Text = None,
    principal: Text = None,
    kind: Text = None,
    since: Time = None,
    until: Time = None,
    page_size: PageSize = None,
    page_token: PageToken = None,
) -> Response:
    """Every change, oldest first (admin). ``model=`` (empty) selects registry-wide changes."""
    found = ctx.registry.service.audit_log(
        ctx.principal,
        model=model,
        principal=principal,
        kind=kind,
        since=_time(since, "since"),
        until=_time(until, "until"),
        page_size=page_size,
        page_token=page_token,
    )
    return page(found, _event)


@router.post("/verify", summary="Verify the audit chain")
@blocking
def audit_verify(ctx: Ctx, body: AuditVerify) -> Response:
    """Recompute the chain; names the first record edited, removed or moved (admin)."""
    if (body.anchor_seq is None) != (body.anchor_hash is None):
        raise InvalidArgument("give both anchor_seq and anchor_hash, or neither")
    anchor = (body.anchor_seq, body.anchor_hash) if body.anchor_seq and body.anchor_hash else None
    return ok(ctx.registry.service.audit_verify(ctx.principal, anchor=anchor).to_dict())
