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


def native_page(items: Page[Any]) -> Response:
    """A page of entities whose dataclass fields are exactly their ``to_dict()`` form
    (``Model``): orjson serializes such dataclasses itself, timestamps included, which
    saves building a dict per item on the hottest listing."""
    return ok({"items": items.items, "next_page_token": items.next_page_token})
