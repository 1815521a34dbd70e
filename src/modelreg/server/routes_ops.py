"""Operations: health, readiness, metrics, server info, lifecycle, verify and gc."""

from __future__ import annotations

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from modelreg.domain.lifecycle import Lifecycle
from modelreg.errors import ModelregError
from modelreg.server import metrics
from modelreg.server.context import Ctx, registry_of
from modelreg.server.dispatch import blocking
from modelreg.server.responses import ok
from modelreg.server.routing import api_router
from modelreg.server.schemas import GcRequest, LifecycleBody
from modelreg.service import transfer

probes = api_router(tags=["operations"])
router = api_router("/api/v1", tags=["operations"])


@probes.get("/healthz", summary="Liveness")
def healthz() -> Response:
    """200 while the process serves requests; it checks nothing else, on purpose."""
    return ok({"status": "ok"})


@probes.get("/readyz", summary="Readiness")
def readyz(request: Request) -> Response:
    """200 when the metadata database answers and the blob store is writable, else 503."""
    registry = registry_of(request)
    problems: list[str] = []
    try:
        with registry.db.read() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any failure means not ready; the message says why
        problems.append(f"database: {exc}")
    try:
        registry.blobs.check()
    except ModelregError as exc:
        problems.append(f"blob store: {exc}")
    if problems:
        return ok({"status": "unavailable", "problems": problems}, 503)
    return ok({"status": "ready"})


@probes.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
def prometheus() -> Response:
    """Request counts and latencies, registrations, transitions, blob bytes."""
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)


@router.get("/info", summary="Server information")
def info(ctx: Ctx) -> Response:
    """Version, metadata database, blob store and schema revision; who you are."""
    details = ctx.registry.info()
    details.update(mode="server", user=ctx.principal.name)
    return ok(details)


@router.get("/lifecycle", summary="Get the lifecycle")
def get_lifecycle(ctx: Ctx) -> Response:
    """The registry's stages, allowed moves and exclusive stages."""
    return ok(ctx.registry.service.get_lifecycle(ctx.principal).to_dict())


@router.put("/lifecycle", summary="Replace the lifecycle")
@blocking
def set_lifecycle(ctx: Ctx, body: LifecycleBody) -> Response:
    """Replace the lifecycle; refused if versions would be stranded in a removed stage."""
    lifecycle = Lifecycle.from_dict(body.model_dump(exclude_none=True))
    return ok(ctx.registry.service.set_lifecycle(ctx.principal, lifecycle).to_dict())


@router.post("/verify", summary="Verify the blob store")
@blocking
def verify(ctx: Ctx) -> Response:
    """Re-hash every stored blob and report missing or corrupt ones."""
    return ok(ctx.registry.service.verify(ctx.principal).to_dict())


@router.post("/gc", summary="Collect unreferenced blobs")
@blocking
def gc(ctx: Ctx, body: GcRequest) -> Response:
    """Delete blobs no version references that are older than the grace period."""
    grace = transfer.parse_duration(body.grace)
    report = ctx.registry.service.gc(ctx.principal, grace, dry_run=body.dry_run)
    return ok(report.to_dict())
