"""Per-request context: the acting principal and the registry the server runs over."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from modelreg.auth.principal import Principal
from modelreg.embedded import EmbeddedRegistry
from modelreg.errors import InvalidArgument, InvalidReference, Unauthenticated

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


def _check_token(request: Request, expected: str) -> None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise Unauthenticated("this server requires a token: pass token= or set MODELREG_TOKEN")
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    # Constant time, so response timing does not reveal how much of a guess was right.
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthenticated("invalid token")


async def context(request: Request) -> Context:
    """Authenticate the request and name its principal.

    Until access control lands, the user name is the one the client states (the
    ``X-Modelreg-User`` header); a server token, when configured, proves the client may
    use the registry at all.
    """
    registry = registry_of(request)
    if registry.config.server_token:
        _check_token(request, registry.config.server_token)
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
