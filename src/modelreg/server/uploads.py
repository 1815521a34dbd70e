"""Streaming a request body into the blob store without holding it in memory.

The event loop reads the body and hands it, in chunks of about 1 MiB, through a small
bounded channel to a worker thread where the blob store hashes and writes it. The channel
bounds memory (a few MiB per upload whatever its size), and a slow disk slows the reading
of the socket instead of filling memory.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from anyio.lowlevel import EventLoopToken
from starlette.requests import ClientDisconnect

from modelreg.artifacts.hashing import Readable
from modelreg.errors import InvalidArgument

T = TypeVar("T")
# A list of body chunks, or the error that ended the body.
Batch = list[bytes] | BaseException
BATCH = 1024 * 1024
DEPTH = 4


class Truncated(InvalidArgument):
    """The client went away before sending the whole body."""


class _ChannelReader:
    """A ``Readable`` (``readinto``) over chunks sent from the event loop."""

    def __init__(self, receive: ObjectReceiveStream[Batch], loop: EventLoopToken) -> None:
        self._receive = receive
        self._loop = loop
        self._chunk = memoryview(b"")
        self._queued: list[bytes] = []

    def readinto(self, buffer: memoryview, /) -> int:
        while not self._chunk:
            if not self._queued:
                try:
                    item = anyio.from_thread.run(self._receive.receive, token=self._loop)
                except anyio.EndOfStream:
                    return 0
                if isinstance(item, BaseException):
                    raise item
                self._queued = item
                self._queued.reverse()
            self._chunk = memoryview(self._queued.pop())
        n = min(len(buffer), len(self._chunk))
        buffer[:n] = self._chunk[:n]
        self._chunk = self._chunk[n:]
        return n


async def _pump(body: AsyncIterator[bytes], send: ObjectSendStream[Batch]) -> None:
    async with send:
        # Chunks travel in lists of about BATCH bytes, uncopied: one hop to the worker
        # thread per batch instead of one per chunk the socket delivered.
        pending: list[bytes] = []
        size = 0
        try:
            async for chunk in body:
                pending.append(chunk)
                size += len(chunk)
                if size >= BATCH:
                    await send.send(pending)
                    pending, size = [], 0
            if pending:
                await send.send(pending)
        except ClientDisconnect:
            # A truncated body must fail the store even if its bytes happen to hash right.
            await send.send(Truncated("the client disconnected before the body was complete"))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the store gave up (e.g. disk full); it reports why
        except Exception as exc:  # handed to the store, which fails with it
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await send.send(exc)


async def store_body(body: AsyncIterator[bytes], store: Callable[[Readable], T]) -> T:
    """Run ``store(reader)`` in a worker thread while ``body`` is fed to the reader."""
    send, receive = anyio.create_memory_object_stream[Batch](DEPTH)
    loop = anyio.lowlevel.current_token()
    # The store reads from threads of its own, hence the explicit event loop token.
    reader = _ChannelReader(receive, loop)

    def run() -> T:
        try:
            return store(reader)
        finally:
            # Unblocks the pump if the store stopped reading early.
            anyio.from_thread.run_sync(receive.close, token=loop)

    failure: Exception | None = None
    async with anyio.create_task_group() as group:
        group.start_soon(_pump, body, send)
        try:
            result = await anyio.to_thread.run_sync(run)
        except Exception as exc:
            # Raised after the group ends, as itself rather than inside an ExceptionGroup,
            # so the error handlers see the registry error.
            failure = exc
    if failure is not None:
        raise failure
    return result
