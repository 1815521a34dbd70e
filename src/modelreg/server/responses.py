"""JSON responses without FastAPI's generic encoder: entities already know their JSON form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from starlette.responses import Response

from modelreg.domain.entities import Page

T = TypeVar("T")


def ok(data: Any, status: int = 200) -> Response:
    """A JSON response, compact: registry answers are read by programs."""
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def no_content() -> Response:
    """204: the change was made and there is nothing to return."""
    return Response(status_code=204)


def page(items: Page[T], encode: Callable[[T], dict[str, Any]]) -> Response:
    """A page of a listing: ``{"items": [...], "next_page_token": ...}``."""
    return ok(
        {"items": [encode(item) for item in items.items], "next_page_token": items.next_page_token}
    )
