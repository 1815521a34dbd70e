"""Who may move blob bytes, and the registry-wide storage operations (verify, gc)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa

from modelreg.artifacts.hashing import Progress
from modelreg.auth.principal import Principal
from modelreg.auth.roles import Permission
from modelreg.domain.entities import GcReport, VerifyReport
from modelreg.domain.manifest import validate_digest
from modelreg.errors import PermissionDenied
from modelreg.service import heads, transfer
from modelreg.service.authz import read_scope, require
from modelreg.service.common import ServiceBase
from modelreg.store import tables as t

_F = t.version_files.c


class BlobAccessService(ServiceBase):
    """Blob permissions: blobs belong to no model, so access follows the versions that
    reference them."""

    def authorize_blob_read(self, actor: Principal, sha256: str) -> None:
        """PermissionDenied unless a version of a model ``actor`` may read references the
        blob. The answer is the same whether the blob exists or not, so digests cannot be
        probed."""
        validate_digest(sha256)
        scope = read_scope(actor, t.models.c.name)
        if scope is None:
            return
        query = (
            sa.select(_F.sha256)
            .join(t.versions, t.versions.c.id == _F.version_id)
            .join(t.models, t.models.c.id == t.versions.c.model_id)
            .where(_F.sha256 == sha256, scope)
            .limit(1)
        )
        with self.db.read() as conn:
            if conn.execute(query).first() is not None:
                return
        raise PermissionDenied(
            f"{actor.name} may not read blob {sha256}: that needs the read permission "
            "(viewer role or higher) on a model with a version that references it",
            principal=actor.name,
            permission=Permission.READ.value,
        )

    def authorize_upload(self, actor: Principal) -> None:
        """PermissionDenied unless ``actor`` may register versions of some model."""
        if actor.has_anywhere(Permission.WRITE):
            return
        raise PermissionDenied(
            f"{actor.name} may not upload blobs: that needs the write permission "
            "(contributor role or higher) on at least one model",
            principal=actor.name,
            permission=Permission.WRITE.value,
            required_role="contributor",
        )

    def remember_heads(self, sha256s: Iterable[str]) -> None:
        """Record the size and first MiB of stored blobs, for ``known_heads``."""
        heads.remember(self.db, self.blobs, sha256s)

    def known_heads(self, actor: Principal, files: Sequence[tuple[int, str]]) -> list[bool]:
        """For each (size, head digest) of a file about to be uploaded: whether a stored
        blob may be that file. An uploader's question, like which digests are missing."""
        self.authorize_upload(actor)
        for _size, head in files:
            validate_digest(head)
        return heads.known(self.db, files)

    def verify(self, actor: Principal, *, progress: Progress | None = None) -> VerifyReport:
        """Re-hash every blob and report missing or corrupt ones (admin)."""
        require(actor, Permission.ADMIN, None, "verify the blob store")
        return transfer.verify(self.db, self.blobs, progress)

    def gc(self, actor: Principal, grace: float, *, dry_run: bool = False) -> GcReport:
        """Delete unreferenced blobs older than ``grace`` seconds (admin)."""
        require(actor, Permission.ADMIN, None, "collect garbage in the blob store")
        return transfer.gc(self.db, self.blobs, grace, dry_run=dry_run)
