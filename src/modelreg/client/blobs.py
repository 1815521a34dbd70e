"""Blob transfers with a server: existence checks, streaming uploads, streaming reads.

Uploads declare the digest and length the client computed; the server recomputes both
while writing and stores nothing if they differ. Reads are plain streams: ``pull``
verifies every byte against the manifest, exactly as it does for a local store.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx

from modelreg.artifacts.hashing import Progress
from modelreg.client.direct import DirectBlobs
from modelreg.client.http import Session, check, unreachable
from modelreg.errors import NotFound, StorageError

CHUNK = 1024 * 1024
# A blob transfer may sit on a slow disk at the other end for a while between chunks.
TRANSFER_TIMEOUT = httpx.Timeout(600.0, connect=10.0)


def _path(sha256: str) -> str:
    return f"/api/v1/blobs/{sha256}"


class RemoteBlobs:
    """The blob side of a server: uploads, and the ``BlobSource`` that ``pull`` reads."""

    def __init__(self, session: Session) -> None:
        self.session = session
        # Real servers get the fast path; an injected client (tests) carries everything.
        self.direct = (
            None if session.custom_client else DirectBlobs(session.base_url, session.headers)
        )

    def upload(self, path: Path, sha256: str, size: int, progress: Progress | None) -> None:
        """Stream a file to the server under its digest (checked there while writing)."""
        if self.direct is not None:
            self.direct.upload(path, _path(sha256), size, progress)
            return

        def body() -> Iterator[bytes]:
            with open(path, "rb", buffering=0) as src:
                while chunk := src.read(CHUNK):
                    yield chunk
                    if progress is not None:
                        progress(len(chunk))

        assert self.session.client is not None
        request = self.session.client.build_request(
            "PUT",
            self.session.url(_path(sha256)),
            content=body(),
            headers={"content-length": str(size), "content-type": "application/octet-stream"},
            timeout=TRANSFER_TIMEOUT,
        )
        try:
            response = self.session.send(request)
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc}") from exc
        check(response)

    def open(self, sha256: str) -> io.RawIOBase:
        """A stream of the blob's bytes; NotFound if the server does not have it."""
        if self.direct is not None:
            return self.direct.open(_path(sha256), sha256)
        assert self.session.client is not None
        request = self.session.client.build_request(
            "GET", self.session.url(_path(sha256)), timeout=TRANSFER_TIMEOUT
        )
        response = self.session.send(request, stream=True)
        if response.status_code == 404:
            response.close()
            raise NotFound(f"blob {sha256} is not stored on the server", sha256=sha256)
        check(response)
        return _ResponseReader(response, self.session.base_url)


class _ResponseReader(io.RawIOBase):
    """``readinto`` over a streaming response body."""

    def __init__(self, response: httpx.Response, base_url: str) -> None:
        self._response = response
        self._chunks = response.iter_raw(CHUNK)
        self._pending = memoryview(b"")
        self._base_url = base_url

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if not self._pending:
            try:
                self._pending = memoryview(next(self._chunks))
            except StopIteration:
                return 0
            except httpx.HTTPError as exc:
                raise unreachable(self._base_url, exc) from exc
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._response.close()
        super().close()
