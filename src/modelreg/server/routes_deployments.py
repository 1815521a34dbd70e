"""/api/v1/environments and /api/v1/deployments: what runs where."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from starlette.responses import Response

from modelreg.server.context import Ctx
from modelreg.server.responses import ok, page
from modelreg.server.routes_models import PageSize, PageToken
from modelreg.server.routing import api_router
from modelreg.server.schemas import DeploymentCreate, EnvironmentCreate

router = api_router("/api/v1", tags=["deployments"])


@router.get("/environments", summary="List environments")
def list_environments(
    ctx: Ctx, page_size: PageSize = None, page_token: PageToken = None
) -> Response:
    """Every environment, newest first."""
    found = ctx.registry.service.list_environments(
        ctx.principal, page_size=page_size, page_token=page_token
    )
    return page(found, lambda e: e.to_dict())


@router.post("/environments", status_code=201, summary="Create an environment")
def create_environment(ctx: Ctx, body: EnvironmentCreate) -> Response:
    """Create a deployment environment; 409 ALREADY_EXISTS if the name is taken."""
    env = ctx.registry.service.create_environment(
        ctx.principal, body.name, description=body.description
    )
    return ok(env.to_dict(), 201)


@router.post("/deployments", status_code=201, summary="Record a deployment")
def record_deployment(ctx: Ctx, body: DeploymentCreate) -> Response:
    """Record that a version was deployed to an environment (or failed, or was removed);
    emits a ``deployment_recorded`` event."""
    deployment = ctx.registry.service.record_deployment(
        ctx.principal, body.ref, body.environment, status=body.status, note=body.note
    )
    return ok(deployment.to_dict(), 201)


@router.get("/deployments", summary="What runs where")
def list_deployments(
    ctx: Ctx,
    model: Annotated[str | None, Query(description="Only this model.")] = None,
    environment: Annotated[str | None, Query(description="Only this environment.")] = None,
    current: Annotated[
        bool, Query(description="Newest record per environment and model; false: the log.")
    ] = True,
    page_size: PageSize = None,
    page_token: PageToken = None,
) -> Response:
    """The newest deployment record per environment and model, or the whole log."""
    found = ctx.registry.service.list_deployments(
        ctx.principal,
        model=model,
        environment=environment,
        current=current,
        page_size=page_size,
        page_token=page_token,
    )
    return page(found, lambda d: d.to_dict())
