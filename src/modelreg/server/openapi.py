"""The OpenAPI document, corrected where FastAPI's defaults do not describe this server.

FastAPI lists a 422 validation response on every operation; this server answers
validation errors with 400 and the registry's error shape instead, like every other
error. The document says so: each operation gets a ``default`` response with that shape,
and the 422 is dropped.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "description": "Stable error code."},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}
ERROR_RESPONSE = {
    "description": "An error: its HTTP status and stable code say which.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def install(app: FastAPI) -> None:
    """Replace ``app.openapi`` with the corrected, cached document."""

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            schemas["Error"] = ERROR_SCHEMA
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
            for operations in spec["paths"].values():
                for operation in operations.values():
                    responses = operation.setdefault("responses", {})
                    responses.pop("422", None)
                    responses["default"] = ERROR_RESPONSE
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
