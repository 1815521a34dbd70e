"""Blob transfers with a server: existence checks, streaming uploads, streaming reads.

Uploads declare the digest and length the client computed; the server recomputes both
while writing and stores nothing if they differ. Reads are plain streams: ``pull``
verifies every byte against the manifest, exactly as it does for a local store.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from modelreg.artifacts.hashing import Progress
from modelreg.client import presigned
from modelreg.client.direct import DirectBlobs
from modelreg.client.http import Session, check, unreachable
from modelreg.errors import NotFound, StorageError

CHUNK = 1024 * 1024
# Blobs smaller than this go in one request on the session's kept-alive connection:
# for a config file, opening a connection of its own cost more than sending the bytes.
SMALL = 1024 * 1024
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
        # Whether the server hands out presigned URLs; None until it first answers. A
        # server over a local folder says no once, and is not asked again.
        self.links: dict[str, bool | None] = {"download": None, "upload": None}

    def _link(self, kind: str, sha256: str, body: dict[str, int] | None = None) -> Any:
        """The server's presigned link for a blob, or None to go through the server."""
        if self.links[kind] is False:
            return None
        answer = self.session.call("POST", f"{_path(sha256)}/{kind}-link", json=body or {})
        self.links[kind] = bool(answer.get("direct"))
        return answer if answer.get("direct") else None

    def upload(self, path: Path, sha256: str, size: int, progress: Progress | None) -> None:
        """Send a file under its digest: straight to the bucket when the server hands out
        an upload link (it then re-hashes the upload before it becomes a blob), else
        through the server (checked there while writing)."""
        link = self._link("upload", sha256, {"size": size})
        if link is not None:
            try:
                presigned.put_file(link["url"], path, size, progress)
            except presigned.BucketUnreachable:
                self.links["upload"] = False  # this client cannot see the bucket
            else:
                self.session.call(
                    "POST",
                    f"{_path(sha256)}/finish-upload",
                    json={"upload_id": link["upload_id"], "size": size},
                    timeout=None,  # the server re-reads the whole upload
                )
                return
        self._upload_through_server(path, sha256, size, progress)

    def _upload_through_server(
        self, path: Path, sha256: str, size: int, progress: Progress | None
    ) -> None:
        if size < SMALL:
            self._upload_small(path, sha256, size, progress)
            return
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

    def _upload_small(self, path: Path, sha256: str, size: int, progress: Progress | None) -> None:
        try:
            with open(path, "rb", buffering=0) as src:
                # One byte more than expected, so a file that grew is sent whole and
                # refused by the server's length and digest checks.
                data = src.read(size + 1)
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc}") from exc
        self.session.call("PUT", _path(sha256), content=data, timeout=TRANSFER_TIMEOUT.read)
        if progress is not None:
            progress(len(data))

    def open(self, sha256: str) -> io.RawIOBase:
        """A stream of the blob's bytes, from the bucket when the server hands out a
        download link, else from the server; NotFound if the blob is not stored."""
        link = self._link("download", sha256)
        if link is not None:
            try:
                return presigned.open_url(link["url"], sha256)
            except presigned.BucketUnreachable:
                self.links["download"] = False  # this client cannot see the bucket
        return self._open_through_server(sha256)

    def _open_through_server(self, sha256: str) -> io.RawIOBase:
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
