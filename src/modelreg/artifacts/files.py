"""New files whose bytes must reach the disk, and the folders that name them."""

from __future__ import annotations

import contextlib
import errno
import io
import os
from pathlib import Path

# Files from this size on are written around the page cache by pull, and blobs from this
# size on that the page cache does not hold are read around it by the server. Filling new
# page-cache pages is what bounds a large transfer on a virtual machine (the host hands
# each page back to the guest on first touch: 300-500 MB/s, against 1.3 GB/s direct to
# disk, measured), and a model server pulling a new version of a large model keeps the
# cache for the version it still serves. Smaller files (configs, tokenizers) are read
# right after a pull, and a flush each would cost more than the copy.
DIRECT_FROM = 64 * 1024 * 1024


def create_new(path: Path, *, direct: bool) -> tuple[io.FileIO, bool]:
    """Create ``path`` (it must not exist) for writing; the file, and whether it is open
    with direct I/O (``O_DIRECT``).

    ``direct`` asks for direct I/O: for bytes that are flushed to disk anyway, the page
    cache gains nothing, and writing around it costs less CPU and none of the page
    allocation that makes buffered writes of large files stall. File systems without
    ``O_DIRECT`` (tmpfs) get a buffered file instead.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    if direct and hasattr(os, "O_DIRECT"):
        try:
            return io.FileIO(os.open(path, flags | os.O_DIRECT, 0o644), "wb"), True
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            # Some kernels create the file before refusing O_DIRECT on it.
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    return io.FileIO(os.open(path, flags, 0o644), "wb"), False


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries, so the names created or renamed in it survive a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_tree(root: Path) -> None:
    """Flush every file and folder under ``root`` (and ``root`` itself) to disk."""
    for folder, _dirs, names in os.walk(root):
        for name in names:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(folder))
