"""/api/v1 principals, grants, tokens and whoami: who may act, and how they prove it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from starlette.responses import Response

from modelreg.server.context import Ctx
from modelreg.server.responses import no_content, ok
from modelreg.server.routing import api_router
from modelreg.server.schemas import GrantSet, PrincipalCreate, PrincipalUpdate, TokenCreate

router = api_router("/api/v1", tags=["access"])

Pattern = Annotated[str, Query(description="'*', a model name, or a prefix such as 'fraud-*'.")]


@router.get("/whoami", summary="The calling principal")
def whoami(ctx: Ctx) -> Response:
    """Who the token belongs to, and its grants."""
    return ok(ctx.registry.service.whoami(ctx.principal))


@router.get("/principals", summary="List principals")
def list_principals(ctx: Ctx) -> Response:
    """Every user and service account with its grants (admin)."""
    found = ctx.registry.service.list_principals(ctx.principal)
    return ok({"items": [p.to_dict() for p in found]})


@router.post("/principals", status_code=201, summary="Create a principal")
def create_principal(ctx: Ctx, body: PrincipalCreate) -> Response:
    """A new user or service account, with no grants yet (admin)."""
    created = ctx.registry.service.create_principal(
        ctx.principal, body.name, kind=body.kind, description=body.description
    )
    return ok(created.to_dict(), 201)


@router.get("/principals/{name}", summary="Get a principal")
def get_principal(ctx: Ctx, name: str) -> Response:
    """A principal and its grants (admin, or the principal itself)."""
    return ok(ctx.registry.service.get_principal(ctx.principal, name).to_dict())


@router.patch("/principals/{name}", summary="Disable or enable a principal")
def update_principal(ctx: Ctx, name: str, body: PrincipalUpdate) -> Response:
    """Disabling refuses every token of the principal from the next request on (admin)."""
    found = ctx.registry.service.set_principal_disabled(ctx.principal, name, body.disabled)
    return ok(found.to_dict())


@router.put("/principals/{name}/grants", summary="Grant a role")
def grant(ctx: Ctx, name: str, body: GrantSet) -> Response:
    """Give the principal a role on the models a pattern covers (admin)."""
    return ok(ctx.registry.service.grant(ctx.principal, name, body.role, body.model).to_dict())


@router.delete("/principals/{name}/grants", status_code=204, summary="Revoke a role")
def revoke_grant(ctx: Ctx, name: str, model: Pattern = "*") -> Response:
    """Remove the principal's role on one pattern (admin)."""
    ctx.registry.service.revoke_grant(ctx.principal, name, model)
    return no_content()


@router.post("/tokens", status_code=201, summary="Create an API token")
def create_token(ctx: Ctx, body: TokenCreate) -> Response:
    """A new token for the caller (or, for an admin, any principal). The ``token`` field
    of the answer is the only time the secret is shown."""
    created = ctx.registry.service.create_token(
        ctx.principal, body.principal, name=body.name, expires_in=body.expires_in
    )
    return ok(created.to_dict(), 201)


@router.get("/tokens", summary="List API tokens")
def list_tokens(
    ctx: Ctx,
    principal: Annotated[str | None, Query(description="Whose tokens (default: yours).")] = None,
) -> Response:
    """Tokens without their secrets, newest first."""
    found = ctx.registry.service.list_tokens(ctx.principal, principal)
    return ok({"items": [t.to_dict() for t in found]})


@router.delete("/tokens/{token_id}", summary="Revoke an API token")
def revoke_token(ctx: Ctx, token_id: str) -> Response:
    """Refused from the next request on (its owner, or an admin)."""
    return ok(ctx.registry.service.revoke_token(ctx.principal, token_id).to_dict())
