"""Blob transfers with a server: existence checks, streaming uploads, streaming reads.

Uploads declare the digest and length the client computed; the server recomputes both
while writing and stores nothing if they differ. A large file that no stored blob can be
(no blob has its size and first MiB) is sent while it is hashed instead, and the server
answers with the digest of what it stored, which must be the client's. Reads are plain
streams: ``pull`` verifies every byte against the manifest, exactly as it does for a
local store.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from modelreg.artifacts.hashing import Progress, head_digest
from modelreg.client import presigned
from modelreg.client.direct import DirectBlobs
from modelreg.client.http import Session, check, unreachable
from modelreg.domain.manifest import FileEntry
from modelreg.errors import DigestMismatch, MethodNotAllowed, NotFound, StorageError
from modelreg.service import transfer

CHUNK = 1024 * 1024
# Blobs smaller than this go in one request on the session's kept-alive connection:
# for a config file, opening a connection of its own cost more than sending the bytes.
SMALL = 1024 * 1024
# Files from this size on are sent while they are hashed when no stored blob can be them:
# hashing one first takes about as long as sending it. Below, one more request to ask
# costs more than it saves.
STREAM_FROM = 64 * 1024 * 1024
# A blob transfer may sit on a slow disk at the other end for a while between chunks.
TRANSFER_TIMEOUT = httpx.Timeout(600.0, connect=10.0)
BLOBS = "/api/v1/blobs"


def _path(sha256: str) -> str:
    return f"{BLOBS}/{sha256}"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc


def _chunks(
    path: Path, progress: Progress | None, seen: Callable[[bytes], None] | None = None
) -> Iterator[bytes]:
    """A file's bytes as a request body, each chunk shown to ``seen`` before it goes out
    and counted as progress after."""
    with open(path, "rb", buffering=0) as src:
        while chunk := src.read(CHUNK):
            if seen is not None:
                seen(chunk)
            yield chunk
            if progress is not None:
                progress(len(chunk))


def _head(path: Path) -> str:
    try:
        with open(path, "rb", buffering=0) as src:
            return head_digest(src)
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc


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
        # False once the server says large files should not stream (they go to its bucket
        # by digest) or does not know the question.
        self.streaming = True

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

    def upload_new(
        self, files: list[tuple[str, Path]], progress: Progress | None
    ) -> dict[str, FileEntry]:
        """Send the large files no stored blob can be, each hashed while it is sent; their
        manifest entries by relative path. Other files are left to the caller, to hash
        first and send only if missing."""
        if not self.streaming:
            return {}
        big = [(rel, full, size) for rel, full in files if (size := _size(full)) >= STREAM_FROM]
        if not big:
            return {}
        heads = [_head(full) for _rel, full, _size in big]
        asked = [
            {"size": size, "head": head} for (_r, _f, size), head in zip(big, heads, strict=True)
        ]
        try:
            answer = self.session.call("POST", f"{BLOBS}/heads", json={"files": asked})
        except (NotFound, MethodNotAllowed):
            answer = {"stream": False}  # a server from before the question: hash first
        if not answer.get("stream"):
            self.streaming = False
            return {}
        todo: list[tuple[str, Path, int]] = []
        seen: set[tuple[int, str]] = set()
        for item, head, known in zip(big, heads, answer["known"], strict=True):
            if not known and (item[2], head) not in seen:  # the same bytes twice: send once
                seen.add((item[2], head))
                todo.append(item)

        def send(item: tuple[str, Path, int]) -> FileEntry:
            return self._upload_unnamed(*item, progress)

        return {entry.path: entry for entry in transfer.each_file(send, todo, "upload")}

    def _upload_unnamed(
        self, rel: str, path: Path, size: int, progress: Progress | None
    ) -> FileEntry:
        if self.direct is not None:
            # The kernel sends the file (sendfile) while a thread hashes it: the two read
            # the page cache side by side, and hashlib releases the GIL.
            with ThreadPoolExecutor(1, thread_name_prefix="modelreg-hash") as pool:
                mine = pool.submit(transfer.hash_file, rel, path)
                body = self.direct.upload(path, BLOBS, size, progress, method="POST")
                entry = mine.result()
            theirs = json.loads(body)
        else:
            entry, theirs = self._post_hashing(rel, path, size, progress)
        if theirs["sha256"] != entry.sha256 or theirs["size"] != entry.size:
            raise DigestMismatch(
                f"{path} changed while it was uploaded: the server stored {theirs['size']} "
                f"bytes with digest {theirs['sha256']}, the file now has {entry.size} bytes "
                f"with digest {entry.sha256}; register it again once it is complete",
                path=rel,
                expected=entry.sha256,
                actual=theirs["sha256"],
            )
        return entry

    def _post_hashing(
        self, rel: str, path: Path, size: int, progress: Progress | None
    ) -> tuple[FileEntry, dict[str, Any]]:
        """POST a file through httpx, hashing each chunk as it goes out."""
        hasher = hashlib.sha256()
        sent = 0

        def seen(chunk: bytes) -> None:
            nonlocal sent
            hasher.update(chunk)
            sent += len(chunk)

        response = self._send_body("POST", BLOBS, _chunks(path, progress, seen), size, path)
        return FileEntry(rel, sent, hasher.hexdigest()), dict(response.json())

    def _send_body(
        self, method: str, url_path: str, content: Iterator[bytes], size: int, path: Path
    ) -> httpx.Response:
        assert self.session.client is not None
        request = self.session.client.build_request(
            method,
            self.session.url(url_path),
            content=content,
            headers={"content-length": str(size), "content-type": "application/octet-stream"},
            timeout=TRANSFER_TIMEOUT,
        )
        try:
            response = self.session.send(request)
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc}") from exc
        check(response)
        return response

    def _upload_through_server(
        self, path: Path, sha256: str, size: int, progress: Progress | None
    ) -> None:
        if size < SMALL:
            self._upload_small(path, sha256, size, progress)
            return
        if self.direct is not None:
            self.direct.upload(path, _path(sha256), size, progress)
            return
        self._send_body("PUT", _path(sha256), _chunks(path, progress), size, path)

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
