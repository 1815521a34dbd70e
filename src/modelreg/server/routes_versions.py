"""/api/v1/models/{name}/versions, search, resolve and compare."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from starlette.responses import Response

from modelreg.domain.codec import comparison_to_wire
from modelreg.domain.entities import ModelVersion
from modelreg.domain.manifest import FileEntry
from modelreg.errors import InvalidArgument, ManifestMismatch
from modelreg.server import metrics
from modelreg.server.context import Ctx, version_ref
from modelreg.server.responses import no_content, ok, page
from modelreg.server.routes_models import Filter, OrderBy, PageSize, PageToken
from modelreg.server.routing import api_router
from modelreg.server.schemas import Tags, Transition, VersionCreate, VersionUpdate

router = api_router("/api/v1", tags=["versions"])
REMOTE_SOURCES = ("s3://", "http://", "https://")

Selector = Annotated[
    str, Path(description="A version number (3) or a label (@production, @champion, @latest).")
]


def _version(version: ModelVersion) -> dict[str, object]:
    return version.to_dict()


@router.get("/models/{name}/versions", summary="List a model's versions")
def list_versions(
    ctx: Ctx, name: str, page_size: PageSize = None, page_token: PageToken = None
) -> Response:
    """A model's versions, newest first."""
    found = ctx.registry.service.list_versions(
        ctx.principal, name, page_size=page_size, page_token=page_token
    )
    return page(found, _version)


@router.post("/models/{name}/versions", status_code=201, summary="Create a version")
def create_version(ctx: Ctx, name: str, body: VersionCreate) -> Response:
    """Commit a version; creates the model if it is new.

    Metadata is validated first. If blobs of the manifest are not stored yet, nothing is
    written and the answer is 409 MANIFEST_MISMATCH with ``details.missing``, the digests
    to upload (PUT /api/v1/blobs/{sha256}) before sending the same request again. A
    client that expects its blobs to be stored (a re-registration) needs one request.
    """
    service, actor = ctx.registry.service, ctx.principal
    kwargs: dict[str, Any] = {
        "metrics": body.metrics,
        "params": body.params,
        "lineage": body.lineage,
        "tags": body.tags,
        "description": body.description,
    }
    entries = [FileEntry(f.path, f.size, f.sha256, f.source) for f in body.files]
    for entry in entries:
        if entry.source is not None and not entry.source.startswith(REMOTE_SOURCES):
            # The server would read that path on its own disk when it verifies.
            raise InvalidArgument(
                f"external source {entry.source!r}: through the server, only s3:// and "
                "http(s):// files can be referenced",
                path=entry.path,
            )
    try:
        version = service.create_version(actor, name, entries, **kwargs)
    except ManifestMismatch:
        # Before the client uploads anything, the checks that need the database
        # (parents exist) run too: bad metadata is refused before bytes are sent.
        service.check_version_input(actor, name, **kwargs)
        raise
    metrics.REGISTRATIONS.inc()
    return ok(version.to_dict(), 201)


@router.get("/models/{name}/versions/{selector}", summary="Get or resolve a version")
def get_version(ctx: Ctx, name: str, selector: Selector) -> Response:
    """A version by number (``3``) or label (``@production``, ``@champion``, ``@latest``)."""
    return ok(ctx.registry.service.get(ctx.principal, version_ref(name, selector)).to_dict())


@router.patch("/models/{name}/versions/{selector}", summary="Update a version")
def update_version(ctx: Ctx, name: str, selector: Selector, body: VersionUpdate) -> Response:
    """Change a version's description."""
    version = ctx.registry.service.update_version(
        ctx.principal, version_ref(name, selector), description=body.description
    )
    return ok(version.to_dict())


@router.delete("/models/{name}/versions/{selector}", status_code=204, summary="Delete a version")
def delete_version(ctx: Ctx, name: str, selector: Selector) -> Response:
    """Delete a version; its number is never reused. Refused while it is in production."""
    ctx.registry.service.delete_version(ctx.principal, version_ref(name, selector))
    return no_content()


@router.post("/models/{name}/versions/{selector}/transitions", summary="Move to a stage")
def transition(ctx: Ctx, name: str, selector: Selector, body: Transition) -> Response:
    """Move a version to a stage, recording who, when and why; returns the version.

    A failing promotion gate answers 422 POLICY_VIOLATION with the evaluation in
    ``details.evaluation``, unless ``override`` is set with a reason."""
    version = ctx.registry.service.transition(
        ctx.principal,
        version_ref(name, selector),
        body.stage,
        reason=body.reason,
        override=body.override,
    )
    metrics.TRANSITIONS.labels(stage=version.stage).inc()
    return ok(version.to_dict())


@router.patch("/models/{name}/versions/{selector}/tags", status_code=204, summary="Set tags")
def set_version_tags(ctx: Ctx, name: str, selector: Selector, body: Tags) -> Response:
    """Add or overwrite tags on a version."""
    ctx.registry.service.set_tags(ctx.principal, version_ref(name, selector), body.tags)
    return no_content()


@router.delete(
    "/models/{name}/versions/{selector}/tags/{key:path}", status_code=204, summary="Delete a tag"
)
def delete_version_tag(ctx: Ctx, name: str, selector: Selector, key: str) -> Response:
    """Remove a tag from a version."""
    ctx.registry.service.delete_tag(ctx.principal, version_ref(name, selector), key)
    return no_content()


@router.get("/versions", summary="Search versions")
def search_versions(
    ctx: Ctx,
    filter: Filter = None,
    order_by: OrderBy = None,
    page_size: PageSize = None,
    page_token: PageToken = None,
) -> Response:
    """Versions matching a filter such as ``metrics.auc >= 0.9 AND stage = 'staging'``."""
    found = ctx.registry.service.search_versions(
        ctx.principal,
        filter=filter,
        order_by=order_by,
        page_size=page_size,
        page_token=page_token,
    )
    return page(found, _version)


@router.get("/resolve", summary="Resolve a reference")
def resolve(
    ctx: Ctx,
    ref: Annotated[str, Query(description="NAME/3, NAME@production, NAME@champion, NAME@latest")],
) -> Response:
    """The version a reference names, as a deployment system would look it up."""
    return ok(ctx.registry.service.get(ctx.principal, ref).to_dict())


@router.get("/compare", summary="Compare two versions")
def compare(
    ctx: Ctx,
    a: Annotated[str, Query(description="First reference.")],
    b: Annotated[str, Query(description="Second reference.")],
) -> Response:
    """Two versions' metrics (with deltas b - a), params and lineage side by side, and
    the promotion gate verdict (``gate``) for one model's versions in different stages."""
    return ok(comparison_to_wire(ctx.registry.service.compare(ctx.principal, a, b)))
