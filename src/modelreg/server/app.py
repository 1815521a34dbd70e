"""The ASGI application: ``create_app()`` builds it over a registry configuration."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

import modelreg
from modelreg.config import Config
from modelreg.embedded import EmbeddedRegistry
from modelreg.events.delivery import Dispatcher
from modelreg.server import (
    dispatch,
    errors,
    openapi,
    routes_access,
    routes_audit,
    routes_blobs,
    routes_deployments,
    routes_events,
    routes_gates,
    routes_models,
    routes_ops,
    routes_requests,
    routes_versions,
    routes_webhooks,
)
from modelreg.server.limits import BodyLimit
from modelreg.server.metrics import MetricsMiddleware
from modelreg.server.routing import PrefixRoute
from modelreg.server.shutdown import Shutdown

DESCRIPTION = """\
The modelreg registry over HTTP. Every error answers with
`{"error": {"code": "...", "message": "...", "details": {...}}}` and a stable code.
Version references: `NAME/3`, `NAME@production`, `NAME@champion`, `NAME@latest`.
"""


def create_app(config: Config | None = None) -> FastAPI:
    """The server application over the registry ``config`` names (default: environment)."""
    registry = EmbeddedRegistry(config or Config.load())

    shutdown = Shutdown()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        shutdown.install()
        # Every worker process delivers webhooks; the database shares the work out.
        dispatcher = None
        if registry.config.webhook_delivery:
            dispatcher = Dispatcher(
                registry.db,
                retry_base=registry.config.webhook_retry_base,
                max_attempts=registry.config.webhook_max_attempts,
            )
            dispatcher.start()
        yield
        if dispatcher is not None:
            dispatcher.stop()
        shutdown.restore()
        registry.close()

    app = FastAPI(
        title="modelreg",
        version=modelreg.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.state.registry = registry
    app.state.inline_work = dispatch.all_local(registry)
    app.state.stopping = shutdown.stopping
    errors.install(app)
    # Probes first: load balancers call them often, and no other route has their paths.
    _add_routes(app, routes_ops.probes)
    for module in (
        routes_ops,
        routes_models,
        routes_versions,
        routes_blobs,
        routes_access,
        routes_requests,
        routes_audit,
        routes_gates,
        routes_events,
        routes_webhooks,
        routes_deployments,
    ):
        _add_routes(app, module.router)
    openapi.install(app)
    app.add_middleware(BodyLimit)
    app.add_middleware(MetricsMiddleware)
    return app


def _add_routes(app: FastAPI, router: APIRouter) -> None:
    """Add a router's routes to the app's own list, flat.

    ``include_router`` keeps each router as a nested group, and matching a request then
    walks every group with per-candidate bookkeeping: on a health check that was most of
    the server's time. The module routers carry their prefix and tags in each route's
    path and tags already, and no dependencies, so their routes can stand on their own.
    """
    if router.dependencies or router.callbacks:
        raise ValueError("a router with its own dependencies must be included, not flattened")
    for route in router.routes:
        if not isinstance(route, PrefixRoute):
            raise TypeError(f"route {route} was not made by routing.api_router")
    app.router.routes.extend(router.routes)
