"""Blob storage by content hash, behind one protocol with one implementation per backend."""

from modelreg.artifacts.base import ArtifactStore, BlobStat
from modelreg.artifacts.local import LocalArtifactStore

__all__ = ["ArtifactStore", "BlobStat", "LocalArtifactStore"]
