"""Blob uploads read straight from the socket into the blob store's buffers.

Through the ASGI stack, every piece of a request body that the socket delivers (64 to
256 KiB) is parsed by httptools, appended to a buffer, copied into a message, passed
through the middleware and handed to the store's thread, where it is copied once more:
three copies of each byte in user space and several Python calls per piece, about a
quarter of the server's CPU in a large upload (measured). The server's protocol
(``run.py``) offers the application a way out, as the scope extension ``EXTENSION``:
``take(scope)`` stops the event loop reading the connection and returns a ``Readable``
that ``recv``s the rest of the body from the socket, in the thread that stores it,
straight into the store's buffers.

The HTTP parser then never sees the end of that body, so the connection closes after
the response (``Connection: close``). Large blob uploads open a connection each anyway;
bodies under ``TAKE_FROM`` go through the parser and keep their connection.
"""

from __future__ import annotations

import asyncio
import os
import select
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from modelreg.server import zerocopy
from modelreg.server.uploads import Truncated

EXTENSION = "modelreg.socket_body"
# Smaller bodies go through the parser: what they would save is less than what a new
# connection costs a client that sends many small files on one.
TAKE_FROM = 1024 * 1024
# Seconds a client may send nothing mid-body before the upload fails.
STALL = 120.0

_CYCLE_STATE = (
    "transport",
    "flow",
    "body",
    "more_body",
    "keep_alive",
    "waiting_for_100_continue",
    "response_started",
)


def offer(cycle: Any, scope: MutableMapping[str, Any]) -> None:
    """Let the application ``take`` the body of ``cycle``'s request from the socket (on a
    plain TCP connection: the protocol asks), if the cycle is what this module knows."""
    if not zerocopy.knows(cycle, _CYCLE_STATE):
        return
    extensions = scope.get("extensions") or {}
    scope["extensions"] = {**extensions, EXTENSION: {"take": lambda length: _take(cycle, length)}}


def take(scope: Mapping[str, Any], length: int | None) -> SocketBody | None:
    """The request body as a ``Readable`` read from the socket (call it before anything
    reads the body, from the event loop), or None where the server does not offer it or
    the body's length is unknown: then read ``request.stream()`` as usual."""
    offered = (scope.get("extensions") or {}).get(EXTENSION)
    if offered is None or length is None or length < TAKE_FROM:
        return None
    if any(name == b"transfer-encoding" for name, _ in scope.get("headers", ())):
        return None  # framed by the encoding, not by Content-Length: the parser reads it
    taker: Callable[[int], SocketBody | None] = offered["take"]
    return taker(length)


def _take(cycle: Any, length: int) -> SocketBody | None:
    transport: asyncio.Transport = cycle.transport
    if cycle.response_started or transport.is_closing():
        return None
    cycle.flow.pause_reading()  # from here on only our thread reads the socket
    if cycle.waiting_for_100_continue:
        transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        cycle.waiting_for_100_continue = False
    received = bytes(cycle.body)
    cycle.body = bytearray()
    left = length - len(received) if cycle.more_body else 0
    if left > 0:
        cycle.keep_alive = False  # the parser is left mid-body: close after the response
    sock = transport.get_extra_info("socket")
    return SocketBody(received, os.dup(sock.fileno()), max(left, 0))


class SocketBody:
    """What the parser already received of a body, then the rest from the socket."""

    def __init__(self, received: bytes, fd: int, left: int) -> None:
        self._received = memoryview(received)
        self._fd = fd  # a duplicate: it stays valid even if the event loop closes its own
        self._left = left
        self._poller = select.poll()
        self._poller.register(fd, select.POLLIN)

    def readinto(self, buffer: memoryview, /) -> int:
        if self._received:
            n = min(len(buffer), len(self._received))
            buffer[:n] = self._received[:n]
            self._received = self._received[n:]
            return n
        while self._left > 0:
            try:
                n = os.readv(self._fd, [buffer[: min(len(buffer), self._left)]])
            except BlockingIOError:
                if not self._poller.poll(STALL * 1000):
                    raise Truncated(f"the client sent nothing for {STALL:.0f} s") from None
                continue
            except OSError as exc:
                raise Truncated(
                    f"the connection failed before the body was complete: {exc}"
                ) from exc
            if n == 0:
                raise Truncated("the client disconnected before the body was complete")
            self._left -= n
            return n
        return 0

    def drain(self) -> None:
        """Read and drop the rest of the body, as the parser would have: a store that
        failed early still answers a client that is reading, not one reset mid-send."""
        scratch = memoryview(bytearray(1024 * 1024))
        try:
            while self.readinto(scratch):
                pass
        except Truncated:
            pass  # the client is gone: nobody to answer

    def close(self) -> None:
        """Release the socket duplicate (the event loop still owns the connection)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
