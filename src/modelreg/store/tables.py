"""The metadata schema (SQLAlchemy Core). Migrations in ``migrations/`` must match it."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are stored in UTC and always come back timezone-aware.

    SQLite has no timezone type and returns naive values; this makes both backends agree.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the metadata store")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        # SQLite hands back the stored text. Parsing it in one C call, straight to an
        # aware value, instead of SQLAlchemy's regular expression and then a replace,
        # makes a page of 100 models noticeably cheaper to load.
        if dialect.name == "sqlite":
            return _sqlite_utc
        return super().result_processor(dialect, coltype)


def _sqlite_utc(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        # Stored values are naive UTC text; naming the offset in the text is several
        # times cheaper than datetime.replace(tzinfo=...) afterwards.
        return datetime.fromisoformat(value + "+00:00")
    except ValueError:  # text written with an offset of its own
        parsed = datetime.fromisoformat(value)
        return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite only autoincrements INTEGER keys
Timestamp = UTCDateTime()

settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

models = Table(
    "models",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", Timestamp, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    # The numbering counter: read and bumped under the model row's lock, never max()+1,
    # so numbers stay dense under concurrency and a deleted version's number is not reused.
    Column("next_version", Integer, nullable=False, default=1),
)

model_tags = Table(
    "model_tags",
    metadata,
    Column("model_id", Id, ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

versions = Table(
    "versions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("model_id", Id, ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("stage", String(32), nullable=False),
    # Equals ``stage`` while the stage is exclusive, else NULL: the unique index below then
    # enforces "one holder per exclusive stage" in the database for any lifecycle.
    Column("exclusive_stage", String(32), nullable=True),
    Column("manifest_digest", String(71), nullable=False),
    Column("total_size", BigInteger, nullable=False),
    Column("file_count", Integer, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("run_id", String(2000)),
    Column("run_uri", String(2000)),
    Column("code_repo", String(2000)),
    Column("code_commit", String(2000)),
    Column("dataset", String(2000)),
    Column("dataset_version", String(2000)),
    Column("dataset_digest", String(2000)),
    Column("framework", String(2000)),
    Column("created_at", Timestamp, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("stage_changed_at", Timestamp, nullable=False),
    UniqueConstraint("model_id", "version"),
    UniqueConstraint("model_id", "exclusive_stage"),
    Index("ix_versions_model_stage", "model_id", "stage", "version"),
    Index("ix_versions_stage", "stage"),
    Index("ix_versions_run_id", "run_id"),
)

version_files = Table(
    "version_files",
    metadata,
    Column("version_id", Id, ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    # Set for an external file, which stays at this URI instead of being a blob.
    Column("source", String(2000), nullable=True),
    Index("ix_version_files_sha256", "sha256"),
)

# The first MiB of each stored blob of a MiB or more, by its SHA-256, with the blob's
# size. A client asks whether any blob has a new file's size and first MiB before it
# hashes the whole file: if none does, the file cannot be stored yet, so it streams it
# while hashing instead of hashing it first. Only a hint: a missing row costs a resend.
blob_heads = Table(
    "blob_heads",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("head", String(64), nullable=False),
    Index("ix_blob_heads_size_head", "size", "head"),
)

version_metrics = Table(
    "version_metrics",
    metadata,
    Column("version_id", Id, ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Float, nullable=False),
    # (key, value) answers "metrics.auc >= 0.9" with a range scan instead of a table scan
    Index("ix_version_metrics_key_value", "key", "value", "version_id"),
)

version_params = Table(
    "version_params",
    metadata,
    Column("version_id", Id, ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=True),  # text form used by string comparisons
    Column("value_num", Float, nullable=True),  # numeric form, set when the value is a number
    Column("value_json", Text, nullable=False),  # exact value for reading back
    Index("ix_version_params_key_num", "key", "value_num"),
)

version_tags = Table(
    "version_tags",
    metadata,
    Column("version_id", Id, ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

version_parents = Table(
    "version_parents",
    metadata,
    Column("version_id", Id, ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    # The reference is kept as text so lineage survives deletion of the parent version.
    Column("parent_ref", String(200), nullable=False),
    Column("parent_id", Id, ForeignKey("versions.id", ondelete="SET NULL"), nullable=True),
)

aliases = Table(
    "aliases",
    metadata,
    Column("model_id", Id, ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version_id", Id, ForeignKey("versions.id", ondelete="CASCADE"), nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("updated_by", String(128), nullable=False),
)

# The timeline: one row per change, written in the same transaction as the change.
# Rows are kept when a model is deleted (model_name is denormalised for that reason).
events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", Timestamp, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("model_name", String(128), nullable=False),
    Column("version", Integer, nullable=True),
    Column("from_stage", String(32), nullable=True),
    Column("to_stage", String(32), nullable=True),
    Column("reason", Text, nullable=True),
    Column("details", Text, nullable=False, default="{}"),
    # SHA-256 over the previous row's hash and this row's content: the audit chain. Ids are
    # dense and assigned under the chain head's lock, so they follow commit order.
    Column("hash", String(64), nullable=False),
    Index("ix_events_model_id", "model_name", "id"),
    Index("ix_events_actor_id", "actor", "id"),
)

# The audit chain's head: one row holding the last event's id and hash. Every change locks
# it, which gives the chain one writer order across processes and server replicas.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

principals = Table(
    "principals",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", Timestamp, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("disabled_at", Timestamp, nullable=True),
)

# One role per principal and model pattern ("*", "fraud", "fraud-*"); patterns are names,
# not foreign keys, so a team's grant covers models created later.
grants = Table(
    "grants",
    metadata,
    Column("principal_id", Id, ForeignKey("principals.id", ondelete="CASCADE"), primary_key=True),
    Column("pattern", String(129), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("created_by", String(128), nullable=False),
)

# API tokens: the public id is looked up, the secret is kept only as its SHA-256.
tokens = Table(
    "tokens",
    metadata,
    Column("id", String(24), primary_key=True),
    Column("principal_id", Id, ForeignKey("principals.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(128), nullable=False, default=""),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("expires_at", Timestamp, nullable=True),
    Column("revoked_at", Timestamp, nullable=True),
    Column("revoked_by", String(128), nullable=True),
    Index("ix_tokens_principal_id", "principal_id"),
)

# Lifecycle policies: scope "*" is the registry's, any other scope a model name.
policies = Table(
    "policies",
    metadata,
    Column("scope", String(128), primary_key=True),
    Column("body", Text, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("updated_by", String(128), nullable=False),
)

transition_requests = Table(
    "transition_requests",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("version_id", Id, ForeignKey("versions.id", ondelete="CASCADE"), nullable=False),
    Column("model_name", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("from_stage", String(32), nullable=False),
    Column("to_stage", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("approvals_required", Integer, nullable=False),
    Column("requested_by", String(128), nullable=False),
    Column("requested_at", Timestamp, nullable=False),
    Column("decided_by", String(128), nullable=True),
    Column("decided_at", Timestamp, nullable=True),
    Column("comment", Text, nullable=True),
    Index("ix_transition_requests_status", "status", "id"),
    Index("ix_transition_requests_model_name", "model_name", "id"),
)

request_approvals = Table(
    "request_approvals",
    metadata,
    Column(
        "request_id",
        Id,
        ForeignKey("transition_requests.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("approver", String(128), primary_key=True),
    Column("at", Timestamp, nullable=False),
    Column("comment", Text, nullable=False, default=""),
)

# Promotion gates, one row per revision: the current policy of a scope is its highest
# revision. ``scope`` is a model name, or "" for the registry-wide policy.
gate_policies = Table(
    "gate_policies",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("scope", String(128), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("policy", Text, nullable=False),  # canonical JSON
    Column("created_at", Timestamp, nullable=False),
    Column("created_by", String(128), nullable=False),
    UniqueConstraint("scope", "revision"),
)

environments = Table(
    "environments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", Timestamp, nullable=False),
    Column("created_by", String(128), nullable=False),
)

# Append-only log of deployments; "what runs where" is the newest row per
# (environment, model). Model name and version are kept as values so the log outlives
# deleted versions, like the events table.
deployments = Table(
    "deployments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("environment_id", Id, ForeignKey("environments.id", ondelete="CASCADE"), nullable=False),
    Column("model_name", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("manifest_digest", String(71), nullable=False),
    Column("status", String(16), nullable=False),
    Column("note", Text, nullable=False, default=""),
    Column("deployed_at", Timestamp, nullable=False),
    Column("deployed_by", String(128), nullable=False),
    Index("ix_deployments_environment_model", "environment_id", "model_name", "id"),
    Index("ix_deployments_model", "model_name", "id"),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("url", String(2000), nullable=False),
    # Kept readable because every delivery is signed with it.
    Column("secret", String(200), nullable=False),
    Column("kinds", Text, nullable=False, default="[]"),  # JSON list; empty: every kind
    Column("model_name", String(128), nullable=True),  # NULL: every model
    Column("description", Text, nullable=False, default=""),
    # The id of the last event fanned out into deliveries: the events table is the outbox,
    # and this cursor is how far this webhook has read it.
    Column("cursor", BigInteger, nullable=False, default=0),
    Column("created_at", Timestamp, nullable=False),
    Column("created_by", String(128), nullable=False),
)

# One row per (webhook, event): the delivery state that survives restarts, and the log.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("webhook_id", Id, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", BigInteger, nullable=True),  # NULL for a test delivery
    Column("kind", String(32), nullable=False),
    Column("payload", Text, nullable=False),  # the exact body, the same on every attempt
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Timestamp, nullable=False),
    Column("last_attempt_at", Timestamp, nullable=True),
    Column("response_status", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("delivered_at", Timestamp, nullable=True),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
)
