"""Moving bytes to and from S3: a streaming multipart upload, and a resumable reader.

An upload reads the source one part at a time, hashes each part in the calling thread and
sends up to ``concurrency`` parts at once from a small pool, so memory stays at about
``(concurrency + 1) * part_size`` whatever the size of the stream. A stream that fits in
one part is sent with a single PUT, once its digest is known.
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import io
import os
import ssl
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import botocore.exceptions

from modelreg.artifacts.hashing import Digest, Progress, Readable, TooLarge, read_full
from modelreg.artifacts.s3_client import STREAM_ERRORS, translated
from modelreg.errors import StorageError

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

MIB = 1024 * 1024
PART_SIZE = 8 * MIB
MAX_PARTS = 10_000  # S3's limit per multipart upload
CONCURRENCY = 4
# A reader re-requests the rest of an object this many times after a broken connection.
READ_RETRIES = 3
READ_TIMEOUT = 120.0
READ_ERRORS: tuple[type[BaseException], ...] = (*STREAM_ERRORS, http.client.HTTPException)


def part_size_for(size_hint: int | None, minimum: int = PART_SIZE) -> int:
    """A part size that keeps a stream of ``size_hint`` bytes within S3's part limit."""
    if size_hint is None or size_hint <= minimum * (MAX_PARTS - 1000):
        return minimum
    return -(-size_hint // (MAX_PARTS - 1000) // MIB) * MIB + MIB


@dataclass
class Staged:
    """Bytes hashed and sent, but not yet visible: a multipart upload awaiting completion,
    or (``body``) a small stream still in memory."""

    digest: Digest
    body: bytes | None = None
    upload_id: str | None = None
    parts: list[dict[str, Any]] = field(default_factory=list)


def _read_part(src: Readable, size: int) -> bytearray:
    buf = bytearray(size)
    filled = read_full(src, buf)
    # A short (last) part is copied: a reader may still hold a view of the buffer,
    # which forbids resizing it in place.
    return buf if filled == size else buf[:filled]


class MultipartWriter:
    """Streams one source to one key of a bucket."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        key: str,
        *,
        part_size: int = PART_SIZE,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        self.part_size = part_size
        self.concurrency = concurrency
        self.upload_id: str | None = None

    def stage(
        self, src: Readable, *, progress: Progress | None = None, max_size: int | None = None
    ) -> Staged:
        """Read and hash the whole source; parts beyond the first are sent as they come.

        Nothing is visible under the key until :meth:`commit`. On failure the caller must
        call :meth:`abort`.
        """
        hasher = hashlib.sha256()
        first = _read_part(src, self.part_size)
        size = len(first)
        if max_size is not None and size > max_size:
            raise TooLarge(f"more than {max_size} bytes")
        hasher.update(first)
        if progress is not None and first:
            progress(len(first))
        if len(first) < self.part_size:
            return Staged(Digest(hasher.hexdigest(), size), body=bytes(first))
        what = f"start an upload to s3://{self.bucket}/{self.key}"
        with translated(what, bucket=self.bucket, key=self.key):
            started = self.client.create_multipart_upload(Bucket=self.bucket, Key=self.key)
        self.upload_id = started["UploadId"]
        slots = threading.BoundedSemaphore(self.concurrency)
        futures: list[Future[dict[str, Any]]] = []
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="modelreg-s3-put") as pool:
            try:
                buf, number = first, 1
                while buf:
                    slots.acquire()
                    future = pool.submit(self._send_part, number, buf)
                    future.add_done_callback(lambda _f: slots.release())
                    futures.append(future)
                    failed = next((f for f in futures if f.done() and f.exception()), None)
                    if failed is not None:
                        failed.result()  # raises its error
                    if number >= MAX_PARTS:
                        raise StorageError(
                            f"stream too large for s3://{self.bucket}/{self.key}: more than "
                            f"{MAX_PARTS} parts of {self.part_size} bytes"
                        )
                    buf = _read_part(src, self.part_size)
                    number += 1
                    if buf:
                        size += len(buf)
                        if max_size is not None and size > max_size:
                            raise TooLarge(f"more than {max_size} bytes")
                        hasher.update(buf)
                        if progress is not None:
                            progress(len(buf))
                parts = [f.result() for f in futures]
            finally:
                # Do not leave parts sending after a failure: the caller aborts next.
                for future in futures:
                    future.cancel()
        return Staged(Digest(hasher.hexdigest(), size), upload_id=self.upload_id, parts=parts)

    def _send_part(self, number: int, data: bytearray) -> dict[str, Any]:
        what = f"upload part {number} to s3://{self.bucket}/{self.key}"
        assert self.upload_id is not None
        with translated(what, bucket=self.bucket, key=self.key):
            answer = self.client.upload_part(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                PartNumber=number,
                Body=bytes(data) if len(data) < MIB else data,  # type: ignore[arg-type]
            )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def commit(self, staged: Staged, key: str | None = None) -> None:
        """Make the staged bytes visible under the key (small streams: under ``key``, which
        may differ from the one the writer was made for, now that the digest is known)."""
        target = key or self.key
        what = f"write s3://{self.bucket}/{target}"
        with translated(what, bucket=self.bucket, key=target):
            if staged.body is not None:
                self.client.put_object(Bucket=self.bucket, Key=target, Body=staged.body)
                return
            assert staged.upload_id is not None
            assert target == self.key
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=staged.upload_id,
                MultipartUpload={"Parts": staged.parts},  # type: ignore[typeddict-item]
            )
        self.upload_id = None

    def abort(self) -> None:
        """Drop an unfinished multipart upload; its parts are never visible."""
        if self.upload_id is None:
            return
        upload_id, self.upload_id = self.upload_id, None
        # Best effort: a failed abort leaves parts that cleanup_partial removes later.
        try:
            with translated("abort an upload", bucket=self.bucket, key=self.key):
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=self.key, UploadId=upload_id
                )
        except StorageError:
            pass


class ObjectReader(io.RawIOBase):
    """An object's bytes as a raw stream. A connection that breaks mid-way is resumed
    with a ranged request for the rest, pinned to the same object by its ETag, so a
    resumed read never mixes two versions of a key.

    The first request goes through a presigned URL over ``http.client``, which reads
    straight into the caller's buffer: botocore's response layers (urllib3) cost more
    CPU per byte than the SHA-256 every read is checked with. Anything but a plain 200
    (an error, a throttled request, an endpoint this path cannot reach) falls back to
    botocore's ``get_object``, with its retries and the error translation.
    """

    def __init__(self, client: S3Client, bucket: str, key: str, what: str) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key
        self._what = what
        self._pos = 0
        self._etag: str | None = None
        self._body: Any = None
        if not self._open_direct():
            self._open(0)

    def _open_direct(self) -> bool:
        try:
            url = self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self._bucket, "Key": self._key}, ExpiresIn=300
            )
        except botocore.exceptions.BotoCoreError:
            return False  # e.g. no credentials: get_object reports it properly
        parts = urlsplit(url)
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(
                parts.hostname or "", parts.port, timeout=READ_TIMEOUT, context=_tls()
            )
        else:
            conn = http.client.HTTPConnection(
                parts.hostname or "", parts.port, timeout=READ_TIMEOUT
            )
        try:
            conn.request("GET", f"{parts.path}?{parts.query}", headers={"user-agent": "modelreg"})
            response = conn.getresponse()
        except (OSError, http.client.HTTPException):
            conn.close()
            return False
        if response.status != 200:
            conn.close()
            return False
        self._etag = response.getheader("etag")
        self._body = _DirectBody(conn, response)
        return True

    def _open(self, start: int) -> None:
        kwargs: dict[str, Any] = {"Bucket": self._bucket, "Key": self._key}
        if start:
            kwargs["Range"] = f"bytes={start}-"
        if self._etag is not None:
            kwargs["IfMatch"] = self._etag
        with translated(self._what, bucket=self._bucket, key=self._key):
            answer = self._client.get_object(**kwargs)
        self._etag = answer.get("ETag")
        self._body = answer["Body"]

    @property
    def etag(self) -> str | None:
        """The ETag of the object being read (for conditional copies)."""
        return self._etag

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        for attempt in range(READ_RETRIES + 1):
            try:
                n = int(self._body.readinto(buffer))
            except READ_ERRORS as exc:
                if attempt == READ_RETRIES:
                    raise StorageError(
                        f"cannot {self._what}: the connection broke {attempt + 1} times: {exc}"
                    ) from exc
                self._body.close()
                time.sleep(0.2 * 2**attempt)
                self._open(self._pos)
                continue
            self._pos += n
            return n
        raise AssertionError("unreachable")  # the loop returns or raises

    def close(self) -> None:
        if not self.closed and self._body is not None:
            self._body.close()
        super().close()


class _DirectBody:
    """A response body of ``http.client``; a short body raises, so the reader resumes."""

    def __init__(self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse):
        self._conn = conn
        self._response = response

    def readinto(self, buffer: Any) -> int:
        n = self._response.readinto(buffer)
        left = self._response.length
        if n == 0 and len(buffer) and left:
            # http.client reports a connection closed early as an ordinary end of body.
            raise http.client.IncompleteRead(b"", left)
        return n

    def close(self) -> None:
        self._response.close()
        self._conn.close()


@functools.cache
def _tls() -> ssl.SSLContext:
    # The CA bundle AWS tools honour, for S3-compatible servers with a private CA.
    return ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE") or None)
