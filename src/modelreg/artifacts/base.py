"""The contract every blob store implements (local disk, S3-compatible bucket)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

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

    @property
    def hash_first(self) -> bool:
        """Whether a caller holding a file should hash it first and put only what is
        missing, with its digest: true where sending bytes costs more than reading them
        twice (a remote store)."""
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

    def check(self) -> None:
        """Raise StorageError unless the store is reachable and accepts writes."""
        ...


@runtime_checkable
class DirectTransfers(Protocol):
    """A store that clients can reach without the server: through presigned URLs."""

    def presign_get(self, sha256: str, expires: int) -> str:
        """A URL that downloads a blob for ``expires`` seconds, without credentials."""
        ...

    def presign_put(self, size: int, expires: int) -> tuple[str, str]:
        """(upload id, URL) for one PUT of ``size`` bytes to a temporary place."""
        ...

    def finish_upload(self, upload_id: str, sha256: str, size: int) -> Digest:
        """Verify a presigned upload and make it the blob ``sha256``; IntegrityError and
        nothing stored if its bytes differ."""
        ...
