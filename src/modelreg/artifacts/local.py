"""Blobs on a local file system: ``<root>/sha256/ab/cd/<hex>``.

Each upload goes to ``<root>/partial/`` first and is renamed into place only after its
digest is known (and matches the expected one), so a blob path never holds partial bytes.
"""

from __future__ import annotations

import contextlib
import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from modelreg.artifacts import files
from modelreg.artifacts.base import BlobStat
from modelreg.artifacts.hashing import Digest, Progress, Readable, copy_and_hash
from modelreg.domain.manifest import validate_digest
from modelreg.errors import IntegrityError, NotFound, StorageError


class LocalArtifactStore:
    """Content-addressed blobs in a folder."""

    hash_first = False  # one pass that hashes while copying is cheapest on a local disk

    def __init__(self, root: str | Path, *, fsync: bool = True, direct_io: bool = True) -> None:
        self.root = Path(root).expanduser().resolve()
        self.fsync = fsync
        self.direct_io = direct_io
        self._blobs = self.root / "sha256"
        self._partial = self.root / "partial"
        try:
            self._blobs.mkdir(parents=True, exist_ok=True)
            self._partial.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create blob store at {self.root}: {exc}") from exc

    @property
    def location(self) -> str:
        return str(self.root)

    def path_of(self, sha256: str) -> Path:
        """Where a blob lives (exposed for tests and diagnostics)."""
        validate_digest(sha256)
        return self._blobs / sha256[:2] / sha256[2:4] / sha256

    def put(
        self,
        src: Readable,
        *,
        expected_sha256: str | None = None,
        expected_size: int | None = None,
        progress: Progress | None = None,
        size_hint: int | None = None,
    ) -> Digest:
        if expected_sha256 is not None:
            validate_digest(expected_sha256)
        tmp = self._partial / f"{uuid.uuid4().hex}.part"
        try:
            # Bytes flushed before commit go around the page cache (see create_new).
            out, direct = files.create_new(tmp, direct=self.fsync and self.direct_io)
            with out:
                digest = copy_and_hash(
                    src,
                    out,
                    progress=progress,
                    fsync=self.fsync,
                    size_hint=expected_size if expected_size is not None else size_hint,
                    direct=direct,
                )
            if expected_size is not None and digest.size != expected_size:
                raise IntegrityError(
                    f"upload has {digest.size} bytes, expected {expected_size}",
                    expected=expected_size,
                    actual=digest.size,
                )
            if expected_sha256 is not None and digest.sha256 != expected_sha256:
                raise IntegrityError(
                    f"upload has digest {digest.sha256}, expected {expected_sha256}",
                    expected=expected_sha256,
                    actual=digest.sha256,
                )
            final = self.path_of(digest.sha256)
            if final.exists():
                # Same bytes already stored: keep one copy, and refresh its mtime so a gc
                # running now treats it as recent until the version that uses it commits.
                os.utime(final)
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, final)
                if self.fsync:
                    files.fsync_dir(final.parent)
            return digest
        except OSError as exc:
            raise StorageError(f"cannot write blob to {self.root}: {exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def stat(self, sha256: str) -> BlobStat | None:
        try:
            st = self.path_of(sha256).stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot stat blob {sha256}: {exc}") from exc
        return BlobStat(sha256=sha256, size=st.st_size, mtime=st.st_mtime)

    def open(self, sha256: str) -> io.RawIOBase:
        try:
            return open(self.path_of(sha256), "rb", buffering=0)
        except FileNotFoundError as exc:
            raise NotFound(f"blob {sha256} is missing from {self.root}", sha256=sha256) from exc
        except OSError as exc:
            raise StorageError(f"cannot read blob {sha256}: {exc}") from exc

    def delete(self, sha256: str) -> None:
        try:
            self.path_of(sha256).unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageError(f"cannot delete blob {sha256}: {exc}") from exc

    def iter_blobs(self) -> Iterator[BlobStat]:
        try:
            for first in sorted(self._blobs.iterdir()):
                for second in sorted(first.iterdir()):
                    for entry in os.scandir(second):
                        if len(entry.name) != 64 or not entry.is_file():
                            continue
                        st = entry.stat()
                        yield BlobStat(sha256=entry.name, size=st.st_size, mtime=st.st_mtime)
        except OSError as exc:
            raise StorageError(f"cannot list blobs in {self.root}: {exc}") from exc

    def cleanup_partial(self, older_than: float) -> int:
        removed = 0
        try:
            for entry in os.scandir(self._partial):
                if entry.is_file() and entry.stat().st_mtime < older_than:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
                        removed += 1
        except OSError as exc:
            raise StorageError(f"cannot clean partial uploads in {self.root}: {exc}") from exc
        return removed

    def check(self) -> None:
        """Raise StorageError unless a file can be created in the store."""
        probe = self._partial / f".ready-{uuid.uuid4().hex}"
        try:
            probe.touch()
            probe.unlink()
        except OSError as exc:
            raise StorageError(f"blob store {self.root} is not writable: {exc}") from exc
