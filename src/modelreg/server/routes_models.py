"""/api/v1/models: registered models, their tags, aliases and history."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from starlette.responses import Response

from modelreg.domain.entities import HistoryEvent
from modelreg.server import metrics
from modelreg.server.context import Ctx
from modelreg.server.dispatch import blocking
from modelreg.server.responses import native_page, no_content, ok, page
from modelreg.server.routing import api_router
from modelreg.server.schemas import AliasSet, ModelCreate, ModelUpdate, Tags

router = api_router("/api/v1/models", tags=["models"])

Filter = Annotated[
    str | None, Query(description="Filter, e.g. name LIKE 'fraud%' AND tags.team = 'risk'.")
]
OrderBy = Annotated[
    list[str] | None, Query(description="Sort key, '-' prefix for descending; repeatable.")
]
PageSize = Annotated[int | None, Query(ge=1, le=1000, description="Items per page (100).")]
PageToken = Annotated[str | None, Query(description="next_page_token of the previous page.")]


def _event(event: HistoryEvent) -> dict[str, object]:
    return event.to_dict()


@router.get("", summary="Search models")
def search_models(
    ctx: Ctx,
    filter: Filter = None,
    order_by: OrderBy = None,
    page_size: PageSize = None,
    page_token: PageToken = None,
) -> Response:
    """Models matching a filter, one page at a time (keyset pagination)."""
    found = ctx.registry.service.search_models(
        ctx.principal,
        filter=filter,
        order_by=order_by,
        page_size=page_size,
        page_token=page_token,
    )
    return native_page(found)


@router.post("", status_code=201, summary="Create a model")
def create_model(ctx: Ctx, body: ModelCreate) -> Response:
    """Create a registered model; 409 ALREADY_EXISTS if the name is taken."""
    model = ctx.registry.service.create_model(
        ctx.principal, body.name, description=body.description, tags=body.tags
    )
    return ok(model.to_dict(), 201)


@router.get("/{name}", summary="Get a model")
def get_model(ctx: Ctx, name: str) -> Response:
    """A model with its tags, latest version, stage holders and aliases."""
    return ok(ctx.registry.service.get_model(ctx.principal, name).to_dict())


@router.patch("/{name}", summary="Update a model")
def update_model(ctx: Ctx, name: str, body: ModelUpdate) -> Response:
    """Change a model's description."""
    model = ctx.registry.service.update_model(ctx.principal, name, description=body.description)
    return ok(model.to_dict())


@router.delete("/{name}", status_code=204, summary="Delete a model")
@blocking
def delete_model(ctx: Ctx, name: str, force: bool = False) -> Response:
    """Delete a model and its versions; a model holding an exclusive stage needs force."""
    ctx.registry.service.delete_model(ctx.principal, name, force=force)
    return no_content()


@router.patch("/{name}/tags", status_code=204, summary="Set model tags")
def set_model_tags(ctx: Ctx, name: str, body: Tags) -> Response:
    """Add or overwrite tags on a model."""
    ctx.registry.service.set_tags(ctx.principal, name, body.tags)
    return no_content()


@router.delete("/{name}/tags/{key:path}", status_code=204, summary="Delete a model tag")
def delete_model_tag(ctx: Ctx, name: str, key: str) -> Response:
    """Remove a tag from a model."""
    ctx.registry.service.delete_tag(ctx.principal, name, key)
    return no_content()


@router.put("/{name}/aliases/{alias}", summary="Set an alias")
def set_alias(ctx: Ctx, name: str, alias: str, body: AliasSet) -> Response:
    """Point NAME@alias at a version; returns that version."""
    version = ctx.registry.service.set_alias(ctx.principal, name, alias, body.version)
    metrics.ALIAS_CHANGES.inc()
    return ok(version.to_dict())


@router.delete("/{name}/aliases/{alias}", status_code=204, summary="Delete an alias")
def delete_alias(ctx: Ctx, name: str, alias: str) -> Response:
    """Remove an alias."""
    ctx.registry.service.delete_alias(ctx.principal, name, alias)
    metrics.ALIAS_CHANGES.inc()
    return no_content()


@router.get("/{name}/history", summary="A model's history")
def history(
    ctx: Ctx,
    name: str,
    version: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    page_size: PageSize = None,
    page_token: PageToken = None,
) -> Response:
    """Registrations, stage moves, alias and metadata changes: who, when, why; oldest first."""
    events = ctx.registry.service.history(
        ctx.principal, name, version=version, page_size=page_size, page_token=page_token
    )
    return page(events, _event)
