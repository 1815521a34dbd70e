"""Streaming copy with SHA-256 computed on the way, in constant memory.

Reading and hashing run in the calling thread while a writer thread drains filled
buffers to the destination, so the copy costs little more than the hash itself
(``hashlib`` and file I/O both release the GIL on large buffers).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO, Protocol

CHUNK_SIZE = 4 * 1024 * 1024
# Buffers in flight between the reader/hasher and the writer: bounds memory at
# BUFFERS * CHUNK_SIZE whatever the file size.
BUFFERS = 6
# With fsync on, flush every this many bytes so write-back overlaps with hashing instead
# of one long stall at the end.
SYNC_EVERY = 64 * 1024 * 1024

Progress = Callable[[int], None]


class Readable(Protocol):
    def readinto(self, buffer: bytearray | memoryview, /) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Digest:
    """SHA-256 (hex) and size of a stream."""

    sha256: str
    size: int


class TooLarge(Exception):
    """The source produced more bytes than the caller allowed."""


def copy_and_hash(
    src: Readable,
    dst: BinaryIO | None,
    *,
    progress: Progress | None = None,
    max_size: int | None = None,
    fsync: bool = False,
) -> Digest:
    """Copy ``src`` to ``dst`` (or just read it when ``dst`` is None), hashing every byte."""
    hasher = hashlib.sha256()
    size = 0
    buffers = [bytearray(CHUNK_SIZE) for _ in range(BUFFERS if dst is not None else 1)]
    pending: list[Future[None] | None] = [None] * len(buffers)
    unsynced = 0

    def write(view: memoryview, sync: bool) -> None:
        assert dst is not None
        dst.write(view)
        if sync:
            dst.flush()
            os.fdatasync(dst.fileno())

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="modelreg-write") as writer:
        index = 0
        while True:
            slot = index % len(buffers)
            previous = pending[slot]
            if previous is not None:
                previous.result()  # the writer is done with this buffer; reuse it
            buf = buffers[slot]
            n = _read_full(src, buf)
            if n == 0:
                break
            size += n
            if max_size is not None and size > max_size:
                raise TooLarge(f"more than {max_size} bytes")
            view = memoryview(buf)[:n]
            if dst is not None:
                unsynced += n
                sync = fsync and unsynced >= SYNC_EVERY
                if sync:
                    unsynced = 0
                pending[slot] = writer.submit(write, view, sync)
            hasher.update(view)
            if progress is not None:
                progress(n)
            index += 1
        for future in pending:
            if future is not None:
                future.result()
    if dst is not None:
        dst.flush()
        if fsync:
            os.fdatasync(dst.fileno())
    return Digest(sha256=hasher.hexdigest(), size=size)


def hash_stream(src: Readable, progress: Progress | None = None) -> Digest:
    """SHA-256 and size of a stream, read in constant memory."""
    return copy_and_hash(src, None, progress=progress)


def _read_full(src: Readable, buf: bytearray) -> int:
    # Fill the whole buffer unless the stream ends: short reads from pipes and sockets
    # would otherwise shrink every chunk and multiply per-chunk overhead.
    view = memoryview(buf)
    filled = 0
    while filled < len(buf):
        n = src.readinto(view[filled:])
        if not n:
            break
        filled += n
    return filled
