"""Per-request context: the acting principal and the registry the server runs over."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from modelreg.auth.principal import Principal
from modelreg.embedded import EmbeddedRegistry
from modelreg.errors import InvalidArgument, InvalidReference, Unauthenticated
from modelreg.server import dispatch

USER_HEADER = "x-modelreg-user"
ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class Context:
    """What a route needs: who is acting, and the registry to act on."""

    principal: Principal
    registry: EmbeddedRegistry


def registry_of(request: Request) -> EmbeddedRegistry:
    """The registry the app was created over."""
    registry: EmbeddedRegistry = request.app.state.registry
    return registry


def auth_enabled(registry: EmbeddedRegistry) -> bool:
    """Whether requests must authenticate. ``auto`` reaches the app only when something
    other than ``modelreg serve`` runs it (which resolves it by address): then on."""
    return registry.config.auth != "off"


def bearer_token(request: Request) -> str:
    """The token of an ``Authorization: Bearer`` header; Unauthenticated without one."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise Unauthenticated(
            "this server requires a token: pass token= or set MODELREG_TOKEN "
            "(an admin creates one with `modelreg token create`)"
        )
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    return token.strip()


async def context(request: Request) -> Context:
    """Authenticate the request and name its principal.

    With authentication on, the bearer token decides who acts and what it may do; a
    token is looked up on every request, so revoking one takes effect at once. With it
    off, the caller is the ``X-Modelreg-User`` it names and may do everything.
    """
    # A coroutine, so that FastAPI runs it on the event loop: a plain function would cost
    # every request a hop to a worker thread, for nothing when authentication is off.
    # The token lookup is database work, which dispatch places like an endpoint's.
    registry = registry_of(request)
    if auth_enabled(registry):
        token = bearer_token(request)
        principal = await dispatch.run(registry.service.authenticate, token)
        return Context(principal, registry)
    user = request.headers.get(USER_HEADER) or ANONYMOUS
    try:
        principal = Principal(user, kind="user")
    except InvalidArgument:
        raise InvalidArgument(f"invalid {USER_HEADER} header: {user[:50]!r}") from None
    return Context(principal, registry)


Ctx = Annotated[Context, Depends(context)]


def version_ref(name: str, selector: str) -> str:
    """The reference a path's ``{name}/versions/{selector}`` names: a number or ``@label``."""
    if selector.isdigit():
        return f"{name}/{selector}"
    if selector.startswith("@") and len(selector) > 1:
        return f"{name}{selector}"
    raise InvalidReference(
        f"invalid version {selector!r}: use a number or @label (e.g. 3, @production)"
    )
