"""Blobs in an S3-compatible bucket: ``s3://bucket/prefix`` holds ``prefix/sha256/<hex>``.

No partially written or unverified blob is ever visible under a digest key:

- When the caller declares the digest (every upload through the server, every
  registration, which hashes files first), the bytes stream as a multipart upload
  straight to the digest key, hashed on the way, and the upload is *completed* only if
  digest and size match; otherwise it is aborted. S3 shows a multipart object only once
  it is completed, and completion is atomic.
- When the digest is not known in advance, the bytes go to a temporary key under
  ``prefix/partial/``, are copied server-side to their digest key once it is known, and
  the temporary object is deleted. A stream that fits in one part is hashed in memory
  first and written with one PUT to its digest key.
- A presigned upload lands under ``partial/`` too; the server re-reads and hashes it, and
  copies it only if it still is the object that was hashed (``CopySourceIfMatch`` on its
  ETag), so a client cannot swap the bytes between check and copy. The S3
  ``x-amz-checksum-sha256`` header is not relied on: not every S3-compatible server
  verifies it.

Storing bytes that already exist sends nothing (they are still read and hashed, so that
a caller's wrong expectation fails as it would on a fresh upload) and refreshes the
object's modification time with a copy onto itself, so ``gc`` spares it.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from modelreg.artifacts.base import BlobStat
from modelreg.artifacts.hashing import (
    Digest,
    Progress,
    Readable,
    TooLarge,
    copy_and_hash,
    hash_stream,
)
from modelreg.artifacts.s3_client import make_client, parse_s3_uri, translated
from modelreg.artifacts.s3_io import (
    CONCURRENCY,
    PART_SIZE,
    MultipartWriter,
    ObjectReader,
    Staged,
    part_size_for,
)
from modelreg.domain.manifest import validate_digest
from modelreg.errors import IntegrityError, InvalidArgument, NotFound, StorageError

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

GIB = 1024**3
# Larger objects cannot be copied with one CopyObject request.
COPY_LIMIT = 5 * GIB
COPY_PART = 1 * GIB
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


class S3ArtifactStore:
    """Content-addressed blobs in a bucket, under an optional key prefix."""

    hash_first = True  # re-sending bytes costs more than reading a local file twice

    def __init__(
        self,
        uri: str,
        *,
        client: S3Client | None = None,
        addressing_style: str = "auto",
        concurrency: int = CONCURRENCY,
        part_size: int = PART_SIZE,
    ) -> None:
        self.bucket, self.prefix = parse_s3_uri(uri)
        self.client = client or make_client(addressing_style=addressing_style)
        self.concurrency = concurrency
        self.part_size = part_size
        self.copy_limit = COPY_LIMIT
        self.copy_part = COPY_PART
        self._blobs = f"{self.prefix}sha256/"
        self._partial = f"{self.prefix}partial/"

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def key_of(self, sha256: str) -> str:
        """The key a blob lives under (exposed for tests and diagnostics)."""
        return self._blobs + validate_digest(sha256)

    def _translated(self, what: str, key: str | None = None) -> Any:
        return translated(what, bucket=self.bucket, key=key)

    # ------------------------------------------------------------------ writes

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
            existing = self.stat(expected_sha256)
            if existing is not None and expected_size in (None, existing.size):
                digest = self._read_checked(src, expected_sha256, expected_size, progress)
                self._touch(self.key_of(expected_sha256), existing.size)
                return digest
            key = self.key_of(expected_sha256)
        else:
            key = f"{self._partial}{uuid.uuid4().hex}"
        hint = expected_size if expected_size is not None else size_hint
        writer = MultipartWriter(
            self.client,
            self.bucket,
            key,
            part_size=part_size_for(hint, self.part_size),
            concurrency=self.concurrency,
        )
        max_size = expected_size + 1 if expected_size is not None else None
        try:
            try:
                staged = writer.stage(src, progress=progress, max_size=max_size)
            except TooLarge:
                raise _size_mismatch(f"more than {expected_size}", expected_size) from None
            except OSError as exc:  # the source failed: botocore's errors are translated
                raise StorageError(f"cannot write blob to {self.location}: {exc}") from exc
            _check(staged.digest, expected_sha256, expected_size)
            self._commit(writer, staged, key)
        except BaseException:
            writer.abort()
            raise
        return staged.digest

    def _commit(self, writer: MultipartWriter, staged: Staged, key: str) -> None:
        final = self.key_of(staged.digest.sha256)
        if key == final or staged.body is not None:
            writer.commit(staged, final)
            return
        # Written under a temporary key because the digest was not known: move it.
        writer.commit(staged)
        try:
            self._move_into_place(key, final, staged.digest.size)
        finally:
            self._delete_key(key)

    def _move_into_place(self, temp: str, final: str, size: int, etag: str | None = None) -> None:
        if self._exists(final):
            self._touch(final, size)
        else:
            self._copy(temp, final, size, etag)

    def _read_checked(
        self, src: Readable, sha256: str, size: int | None, progress: Progress | None
    ) -> Digest:
        try:
            digest = hash_stream(src, progress)
        except OSError as exc:
            raise StorageError(f"cannot read the upload: {exc}") from exc
        _check(digest, sha256, size)
        return digest

    def _copy(self, src: str, dst: str, size: int, etag: str | None = None) -> None:
        """Server-side copy; ``etag`` pins the source to the object a caller checked."""
        source = {"Bucket": self.bucket, "Key": src}
        condition: dict[str, Any] = {"CopySourceIfMatch": etag} if etag else {}
        what = f"copy {src} to {dst}"
        with self._translated(what, dst):
            if size <= self.copy_limit:
                self.client.copy_object(
                    Bucket=self.bucket,
                    Key=dst,
                    CopySource=source,  # type: ignore[arg-type]
                    MetadataDirective="REPLACE",
                    **condition,
                )
                return
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=dst)["UploadId"]
        try:
            parts = []
            for number, start in enumerate(range(0, size, self.copy_part), 1):
                end = min(size, start + self.copy_part) - 1
                with self._translated(what, dst):
                    answer = self.client.upload_part_copy(
                        Bucket=self.bucket,
                        Key=dst,
                        UploadId=upload_id,
                        PartNumber=number,
                        CopySource=source,  # type: ignore[arg-type]
                        CopySourceRange=f"bytes={start}-{end}",
                        **condition,
                    )
                parts.append({"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]})
            with self._translated(what, dst):
                self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=dst,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
                )
        except BaseException:
            with self._translated("abort a copy", dst):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=dst, UploadId=upload_id)
            raise

    def _touch(self, key: str, size: int) -> None:
        # S3 has no utime: copying an object onto itself with new metadata gives it a new
        # LastModified, which is what gc's grace period looks at.
        self._copy(key, key, size)

    def _exists(self, key: str) -> bool:
        with self._translated(f"look up {key}", key):
            try:
                self.client.head_object(Bucket=self.bucket, Key=key)
            except self.client.exceptions.ClientError as exc:
                if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                    return False
                raise
        return True

    def _delete_key(self, key: str) -> None:
        with self._translated(f"delete {key}", key):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    # ------------------------------------------------------------------- reads

    def stat(self, sha256: str) -> BlobStat | None:
        key = self.key_of(sha256)
        with self._translated(f"stat blob {sha256}", key):
            try:
                head = self.client.head_object(Bucket=self.bucket, Key=key)
            except self.client.exceptions.ClientError as exc:
                if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                    return None
                raise
        return BlobStat(sha256, int(head["ContentLength"]), head["LastModified"].timestamp())

    def open(self, sha256: str) -> io.RawIOBase:
        key = self.key_of(sha256)
        try:
            return ObjectReader(self.client, self.bucket, key, f"read blob {sha256}")
        except NotFound:
            raise NotFound(
                f"blob {sha256} is missing from {self.location}", sha256=sha256
            ) from None

    def delete(self, sha256: str) -> None:
        self._delete_key(self.key_of(sha256))

    def iter_blobs(self) -> Iterator[BlobStat]:
        for item in self._list(self._blobs):
            name = item["Key"][len(self._blobs) :]
            if len(name) == 64 and all(c in "0123456789abcdef" for c in name):
                yield BlobStat(name, int(item["Size"]), item["LastModified"].timestamp())

    def _list(self, prefix: str) -> Iterator[Any]:
        paginator = self.client.get_paginator("list_objects_v2")
        with self._translated(f"list {self.location}", prefix):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                yield from page.get("Contents", ())

    def cleanup_partial(self, older_than: float) -> int:
        """Abort multipart uploads and delete temporary objects older than ``older_than``."""
        removed = 0
        paginator = self.client.get_paginator("list_multipart_uploads")
        with self._translated(f"list unfinished uploads in {self.location}"):
            stale = [
                (upload["Key"], upload["UploadId"])
                for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix)
                for upload in page.get("Uploads", ())
                if upload["Initiated"].timestamp() < older_than
            ]
        for key, upload_id in stale:
            with self._translated("abort a stale upload", key):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            removed += 1
        for item in list(self._list(self._partial)):
            if item["LastModified"].timestamp() < older_than:
                self._delete_key(item["Key"])
                removed += 1
        return removed

    def check(self) -> None:
        """Raise StorageError unless the bucket answers and accepts writes."""
        probe = f"{self._partial}.ready-{uuid.uuid4().hex}"
        with self._translated(f"write to {self.location}", probe):
            self.client.put_object(Bucket=self.bucket, Key=probe, Body=b"")
            self.client.delete_object(Bucket=self.bucket, Key=probe)

    # ------------------------------------------------------ presigned transfers

    def presign_get(self, sha256: str, expires: int) -> str:
        """A URL that downloads a blob without credentials for ``expires`` seconds."""
        key = self.key_of(sha256)
        with self._translated(f"sign a download of {sha256}", key):
            return self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires
            )

    def presign_put(self, size: int, expires: int) -> tuple[str, str]:
        """(upload id, URL) for one PUT of ``size`` bytes to a temporary key; the bytes
        become a blob only through :meth:`finish_upload`. One PUT takes at most 5 GiB."""
        if size < 0 or size > COPY_LIMIT:
            raise InvalidArgument(f"a direct upload takes 0 to {COPY_LIMIT} bytes, not {size}")
        upload_id = uuid.uuid4().hex
        key = self._partial + upload_id
        with self._translated("sign an upload", key):
            url = self.client.generate_presigned_url(
                "put_object",
                Params={"Bucket": self.bucket, "Key": key, "ContentLength": size},
                ExpiresIn=expires,
            )
        return upload_id, url

    def finish_upload(self, upload_id: str, sha256: str, size: int) -> Digest:
        """Verify a presigned upload and move it under its digest; IntegrityError (and the
        upload deleted) if it does not hash to ``sha256`` with ``size`` bytes."""
        validate_digest(sha256)
        if not _UPLOAD_ID.match(upload_id):
            raise InvalidArgument(f"invalid upload id {upload_id!r}")
        temp = self._partial + upload_id
        try:
            reader = ObjectReader(self.client, self.bucket, temp, f"read upload {upload_id}")
        except NotFound:
            raise NotFound(
                f"upload {upload_id} was not received (or expired and was cleaned up)",
                upload_id=upload_id,
            ) from None
        try:
            with reader:
                try:
                    # Stops early on a body larger than declared: not every S3-compatible
                    # server enforces the Content-Length the URL was signed for.
                    digest = copy_and_hash(reader, None, max_size=size + 1)
                except TooLarge:
                    raise _size_mismatch(f"more than {size}", size) from None
                etag = reader.etag
            _check(digest, sha256, size)
            self._move_into_place(temp, self.key_of(sha256), size, etag)
        finally:
            self._delete_key(temp)
        return digest


def _size_mismatch(actual: int | str, expected: int | None) -> IntegrityError:
    return IntegrityError(
        f"upload has {actual} bytes, expected {expected}", expected=expected, actual=actual
    )


def _check(digest: Digest, sha256: str | None, size: int | None) -> None:
    if size is not None and digest.size != size:
        raise _size_mismatch(digest.size, size)
    if sha256 is not None and digest.sha256 != sha256:
        raise IntegrityError(
            f"upload has digest {digest.sha256}, expected {sha256}",
            expected=sha256,
            actual=digest.sha256,
        )
