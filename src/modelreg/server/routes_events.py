"""/api/v1/events: the event feed, by long poll or as server-sent events.

A waiting request holds no database connection and no worker thread: it sleeps on the
event loop and looks again every ``FEED_POLL`` seconds, so events committed by any
worker or replica reach it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Header, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from modelreg.domain.entities import EventBatch
from modelreg.errors import InvalidArgument
from modelreg.server.context import Context, Ctx
from modelreg.server.responses import ok
from modelreg.server.routing import api_router
from modelreg.service.feed import FEED_POLL, check_wait

router = api_router("/api/v1/events", tags=["events"])

MAX_STREAM = 3600.0
KEEPALIVE = 15.0  # seconds between comments that keep proxies from closing a quiet stream

After = Annotated[int, Query(ge=0, le=2**62, description="Cursor: the last event id already seen.")]
Limit = Annotated[int | None, Query(ge=1, le=1000, description="At most this many (100).")]
Model = Annotated[str | None, Query(description="Only this model's events.")]
Kinds = Annotated[list[str] | None, Query(alias="kind", description="Only these kinds.")]


async def _read(
    ctx: Context, after: int, limit: int | None, model: str | None, kinds: list[str] | None
) -> EventBatch:
    return await run_in_threadpool(
        ctx.registry.service.events,
        ctx.principal,
        after=after,
        limit=limit,
        model=model,
        kinds=kinds,
    )


def _stopping(request: Request) -> bool:
    stopping: threading.Event = request.app.state.stopping
    return stopping.is_set()


@router.get("", summary="Read the event feed")
async def read_events(
    ctx: Ctx,
    request: Request,
    after: After = 0,
    wait: Annotated[
        float, Query(description="Long poll: wait up to this many seconds (max 60).")
    ] = 0,
    limit: Limit = None,
    model: Model = None,
    kind: Kinds = None,
) -> Response:
    """Model events with an id above ``after``, oldest first, and the cursor to send next
    (``{"events": [...], "cursor": N}``). With ``wait``, answers as soon as one arrives."""
    deadline = time.monotonic() + check_wait(wait)
    while True:
        batch = await _read(ctx, after, limit, model, kind)
        left = deadline - time.monotonic()
        if batch.events or left <= 0 or _stopping(request):
            return ok(batch.to_dict())
        after = batch.cursor
        await asyncio.sleep(min(FEED_POLL, left))


@router.get("/stream", summary="Stream events (server-sent events)")
async def stream_events(
    ctx: Ctx,
    request: Request,
    after: After = 0,
    wait: Annotated[
        float, Query(description="Close the stream after this many seconds (max 3600).")
    ] = 300,
    model: Model = None,
    kind: Kinds = None,
    last_event_id: Annotated[str | None, Header(description="Resume after this id.")] = None,
) -> Response:
    """``text/event-stream``: one message per event (``id`` = event id, ``event`` = kind,
    ``data`` = the event as JSON). A reconnecting client sends ``Last-Event-ID`` and
    misses nothing."""
    if not 0 < wait <= MAX_STREAM:
        raise InvalidArgument(f"wait must be between 0 and {MAX_STREAM:g} seconds")
    if last_event_id is not None:
        if not last_event_id.isdigit():
            raise InvalidArgument("Last-Event-ID must be an event id")
        after = max(after, int(last_event_id))
    first = await _read(ctx, after, None, model, kind)  # bad arguments fail before streaming

    async def messages() -> AsyncIterator[bytes]:
        cursor, batch = after, first
        deadline = time.monotonic() + wait
        quiet_since = time.monotonic()
        yield b"retry: 1000\n\n"
        while True:
            for event in batch.events:
                data = json.dumps(event.to_dict(), separators=(",", ":"))
                yield f"id: {event.id}\nevent: {event.kind}\ndata: {data}\n\n".encode()
                quiet_since = time.monotonic()
            cursor = batch.cursor
            now = time.monotonic()
            if now >= deadline or _stopping(request) or await request.is_disconnected():
                return
            if now - quiet_since >= KEEPALIVE:
                yield b": keepalive\n\n"
                quiet_since = now
            await asyncio.sleep(min(FEED_POLL, deadline - now))
            batch = await _read(ctx, cursor, None, model, kind)

    return StreamingResponse(
        messages(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )
