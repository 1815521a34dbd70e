"""Streaming copy with SHA-256 computed on the way, in constant memory.

Three stages overlap: a reader thread fills buffers, the calling thread hashes them, and a
writer thread drains them to the destination. Hashing is the slowest stage and gets a core
to itself, so a copy costs about what one SHA-256 pass costs (``hashlib`` and file I/O
release the GIL on large buffers). The hash covers exactly the bytes that are written:
both come from the same buffer, so a source that changes under us cannot produce a blob
whose name does not match its content.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import mmap
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Protocol

CHUNK_SIZE = 4 * 1024 * 1024
MIN_CHUNK_SIZE = 64 * 1024
# Direct I/O needs buffers, lengths and offsets aligned to the device's block size; 4 KiB
# covers every common device. Buffers come from mmap, which aligns them to pages.
ALIGN = 4096
# Buffers in flight: memory stays at BUFFERS * CHUNK_SIZE whatever the file size.
BUFFERS = 6
# With fsync on, start write-back every this many bytes so the disk works while we hash,
# and the final fdatasync only waits for the tail.
SYNC_EVERY = 16 * 1024 * 1024
# Streams expected to be smaller than this are copied without the reader and writer
# threads: for them the threads cost more than they overlap.
INLINE_BELOW = 1024 * 1024
# Full-size buffers kept for the next copy: enough for two copies at once (a server's
# concurrent uploads, a client's two files), a bounded 48 MiB in all.
POOL_LIMIT = 2 * BUFFERS

Progress = Callable[[int], None]


class Readable(Protocol):
    def readinto(self, buffer: memoryview, /) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Digest:
    """SHA-256 (hex) and size of a stream."""

    sha256: str
    size: int


class TooLarge(Exception):
    """The source produced more bytes than the caller allowed."""


_STOP = None


class _BufferPool:
    """Full-size buffers kept between copies.

    Mapping a fresh 4 MiB buffer costs a page fault per 4 KiB page on its first pass,
    for every copy: a few milliseconds per copy on bare metal, and far more on a
    virtual machine whose host reclaims memory the guest freed. A long-running server
    copies many blobs, and a client usually hashes a file just before it uploads it, so
    the buffers of one copy serve the next. Only ``CHUNK_SIZE`` buffers are pooled
    (smaller ones are cheap) and at most ``POOL_LIMIT`` of them are kept.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._idle: list[mmap.mmap] = []
        self._lock = threading.Lock()

    def take(self, size: int) -> mmap.mmap:
        if size == CHUNK_SIZE:
            with self._lock:
                if self._idle:
                    return self._idle.pop()
        return mmap.mmap(-1, size)

    def give(self, buffers: list[mmap.mmap]) -> None:
        # Buffers beyond the limit are not closed here but dropped: a reader's traceback
        # can still hold a view of one (an exception raised through it), and closing a
        # buffer with views raises. It is unmapped when the last view goes.
        kept = [buf for buf in buffers if len(buf) == CHUNK_SIZE]
        with self._lock:
            self._idle.extend(kept[: self._limit - len(self._idle)])


_POOL = _BufferPool(POOL_LIMIT)


def borrow_buffers(count: int) -> list[mmap.mmap]:
    """``count`` page-aligned buffers of ``CHUNK_SIZE`` bytes from the shared pool; give
    them back with ``return_buffers`` once nothing uses them."""
    return [_POOL.take(CHUNK_SIZE) for _ in range(count)]


def return_buffers(buffers: list[mmap.mmap]) -> None:
    """Give buffers from ``borrow_buffers`` back to the pool."""
    _POOL.give(buffers)


class _Stage(threading.Thread):
    """A worker that runs ``work`` on (buffer, length) items until it gets ``_STOP``.

    ``work`` must not raise: each stage hands its errors to the calling thread itself.
    """

    def __init__(self, name: str, work: Callable[[mmap.mmap, int], None]) -> None:
        super().__init__(name=name, daemon=True)
        self.inbox: queue.SimpleQueue[tuple[mmap.mmap, int] | None] = queue.SimpleQueue()
        self.work = work

    def run(self) -> None:
        while (item := self.inbox.get()) is not _STOP:
            self.work(*item)


def copy_and_hash(
    src: Readable,
    dst: BinaryIO | None,
    *,
    progress: Progress | None = None,
    max_size: int | None = None,
    fsync: bool = False,
    size_hint: int | None = None,
    direct: bool = False,
) -> Digest:
    """Copy ``src`` to ``dst`` (or just read it when ``dst`` is None), hashing every byte.

    ``size_hint`` (the expected size, if known) only sizes the buffers, so a small file
    does not pay for allocating the buffers a large one needs; any size still works.
    ``direct`` says ``dst`` was opened with ``O_DIRECT``: whole chunks bypass the page
    cache, and the unaligned tail is written after switching ``O_DIRECT`` off.
    """
    if size_hint is not None and 0 <= size_hint < INLINE_BELOW:
        return _copy_inline(
            src,
            dst,
            progress=progress,
            max_size=max_size,
            fsync=fsync,
            direct=direct,
            chunk=_buffer_plan(size_hint)[0],
        )
    hasher = hashlib.sha256()
    free: queue.SimpleQueue[mmap.mmap] = queue.SimpleQueue()
    filled: queue.SimpleQueue[tuple[mmap.mmap, int] | BaseException] = queue.SimpleQueue()
    chunk, count = _buffer_plan(size_hint)
    owned = [_POOL.take(chunk) for _ in range(count)]
    for buf in owned:
        free.put(buf)
    unsynced = 0
    write_errors: list[BaseException] = []

    def read(buf: mmap.mmap, _n: int) -> None:
        try:
            filled.put((buf, read_full(src, buf)))
        except BaseException as exc:  # re-raised in the calling thread
            filled.put(exc)

    def write(buf: mmap.mmap, n: int) -> None:
        nonlocal unsynced
        assert dst is not None
        try:
            if not write_errors:
                if direct:
                    _write_direct(dst, memoryview(buf)[:n])
                else:
                    _write_all(dst, memoryview(buf)[:n])
                unsynced += n
                if fsync and not direct and unsynced >= SYNC_EVERY:
                    start_writeback(dst.fileno())
                    unsynced = 0
        except BaseException as exc:  # re-raised in the calling thread
            write_errors.append(exc)
        finally:
            free.put(buf)

    reader = _Stage("modelreg-read", read)
    writer = _Stage("modelreg-write", write) if dst is not None else None
    stages = [s for s in (reader, writer) if s is not None]
    for stage in stages:
        stage.start()
    size = 0
    try:
        reader.inbox.put((free.get(), 0))
        while True:
            item = filled.get()
            if isinstance(item, BaseException):
                raise item
            if write_errors:
                raise write_errors[0]
            buf, n = item
            if n == 0:
                break
            reader.inbox.put((free.get(), 0))  # read ahead while this buffer is hashed
            size += n
            if max_size is not None and size > max_size:
                raise TooLarge(f"more than {max_size} bytes")
            hasher.update(memoryview(buf)[:n])
            if writer is not None:
                writer.inbox.put((buf, n))
            else:
                free.put(buf)
            if progress is not None:
                progress(n)
    finally:
        for stage in stages:
            stage.inbox.put(_STOP)
        for stage in stages:
            stage.join()
        # Both stages have stopped, so no thread still touches a buffer.
        _POOL.give(owned)
    if write_errors:
        raise write_errors[0]
    _finish(dst, fsync)
    return Digest(sha256=hasher.hexdigest(), size=size)


def _copy_inline(
    src: Readable,
    dst: BinaryIO | None,
    *,
    progress: Progress | None,
    max_size: int | None,
    fsync: bool,
    direct: bool,
    chunk: int,
) -> Digest:
    """``copy_and_hash`` in the calling thread alone, for streams expected to be small.

    Starting two threads and mapping their buffers costs more than reading, hashing and
    writing a small file, and most files of a model (configs, tokenizers) are small. A
    stream that turns out larger than its hint is still copied whole, a chunk at a time.
    """
    hasher = hashlib.sha256()
    buf = mmap.mmap(-1, chunk)  # page-aligned, as O_DIRECT writes need
    size = 0
    while n := read_full(src, buf):
        size += n
        if max_size is not None and size > max_size:
            raise TooLarge(f"more than {max_size} bytes")
        with memoryview(buf) as whole, whole[:n] as view:
            hasher.update(view)
            if dst is not None:
                (_write_direct if direct else _write_all)(dst, view)
        if progress is not None:
            progress(n)
    _finish(dst, fsync)
    return Digest(sha256=hasher.hexdigest(), size=size)


def _finish(dst: BinaryIO | None, fsync: bool) -> None:
    if dst is not None:
        dst.flush()
        if fsync:
            os.fdatasync(dst.fileno())


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):  # not Linux, or no such symbol
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_SYNC_FILE_RANGE = _load_sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2


def start_writeback(fd: int) -> None:
    """Ask the kernel to start writing a file's dirty pages without waiting for them.

    On Linux this is ``sync_file_range(SYNC_FILE_RANGE_WRITE)``; elsewhere it waits with
    ``fdatasync``, which is correct but lets the disk stall the copy.
    """
    if _SYNC_FILE_RANGE is None or _SYNC_FILE_RANGE(fd, 0, 0, _SYNC_FILE_RANGE_WRITE) != 0:
        os.fdatasync(fd)


def hash_stream(
    src: Readable, progress: Progress | None = None, *, size_hint: int | None = None
) -> Digest:
    """SHA-256 and size of a stream, read in constant memory (``size_hint`` as for
    ``copy_and_hash``)."""
    return copy_and_hash(src, None, progress=progress, size_hint=size_hint)


# How much of a blob its "head" covers: the first MiB, or the whole of a shorter blob.
HEAD_BYTES = 1024 * 1024


def head_digest(src: Readable) -> str:
    """SHA-256 of the first ``HEAD_BYTES`` bytes of a stream (all of a shorter one).

    With the size, a cheap fingerprint: two files that differ in their first MiB or
    their length cannot be the same blob, so a file whose head no stored blob shares is
    certainly not stored yet.
    """
    buffer = bytearray(HEAD_BYTES)
    filled = read_full(src, buffer)
    return hashlib.sha256(memoryview(buffer)[:filled]).hexdigest()


def _buffer_plan(size_hint: int | None) -> tuple[int, int]:
    if size_hint is None or size_hint < 0:
        return CHUNK_SIZE, BUFFERS
    # One byte more than expected, so a file of exactly the hinted size ends in one read;
    # rounded up to the alignment direct I/O needs.
    wanted = max(MIN_CHUNK_SIZE, min(CHUNK_SIZE, size_hint + 1))
    chunk = -(-wanted // ALIGN) * ALIGN
    return chunk, max(2, min(BUFFERS, size_hint // chunk + 2))


def _write_all(dst: BinaryIO, view: memoryview) -> None:
    # A raw file may write less than asked (signals, some file systems): loop until done.
    while view:
        written = dst.write(view)
        view = view[written:]


def _write_direct(dst: BinaryIO, view: memoryview) -> None:
    aligned = len(view) - len(view) % ALIGN
    if aligned:
        _write_all(dst, view[:aligned])
    if aligned < len(view):
        # Only the last chunk of a stream can be partial: finish it through the page cache.
        fd = dst.fileno()
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_DIRECT)
        _write_all(dst, view[aligned:])


def read_full(src: Readable, buf: mmap.mmap | bytearray) -> int:
    """Fill ``buf`` from ``src`` unless the stream ends first; the bytes read.

    Pipes and sockets return short reads, which would otherwise shrink every chunk and
    multiply per-chunk overhead (or, for a head, hash less than was asked for).
    """
    view = memoryview(buf)
    filled = 0
    while filled < len(buf):
        n = src.readinto(view[filled:])
        if not n:
            break
        filled += n
    return filled
