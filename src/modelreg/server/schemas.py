"""Request bodies as Pydantic models: they shape the OpenAPI document and reject wrong
types early. Values are checked again, with the registry's own messages, by the service."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelCreate(_Body):
    name: str = Field(description="Model name, e.g. 'fraud'.")
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)


class ModelUpdate(_Body):
    description: str | None = None


class Tags(_Body):
    tags: dict[str, str]


class AliasSet(_Body):
    version: int = Field(ge=1, le=2**62)


class FileIn(_Body):
    path: str = Field(description="Relative POSIX path inside the version.")
    size: int = Field(ge=0, le=2**62)
    sha256: str = Field(description="Hex SHA-256 of the file (64 characters).")
    source: str | None = Field(
        default=None,
        description="For an external file, which is not uploaded: where it stays "
        "(s3://bucket/key or https://…).",
    )


class VersionCreate(_Body):
    files: list[FileIn] = Field(
        description="The manifest. Every blob must be uploaded (PUT /api/v1/blobs/{sha256}) "
        "before the version is created."
    )
    # Checked by the service, which names the offending key in its message.
    metrics: dict[str, Any] = Field(default_factory=dict, description="Finite numbers.")
    params: dict[str, Any] = Field(
        default_factory=dict, description="Strings, numbers, booleans or null."
    )
    lineage: dict[str, Any] = Field(
        default_factory=dict,
        description="run_id, run_uri, code_repo, code_commit, dataset, dataset_version, "
        "dataset_digest, framework (strings) and parents (list of references).",
    )
    tags: dict[str, str] = Field(default_factory=dict)
    description: str = ""


class VersionUpdate(_Body):
    description: str | None = None


class Transition(_Body):
    stage: str
    reason: str = ""


class BlobList(_Body):
    sha256: list[str] = Field(max_length=100_000, description="Hex SHA-256 digests.")


class UploadLinkRequest(_Body):
    size: int = Field(ge=0, le=2**62, description="Size of the blob in bytes.")


class FinishUpload(_Body):
    upload_id: str = Field(description="The id the upload link came with.")
    size: int = Field(ge=0, le=2**62, description="Size of the blob in bytes.")


class GcRequest(_Body):
    grace: str | float = Field(default="24h", description="e.g. 30s, 15m, 24h, 7d or seconds.")
    dry_run: bool = False


class LifecycleBody(_Body):
    stages: list[str]
    initial: str | None = None
    transitions: dict[str, list[str]] = Field(default_factory=dict)
    exclusive: dict[str, str] = Field(
        default_factory=dict,
        description="Exclusive stage -> the stage its previous holder moves to.",
    )
