"""The contract every blob store implements (local disk now, S3-compatible later)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from modelreg.artifacts.hashing import Digest, Progress, Readable


@dataclass(frozen=True, slots=True)
class BlobStat:
    """A stored blob: its digest, size and last-modified time (epoch seconds)."""

    sha256: str
    size: int
    mtime: float


class BlobSource(Protocol):
    """Where verified reads come from: a blob store, or a registry server."""

    def open(self, sha256: str) -> io.RawIOBase:
        """Open a blob for reading; NotFound if absent. The caller verifies what it reads."""
        ...


class ArtifactStore(Protocol):
    """Content-addressed blob storage. Blobs are immutable once complete."""

    @property
    def location(self) -> str:
        """Where the blobs live, for messages and ``modelreg info``."""
        ...

    def put(
        self,
        src: Readable,
        *,
        expected_sha256: str | None = None,
        expected_size: int | None = None,
        progress: Progress | None = None,
        size_hint: int | None = None,
    ) -> Digest:
        """Store a stream under its SHA-256, hashing while writing, atomically.

        ``size_hint`` is the size the caller believes the stream has; unlike
        ``expected_size`` it is not checked, only used to size buffers.

        A mismatch with ``expected_sha256`` or ``expected_size`` raises IntegrityError and
        stores nothing. Storing bytes that already exist keeps one copy and refreshes its
        modification time, so a concurrent ``gc`` does not collect it before it is used.
        """
        ...

    def stat(self, sha256: str) -> BlobStat | None:
        """The blob's stat, or None if it is not stored."""
        ...

    def open(self, sha256: str) -> io.RawIOBase:
        """Open a blob for reading; NotFound if absent. The caller verifies what it reads."""
        ...

    def delete(self, sha256: str) -> None:
        """Remove a blob; absent blobs are ignored."""
        ...

    def iter_blobs(self) -> Iterator[BlobStat]:
        """Every complete blob in the store."""
        ...

    def cleanup_partial(self, older_than: float) -> int:
        """Remove unfinished uploads last touched before ``older_than`` (epoch seconds)."""
        ...
