"""A cap on request bodies, except blob uploads, which stream to disk in constant memory."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelreg.errors import PayloadTooLarge
from modelreg.server.errors import error_response

# Metadata bodies are small; a manifest of 100,000 files is about 15 MB.
MAX_BODY = 32 * 1024 * 1024
BLOBS = "/api/v1/blobs"


def streamed(scope: Scope) -> bool:
    """Whether the request is a blob upload (``PUT /api/v1/blobs/{sha256}``, ``POST
    /api/v1/blobs``): the only bodies that are not metadata."""
    path: str = scope["path"]
    method: str = scope["method"]
    if method == "PUT":
        return path.startswith(BLOBS + "/") and "/" not in path[len(BLOBS) + 1 :]
    return method == "POST" and path.rstrip("/") == BLOBS


class BodyLimit:
    """Answers 413 PAYLOAD_TOO_LARGE for a body beyond ``limit`` bytes, declared or sent."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or streamed(scope):
            await self.app(scope, receive, send)
            return
        too_large = PayloadTooLarge(f"request body is larger than {self.limit} bytes")
        for key, value in scope["headers"]:
            if key == b"content-length" and value.isdigit() and int(value) > self.limit:
                await error_response(too_large)(scope, receive, send)
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise too_large
            return message

        await self.app(scope, counted, send)
