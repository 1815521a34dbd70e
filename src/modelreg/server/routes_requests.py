"""/api/v1 lifecycle policies and transition requests."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from starlette.responses import Response

from modelreg.domain.governance import TransitionRequest
from modelreg.domain.policy import Policy
from modelreg.server.context import Ctx
from modelreg.server.responses import no_content, ok, page
from modelreg.server.routes_models import PageSize, PageToken
from modelreg.server.routing import api_router
from modelreg.server.schemas import Decision, PolicyBody, RequestCreate

router = api_router("/api/v1", tags=["governance"])

Status = Annotated[
    str, Query(description="open, applied, rejected, cancelled, or any (default open).")
]


RequestId = Annotated[int, Path(ge=1, le=2**62, description="The request's id.")]


def _request(found: TransitionRequest) -> dict[str, object]:
    return found.to_dict()


@router.get("/policy", summary="Get the registry's policy")
def get_policy(ctx: Ctx) -> Response:
    """Which role may move versions into each stage, and which stages are protected."""
    return ok(ctx.registry.service.get_policy(ctx.principal).to_dict())


@router.put("/policy", summary="Replace the registry's policy")
def set_policy(ctx: Ctx, body: PolicyBody) -> Response:
    """Replace the registry-wide rules (admin on every model); versioned and audited."""
    policy = Policy.from_dict(body.model_dump())
    return ok(ctx.registry.service.set_policy(ctx.principal, policy).to_dict())


@router.get("/models/{name}/policy", summary="Get a model's policy")
def get_model_policy(ctx: Ctx, name: str) -> Response:
    """The rules in force for one model: the registry's, with the model's own on top."""
    return ok(ctx.registry.service.get_policy(ctx.principal, name).to_dict())


@router.put("/models/{name}/policy", summary="Set a model's policy")
def set_model_policy(ctx: Ctx, name: str, body: PolicyBody) -> Response:
    """Replace the model's own rules (admin on the model)."""
    policy = Policy.from_dict(body.model_dump())
    return ok(ctx.registry.service.set_policy(ctx.principal, policy, name).to_dict())


@router.delete("/models/{name}/policy", status_code=204, summary="Drop a model's policy")
def delete_model_policy(ctx: Ctx, name: str) -> Response:
    """The registry's rules apply to the model again (admin on the model)."""
    ctx.registry.service.delete_policy(ctx.principal, name)
    return no_content()


@router.post("/requests", status_code=201, summary="Request a transition")
def create_request(ctx: Ctx, body: RequestCreate) -> Response:
    """Ask for a version to enter a stage; reviewers other than you approve it."""
    created = ctx.registry.service.request_transition(
        ctx.principal, body.ref, body.stage, reason=body.reason
    )
    return ok(created.to_dict(), 201)


@router.get("/requests", summary="List transition requests")
def list_requests(
    ctx: Ctx,
    model: Annotated[str | None, Query(description="Only this model's requests.")] = None,
    status: Status = "open",
    page_size: PageSize = None,
    page_token: PageToken = None,
) -> Response:
    """Requests of models you may read, oldest first."""
    found = ctx.registry.service.list_requests(
        ctx.principal,
        model=model,
        status=None if status == "any" else status,
        page_size=page_size,
        page_token=page_token,
    )
    return page(found, _request)


@router.get("/requests/{request_id}", summary="Get a transition request")
def get_request(ctx: Ctx, request_id: RequestId) -> Response:
    """One request with its approvals."""
    return ok(ctx.registry.service.get_request(ctx.principal, request_id).to_dict())


@router.post("/requests/{request_id}/approve", summary="Approve a transition request")
def approve_request(ctx: Ctx, request_id: RequestId, body: Decision) -> Response:
    """Approve; the approval that completes the count applies the transition."""
    found = ctx.registry.service.approve_request(ctx.principal, request_id, comment=body.comment)
    return ok(found.to_dict())


@router.post("/requests/{request_id}/reject", summary="Reject a transition request")
def reject_request(ctx: Ctx, request_id: RequestId, body: Decision) -> Response:
    """Reject with a comment saying why (reviewers)."""
    found = ctx.registry.service.reject_request(ctx.principal, request_id, comment=body.comment)
    return ok(found.to_dict())


@router.post("/requests/{request_id}/cancel", summary="Cancel a transition request")
def cancel_request(ctx: Ctx, request_id: RequestId, body: Decision) -> Response:
    """Withdraw a request (its requester, or an admin on the model)."""
    found = ctx.registry.service.cancel_request(ctx.principal, request_id, comment=body.comment)
    return ok(found.to_dict())
