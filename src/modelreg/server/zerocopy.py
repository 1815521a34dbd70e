"""Blob downloads sent with ``sendfile``: the kernel moves the bytes, Python does not.

A download streamed through the ASGI stack reads every chunk into a Python object and
writes it to the socket: two copies of each byte and a trip through the event loop per
chunk, which cost 1.7 s of server CPU per 2 GiB sent (measured; the client needs both
cores to hash and store what it receives when both run on one machine). ASGI's
``http.response.zerocopysend`` extension lets the application hand the server an open
file instead. uvicorn does not implement it, so the server's protocol (``run.py``) wraps
each request's ``send`` with ``ZeroCopySend`` on connections that are ``plain_tcp``:
the kernel cannot encrypt for TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import select
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import Any, Protocol

import anyio.to_thread
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from modelreg.artifacts import files
from modelreg.server import direct_read, metrics

EXTENSION = "http.response.zerocopysend"
# Bytes per sendfile call: large enough that calls are few, small enough that a client
# that stops reading is noticed between calls.
SLICE = 16 * 1024 * 1024
# Seconds a client may read nothing before the server gives up on it.
STALL = 120.0


class Cycle(Protocol):
    """What ``ZeroCopySend`` uses of uvicorn's request cycle (httptools protocol)."""

    transport: asyncio.Transport
    response_started: bool
    response_complete: bool
    disconnected: bool
    chunked_encoding: bool | None
    expected_content_length: int
    send: Callable[[MutableMapping[str, Any]], Awaitable[None]]


_CYCLE_STATE = (
    "transport",
    "response_started",
    "response_complete",
    "disconnected",
    "chunked_encoding",
    "expected_content_length",
    "send",
)


def plain_tcp(transport: asyncio.BaseTransport) -> bool:
    """Whether a connection is plain TCP, whose socket the kernel can read and write for
    us (TLS needs the event loop to encrypt). Asked once per connection."""
    return (
        transport.get_extra_info("sslcontext") is None
        and transport.get_extra_info("socket") is not None
    )


def knows(cycle: Any, state: Sequence[str]) -> bool:
    """Whether uvicorn's request ``cycle`` has every attribute in ``state``: it is the
    cycle this code was written against, not one from a uvicorn that changed it."""
    return all(hasattr(cycle, name) for name in state)


def offer(cycle: Any, scope: MutableMapping[str, Any]) -> None:
    """Advertise the extension in ``scope`` and handle it in ``cycle``'s ``send``, for a
    cycle this module ``knows`` on a ``plain_tcp`` connection (otherwise downloads stream
    as usual)."""
    if not knows(cycle, _CYCLE_STATE):
        return
    cycle.send = ZeroCopySend(cycle)
    extensions = scope.get("extensions") or {}
    scope["extensions"] = {**extensions, EXTENSION: {}}


def supported(scope: Mapping[str, Any]) -> bool:
    """Whether the server that made ``scope`` takes ``http.response.zerocopysend``."""
    return EXTENSION in (scope.get("extensions") or {})


class ZeroCopySend:
    """One request's ``send``: extension messages go out with ``sendfile``, the rest to
    uvicorn's own ``send``."""

    def __init__(self, cycle: Cycle) -> None:
        self._cycle = cycle
        self._send = cycle.send

    async def __call__(self, message: MutableMapping[str, Any]) -> None:
        if message["type"] != EXTENSION:
            await self._send(message)
            return
        cycle = self._cycle
        if not cycle.response_started or cycle.response_complete or cycle.chunked_encoding:
            raise RuntimeError(f"{EXTENSION} needs a started response with a Content-Length")
        offset = int(message.get("offset", 0))
        count = int(message["count"])
        if count > cycle.expected_content_length:
            raise RuntimeError("Response content longer than Content-Length")
        if cycle.disconnected:
            return
        transport = cycle.transport
        # The status line and headers must be on the wire before the body.
        while transport.get_write_buffer_size() and not transport.is_closing():
            await asyncio.sleep(0.001)
        if transport.is_closing():
            cycle.disconnected = True
            return
        sock = transport.get_extra_info("socket")
        # A duplicate, so the socket stays open (and its number unused by another
        # connection) while the worker thread sends, even if the event loop closes its own.
        out = os.dup(sock.fileno())
        try:
            sent = await anyio.to_thread.run_sync(
                send_blob, out, message["file"].fileno(), offset, count, bool(message.get("direct"))
            )
        finally:
            os.close(out)
        metrics.BYTES.labels(direction="out").inc(sent)
        if sent < count:
            # The client went away, stalled, or the file shrank (corruption): the body
            # cannot be completed, so the connection ends and the client's length and
            # digest checks tell what happened.
            transport.close()
            cycle.disconnected = True
            return
        cycle.expected_content_length -= count
        await self._send(
            {
                "type": "http.response.body",
                "body": b"",
                "more_body": message.get("more_body", False),
            }
        )


def send_blob(out: int, src: int, offset: int, count: int, direct: bool) -> int:
    """Send ``count`` bytes of ``src`` from ``offset`` on the non-blocking socket ``out``:
    from direct reads where ``direct`` allows them, the slice is large, the page cache
    does not hold it and it was not read directly just before (see ``direct_read``), else
    with ``sendfile``; the bytes sent."""
    if (
        direct
        and count >= files.DIRECT_FROM
        and not direct_read.cached(src, offset, count)
        and direct_read.first_read(src)
    ):
        sent = direct_read.send_direct(out, src, offset, count, STALL)
        if sent is not None:
            return sent
    return send_file(out, src, offset, count)


def send_file(out: int, src: int, offset: int, count: int) -> int:
    """Send ``count`` bytes of ``src`` from ``offset`` on the non-blocking socket ``out``;
    the bytes sent, fewer if the peer fails or stalls or the file ends early."""
    poller = select.poll()
    poller.register(out, select.POLLOUT)
    sent = 0
    while sent < count:
        try:
            n = os.sendfile(out, src, offset + sent, min(SLICE, count - sent))
        except BlockingIOError:
            if not poller.poll(STALL * 1000):
                return sent
            continue
        except OSError:  # reset, broken pipe: the client is gone
            return sent
        if n == 0:
            return sent
        sent += n
    return sent


class FileSlice(Response):
    """``count`` bytes of an open file from ``offset``, sent by the server with
    ``sendfile`` (or, with ``direct``, from direct reads when the page cache does not
    hold them); the file is closed once sent. Only for servers that ``supported``."""

    def __init__(
        self,
        file: io.RawIOBase,
        offset: int,
        count: int,
        *,
        status_code: int,
        headers: Mapping[str, str],
        direct: bool = False,
    ) -> None:
        super().__init__(
            status_code=status_code, headers=headers, media_type="application/octet-stream"
        )
        self.file = file
        self.offset = offset
        self.count = count
        self.direct = direct

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with contextlib.closing(self.file):
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            await send(
                {
                    "type": EXTENSION,
                    "file": self.file,
                    "offset": self.offset,
                    "count": self.count,
                    "more_body": False,
                    "direct": self.direct,
                }
            )
