"""Routes rule themselves out by their literal prefix; matching is otherwise unchanged."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

from modelreg.server.app import _add_routes
from modelreg.server.routing import PrefixRoute, api_router


def _endpoint() -> dict[str, str]:
    return {"ok": "yes"}


def _scope(path: str, method: str = "GET", root_path: str = "") -> Scope:
    return {"type": "http", "method": method, "path": path, "root_path": root_path}


def test_a_path_outside_the_literal_prefix_does_not_match() -> None:
    route = PrefixRoute("/api/v1/models/{name}", _endpoint, methods=["GET"])
    assert route.literal_prefix == "/api/v1/models/"
    assert route.matches(_scope("/healthz"))[0] == Match.NONE
    assert route.matches(_scope("/api/v1/blobs/abc"))[0] == Match.NONE


def test_a_path_inside_the_prefix_is_matched_as_before() -> None:
    route = PrefixRoute("/api/v1/models/{name}", _endpoint, methods=["GET"])
    match, child = route.matches(_scope("/api/v1/models/fraud"))
    assert match == Match.FULL
    assert child["path_params"] == {"name": "fraud"}
    # The prefix alone is not enough: the template must still match.
    assert route.matches(_scope("/api/v1/models/fraud/versions"))[0] == Match.NONE
    # A known path with another method is a partial match (the router answers 405).
    assert route.matches(_scope("/api/v1/models/fraud", "DELETE"))[0] == Match.PARTIAL


def test_a_route_without_parameters_matches_its_whole_path_only() -> None:
    route = PrefixRoute("/healthz", _endpoint, methods=["GET"])
    assert route.matches(_scope("/healthz"))[0] == Match.FULL
    assert route.matches(_scope("/healthzz"))[0] == Match.NONE


def test_behind_a_root_path_the_route_path_is_matched() -> None:
    # A proxy serving the API under /registry: the request's path carries the prefix,
    # the route path (what templates match) does not.
    route = PrefixRoute("/api/v1/models/{name}", _endpoint, methods=["GET"])
    scope = _scope("/registry/api/v1/models/fraud", root_path="/registry")
    assert route.matches(scope)[0] == Match.FULL


def test_the_server_answers_under_a_root_path(app: FastAPI) -> None:
    async def calls() -> None:
        transport = httpx.ASGITransport(app=app, root_path="/registry")
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert (await client.get("/registry/healthz")).status_code == 200
            created = await client.post("/registry/api/v1/models", json={"name": "fraud"})
            assert created.status_code == 201, created.text
            found = await client.get("/registry/api/v1/models/fraud")
            assert found.json()["name"] == "fraud"
            assert (await client.delete("/registry/healthz")).status_code == 405

    anyio.run(calls)


def test_every_server_route_is_a_prefix_route(app: FastAPI) -> None:
    # FastAPI's own routes (the OpenAPI document, the docs page) are plain Starlette
    # routes; every API route must be a PrefixRoute.
    api_routes = [r for r in app.router.routes if isinstance(r, APIRoute)]
    assert len(api_routes) > 50
    assert all(isinstance(r, PrefixRoute) for r in api_routes)


def test_a_router_not_made_by_api_router_is_refused() -> None:
    router = APIRouter(prefix="/api/v1/extra")
    router.add_api_route("/thing", _endpoint, methods=["GET"])
    with pytest.raises(TypeError, match="api_router"):
        _add_routes(FastAPI(), router)


def test_api_router_routes_are_prefix_routes() -> None:
    router = api_router("/api/v1/extra", tags=["extra"])
    router.add_api_route("/{item}", _endpoint, methods=["GET"])
    app = FastAPI()
    _add_routes(app, router)
    added: Any = app.router.routes[-1]
    assert isinstance(added, PrefixRoute)
    assert added.literal_prefix == "/api/v1/extra/"
