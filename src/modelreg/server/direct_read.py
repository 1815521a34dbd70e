"""Large blobs that are not in the page cache are sent from direct reads.

``sendfile`` reads a blob through the page cache. When the blob is not there (a durable
store writes blobs around it), the kernel must first allocate a page for every 4 KiB,
and on a virtual machine whose host takes back memory the guest freed, that runs at
260-500 MB/s, against 0.6-1.4 GB/s for reading the same disk directly (measured): it
bounded downloads of freshly uploaded blobs. Here a reader thread reads the blob with
``O_DIRECT`` into a few reused buffers while the calling thread writes them to the
socket: one memory copy per byte, no new pages. A blob the page cache holds still goes
out with ``sendfile``, which copies nothing.

A blob asked for again soon after it was read directly goes through the page cache
instead (``first_read``): when a fleet pulls one model, the first pull reads around the
cache, the second fills it, and the rest are served from memory, not from the disk.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import mmap
import os
import queue
import select
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from modelreg.artifacts import hashing
from modelreg.artifacts.hashing import ALIGN

# Buffers read per request: the disk answers one 16 MiB read faster than four of 4 MiB
# one after another (measured: 0.6-1.1 GB/s against 0.55-0.65).
GROUP = 4
# Buffers per download: one group being read while the other is sent.
DEPTH = 2 * GROUP
# Seconds during which a blob read directly goes through the page cache when asked for
# again, and how many blobs are remembered (per server process).
REPEAT = 600.0
# Pages of a blob that ``cached`` asks about.
SAMPLES = 32
REMEMBERED = 4096
_END = None
_RECENT: dict[tuple[int, int], float] = {}
_RECENT_LOCK = threading.Lock()


def first_read(src: int) -> bool:
    """Whether ``src`` was not read directly in the last ``REPEAT`` seconds; if so, it
    is remembered as read now."""
    info = os.fstat(src)
    key, now = (info.st_dev, info.st_ino), time.monotonic()
    with _RECENT_LOCK:
        last = _RECENT.get(key)
        if last is not None and now - last < REPEAT:
            return False
        _RECENT.pop(key, None)
        while len(_RECENT) >= REMEMBERED:
            del _RECENT[next(iter(_RECENT))]  # the oldest: insertion order
        _RECENT[key] = now
        return True


def _load_mincore() -> Callable[[int, int, Any], int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).mincore
    except (OSError, AttributeError):  # not Linux, or no such symbol
        return None
    function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    function.restype = ctypes.c_int
    return cast("Callable[[int, int, Any], int]", function)


_MINCORE = _load_mincore()


def cached(src: int, offset: int, count: int) -> bool:
    """Whether the page cache holds ``count`` bytes of ``src`` from ``offset``, judged
    by ``SAMPLES`` pages spread evenly over them, the first and last included (``mincore``
    of a mapping: it reads nothing and maps no page).

    Asking for every page cost 30 ms for a 2 GiB blob (the kernel looks each one up);
    a blob is cached or not as a whole, as it was written or last sent.
    """
    if _MINCORE is None or count <= 0:
        return True  # cannot tell: the page cache path is always correct
    page = mmap.PAGESIZE
    start = offset - offset % page
    length = offset + count - start  # not past the end of the file, which mmap refuses
    pages = -(-length // page)
    try:
        # A private mapping is writable, which ctypes needs for its address; nothing is
        # written, so nothing is copied.
        mapping = mmap.mmap(src, length, offset=start, access=mmap.ACCESS_COPY)
    except (OSError, ValueError):
        return True
    try:
        anchor = ctypes.c_char.from_buffer(mapping)
        try:
            base, resident = ctypes.addressof(anchor), ctypes.create_string_buffer(1)
            for index in sorted({i * (pages - 1) // (SAMPLES - 1) for i in range(SAMPLES)}):
                if _MINCORE(base + index * page, page, resident) != 0:
                    return True
                if not resident.raw[0] & 1:  # the lowest bit says the page is resident
                    return False
            return True
        finally:
            del anchor  # the mapping cannot close while ctypes holds it
    finally:
        mapping.close()


def send_direct(out: int, src: int, offset: int, count: int, stall: float) -> int | None:
    """Send ``count`` bytes of ``src`` from ``offset`` on the non-blocking socket ``out``,
    reading ``src`` with ``O_DIRECT``; the bytes sent (fewer if the peer fails or stalls
    for ``stall`` seconds, or the file ends early), or None, having sent nothing, if the
    file system does not do direct I/O."""
    try:
        flags = fcntl.fcntl(src, fcntl.F_GETFL)
        fcntl.fcntl(src, fcntl.F_SETFL, flags | os.O_DIRECT)
    except (OSError, AttributeError):  # no O_DIRECT here, or not on this file system
        return None
    reader = _Reader(src, offset - offset % ALIGN, offset + count)
    reader.start()
    skip = offset % ALIGN  # direct reads start at an aligned offset
    sent = 0
    poller = select.poll()
    poller.register(out, select.POLLOUT)
    try:
        while sent < count:
            item = reader.filled.get()
            if item is _END:
                break
            buf, n = item
            with memoryview(buf) as whole, whole[skip : min(n, skip + count - sent)] as view:
                wanted = len(view)
                done = _send_all(out, view, poller, stall) if wanted else 0
            skip = 0
            sent += done
            reader.free.put(buf)
            if done < wanted or n < len(buf):
                break  # the peer failed or stalled, or the file ended
    finally:
        reader.stop()
    if sent == 0 and reader.error is not None and reader.error.errno == errno.EINVAL:
        # Opened with O_DIRECT, but the file system refuses direct reads of it.
        fcntl.fcntl(src, fcntl.F_SETFL, flags)
        return None
    return sent


def _send_all(out: int, view: memoryview, poller: select.poll, stall: float) -> int:
    done = 0
    while done < len(view):
        try:
            done += os.write(out, view[done:])
        except BlockingIOError:
            if not poller.poll(stall * 1000):
                break
        except OSError:  # reset, broken pipe: the client is gone
            break
    return done


class _Reader(threading.Thread):
    """Reads ``src`` from ``start`` (aligned) to at least ``end`` into ``DEPTH`` reused
    buffers, ``GROUP`` of them per read: full ones on ``filled``, then ``_END``; empty
    ones come back on ``free``."""

    def __init__(self, src: int, start: int, end: int) -> None:
        super().__init__(name="modelreg-direct-read", daemon=True)
        self.src, self.pos, self.end = src, start, end
        self.buffers = hashing.borrow_buffers(DEPTH)  # page-aligned, as O_DIRECT needs
        self.free: queue.SimpleQueue[mmap.mmap | None] = queue.SimpleQueue()
        self.filled: queue.SimpleQueue[tuple[mmap.mmap, int] | None] = queue.SimpleQueue()
        self.error: OSError | None = None
        for buf in self.buffers:
            self.free.put(buf)

    def run(self) -> None:
        try:
            while self.pos < self.end:
                group: list[mmap.mmap] = []
                while len(group) < GROUP and (buf := self.free.get()) is not None:
                    group.append(buf)
                if len(group) < GROUP:
                    return  # stopped
                n = os.preadv(self.src, group, self.pos)
                self.pos += n
                for buf in group:
                    if n <= 0:
                        return  # the end of the file
                    self.filled.put((buf, min(n, len(buf))))
                    n -= len(buf)
        except OSError as exc:
            self.error = exc  # ends the body early: the client's checks report it
        finally:
            self.filled.put(_END)

    def stop(self) -> None:
        self.free.put(None)  # wakes a reader waiting for a buffer
        self.join()
        hashing.return_buffers(self.buffers)
