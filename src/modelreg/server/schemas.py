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
    override: bool = Field(
        default=False,
        description="Promote despite a failing gate; needs a reason, recorded with the move.",
    )


class GatesBody(_Body):
    gates: dict[str, Any] = Field(
        description="Stage -> {'require': [lineage fields], 'rules': ['auc >= 0.9', ...]}."
    )


class WebhookCreate(_Body):
    url: str = Field(description="http(s) URL that receives signed POSTs.")
    kinds: list[str] = Field(default_factory=list, description="Event kinds; empty: all.")
    model: str | None = Field(default=None, description="Only this model's events.")
    secret: str | None = Field(default=None, description="Signing secret; default: generated.")
    description: str = ""


class EnvironmentCreate(_Body):
    name: str = Field(description="e.g. prod-eu, shadow.")
    description: str = ""


class DeploymentCreate(_Body):
    ref: str = Field(description="The version deployed, e.g. fraud/7 or fraud@production.")
    environment: str
    status: str = Field(default="deployed", description="deploying, deployed, failed, removed.")
    note: str = ""


class BlobList(_Body):
    sha256: list[str] = Field(max_length=100_000, description="Hex SHA-256 digests.")


class FileHead(_Body):
    size: int = Field(ge=0, le=2**62, description="Size of the file in bytes.")
    head: str = Field(
        min_length=64,
        max_length=64,
        description="Hex SHA-256 of the file's first MiB (all of it when shorter).",
    )


class HeadList(_Body):
    files: list[FileHead] = Field(max_length=100_000, description="Files about to be uploaded.")


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


class PrincipalCreate(_Body):
    name: str = Field(description="User name (e-mail addresses allowed) or service account.")
    kind: str = Field("user", description="user or service.")
    description: str = ""


class PrincipalUpdate(_Body):
    disabled: bool = Field(description="true disables the principal and all its tokens.")


class GrantSet(_Body):
    role: str = Field(description="viewer, contributor, reviewer or admin.")
    model: str = Field("*", description="'*', a model name, or a prefix such as 'fraud-*'.")


class TokenCreate(_Body):
    principal: str | None = Field(None, description="Whose token (default: the caller).")
    name: str = Field("", description="What the token is for, e.g. 'ci-pipeline'.")
    expires_in: float | None = Field(
        None, gt=0, description="Lifetime in seconds (default: no expiry)."
    )


class StageRuleIn(_Body):
    role: str = Field("contributor", description="Least role to move in (or to approve).")
    approvals: int = Field(0, ge=0, le=10, description="Approvals needed; > 0 protects it.")


class PolicyBody(_Body):
    stages: dict[str, StageRuleIn]


class RequestCreate(_Body):
    ref: str = Field(description="Version reference, e.g. fraud/7 or fraud@staging.")
    stage: str = Field(description="Target stage, e.g. production.")
    reason: str = Field(description="Why the version should move (required).")


class Decision(_Body):
    comment: str = ""


class AuditVerify(_Body):
    anchor_seq: int | None = Field(None, ge=1, description="A record id noted earlier.")
    anchor_hash: str | None = Field(None, description="Its hash as noted then.")
