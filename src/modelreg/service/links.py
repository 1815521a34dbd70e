"""Presigned links: clients move blob bytes straight to and from the bucket.

These three functions are the only place where the server hands out direct access to
blob bytes. A permission check belongs around them: reading a version's files for
``download_link``, registering for ``upload_link`` and ``finish_upload``.

Downloads stay verified because the client hashes what it reads against the manifest.
Uploads stay verified because a presigned upload lands under a temporary key, and only
``finish_upload``, after re-reading and hashing it on the server, makes it a blob.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelreg.artifacts.base import ArtifactStore, DirectTransfers
from modelreg.artifacts.hashing import Digest
from modelreg.domain.manifest import validate_digest
from modelreg.errors import InvalidArgument, NotFound

# One presigned PUT carries at most this much (S3's limit for a single PUT); larger
# uploads go through the server, which sends them to the bucket in parts.
DIRECT_UPLOAD_LIMIT = 5 * 1024**3


@dataclass(frozen=True, slots=True)
class Link:
    """A presigned URL, how long it stays valid, and (uploads) the id to finish with."""

    url: str
    expires_in: int
    upload_id: str | None = None

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"direct": True, "url": self.url, "expires_in": self.expires_in}
        if self.upload_id is not None:
            data["upload_id"] = self.upload_id
        return data


def download_link(
    blobs: ArtifactStore, sha256: str, *, enabled: bool, expires: float
) -> Link | None:
    """A presigned download of a stored blob, or None when the client must go through
    the server (a local store, or direct downloads turned off). NotFound if absent."""
    validate_digest(sha256)
    if not enabled or not isinstance(blobs, DirectTransfers):
        return None
    if blobs.stat(sha256) is None:
        raise NotFound(f"blob {sha256} is not stored", sha256=sha256)
    seconds = int(expires)
    return Link(blobs.presign_get(sha256, seconds), seconds)


def uploads_direct(blobs: ArtifactStore, *, enabled: bool) -> bool:
    """Whether ``upload_link`` hands out links (below its size limit) on this store."""
    return enabled and isinstance(blobs, DirectTransfers)


def upload_link(
    blobs: ArtifactStore, sha256: str, size: int, *, enabled: bool, expires: float
) -> Link | None:
    """A presigned upload of ``size`` bytes for the blob ``sha256``, or None when the
    client must upload through the server."""
    validate_digest(sha256)
    if size < 0:
        raise InvalidArgument(f"invalid size {size}")
    if not enabled or size > DIRECT_UPLOAD_LIMIT or not isinstance(blobs, DirectTransfers):
        return None
    seconds = int(expires)
    upload_id, url = blobs.presign_put(size, seconds)
    return Link(url, seconds, upload_id)


def finish_upload(blobs: ArtifactStore, upload_id: str, sha256: str, size: int) -> Digest:
    """Verify a presigned upload and make it the blob ``sha256`` (IntegrityError, and
    nothing stored, if its bytes differ)."""
    validate_digest(sha256)
    if not isinstance(blobs, DirectTransfers):
        raise InvalidArgument(f"the blob store {blobs.location} takes no direct uploads")
    return blobs.finish_upload(upload_id, sha256, size)
