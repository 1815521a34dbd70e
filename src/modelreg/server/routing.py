"""Routes that rule themselves out by their literal path prefix before matching, and
run their endpoints where ``dispatch`` decides.

The router tries routes in order until one matches, and each try costs FastAPI's route
context lookup, Starlette's route-path computation and a regular expression. With about
eighty routes, a request for one near the end of the list (a health probe) spent more
time finding its route than answering. A route whose fixed start the path does not begin
with cannot match, and a string comparison says so at a fraction of the cost.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope

from modelreg.server import dispatch


class PrefixRoute(APIRoute):
    """An ``APIRoute`` that answers ``Match.NONE`` at once for a path that does not start
    with its template's text before the first ``{parameter}``. Its requests count as in
    flight while their handler runs, and a plain-function endpoint runs through
    ``dispatch.run``."""

    def __init__(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        super().__init__(path, dispatch.endpoint(endpoint), **kwargs)
        self.literal_prefix = path.split("{", 1)[0]

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def counted(request: Request) -> Response:
            token = dispatch.enter(getattr(request.app.state, "inline_work", False))
            try:
                return await handle(request)
            finally:
                dispatch.leave(token)

        return counted

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        # Behind a root path (a proxy mounting the API under a prefix) the path matched is
        # not the request's path: the full match below works that out.
        if (
            scope["type"] == "http"
            and not scope.get("root_path")
            and not scope["path"].startswith(self.literal_prefix)
        ):
            return Match.NONE, {}
        return super().matches(scope)


def api_router(prefix: str = "", *, tags: list[str]) -> APIRouter:
    """A router whose routes are ``PrefixRoute``s: every module of the API makes its
    router here."""
    return APIRouter(prefix=prefix, tags=list(tags), route_class=PrefixRoute)
