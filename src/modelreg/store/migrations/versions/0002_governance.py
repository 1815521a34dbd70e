"""governance: principals, grants, tokens, policies, transition requests, audit chain

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 20:40:00
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

from modelreg.domain.audit import GENESIS, record_hash

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.create_table(
        "principals",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("disabled_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_principals")),
        sa.UniqueConstraint("name", name=op.f("uq_principals_name")),
    )
    op.create_table(
        "grants",
        sa.Column("principal_id", _ID, nullable=False),
        sa.Column("pattern", sa.String(length=129), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_grants_principal_id_principals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("principal_id", "pattern", name=op.f("pk_grants")),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("principal_id", _ID, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("expires_at", _TS, nullable=True),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.Column("revoked_by", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_tokens_principal_id_principals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tokens")),
    )
    op.create_index("ix_tokens_principal_id", "tokens", ["principal_id"], unique=False)
    op.create_table(
        "policies",
        sa.Column("scope", sa.String(length=128), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_policies")),
    )
    op.create_table(
        "transition_requests",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("version_id", _ID, nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("from_stage", sa.String(length=32), nullable=False),
        sa.Column("to_stage", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("approvals_required", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("requested_at", _TS, nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("decided_at", _TS, nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["versions.id"],
            name=op.f("fk_transition_requests_version_id_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transition_requests")),
    )
    op.create_index(
        "ix_transition_requests_status", "transition_requests", ["status", "id"], unique=False
    )
    op.create_index(
        "ix_transition_requests_model_name",
        "transition_requests",
        ["model_name", "id"],
        unique=False,
    )
    op.create_table(
        "request_approvals",
        sa.Column("request_id", _ID, nullable=False),
        sa.Column("approver", sa.String(length=128), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["transition_requests.id"],
            name=op.f("fk_request_approvals_request_id_transition_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("request_id", "approver", name=op.f("pk_request_approvals")),
    )
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    _chain_existing_events()
    with op.batch_alter_table("events") as batch:
        batch.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch.create_index("ix_events_actor_id", ["actor", "id"], unique=False)


def _chain_existing_events() -> None:
    """Renumber the timeline densely (PostgreSQL sequences leave gaps on rollback) and
    hash-chain it, so the records written before this revision are covered too."""
    conn = op.get_bind()
    events = sa.table(
        "events",
        *(
            sa.column(c)
            for c in (
                "id",
                "at",
                "actor",
                "kind",
                "model_name",
                "version",
                "from_stage",
                "to_stage",
                "reason",
                "details",
                "hash",
            )
        ),
    )
    previous, seq = GENESIS, 0
    rows = conn.execute(sa.select(events).order_by(events.c.id)).all()
    for row in rows:
        seq += 1
        at = row.at if isinstance(row.at, datetime) else datetime.fromisoformat(str(row.at))
        if at.tzinfo is None:
            at = at.replace(tzinfo=timezone.utc)
        previous = record_hash(
            previous,
            id=seq,
            at=at,
            actor=row.actor,
            kind=row.kind,
            model_name=row.model_name,
            version=row.version,
            from_stage=row.from_stage,
            to_stage=row.to_stage,
            reason=row.reason,
            details=row.details,
        )
        # Ascending order and new <= old ids: an update never collides with a later row.
        conn.execute(sa.update(events).where(events.c.id == row.id).values(id=seq, hash=previous))
    conn.execute(
        sa.insert(sa.table("audit_head", sa.column("id"), sa.column("seq"), sa.column("hash"))),
        {"id": 1, "seq": seq, "hash": previous},
    )


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_index("ix_events_actor_id")
        batch.drop_column("hash")
    op.drop_table("request_approvals")
    op.drop_index("ix_transition_requests_model_name", table_name="transition_requests")
    op.drop_index("ix_transition_requests_status", table_name="transition_requests")
    op.drop_table("transition_requests")
    op.drop_table("policies")
    op.drop_index("ix_tokens_principal_id", table_name="tokens")
    op.drop_table("tokens")
    op.drop_table("grants")
    op.drop_table("principals")
    op.drop_table("audit_head")
