"""/api/v1/gates: promotion gate policies of the registry and of each model."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from starlette.responses import Response

from modelreg.server.context import Ctx
from modelreg.server.responses import ok
from modelreg.server.routing import api_router
from modelreg.server.schemas import GatesBody

router = api_router("/api/v1", tags=["gates"])


@router.get("/gates", summary="Registry gate policy")
def get_registry_gates(ctx: Ctx) -> Response:
    """The registry-wide gate policy (revision 0: none set)."""
    return ok(ctx.registry.service.get_gates(ctx.principal, None).to_dict())


@router.put("/gates", summary="Replace the registry gate policy")
def set_registry_gates(ctx: Ctx, body: GatesBody) -> Response:
    """Store a new revision of the registry-wide policy; recorded as a ``gates_set`` event."""
    return ok(ctx.registry.service.set_gates(ctx.principal, body.gates).to_dict())


@router.get("/models/{name}/gates", summary="A model's gate policy")
def get_model_gates(ctx: Ctx, name: str) -> Response:
    """The model's own gate policy; its gates replace the registry's stage by stage."""
    return ok(ctx.registry.service.get_gates(ctx.principal, name).to_dict())


@router.put("/models/{name}/gates", summary="Replace a model's gate policy")
def set_model_gates(ctx: Ctx, name: str, body: GatesBody) -> Response:
    """Store a new revision of the model's policy; recorded as a ``gates_set`` event."""
    return ok(ctx.registry.service.set_gates(ctx.principal, body.gates, model=name).to_dict())


@router.get("/gates/check", summary="Evaluate a gate without moving")
def check_gates(
    ctx: Ctx,
    ref: Annotated[str, Query(description="The candidate, e.g. fraud/8 or fraud@staging.")],
    stage: Annotated[str, Query(description="The stage it would enter.")],
) -> Response:
    """Each rule of the gate ``ref`` would meet entering ``stage``, with values and outcome."""
    return ok(ctx.registry.service.check_gates(ctx.principal, ref, stage).to_dict())
