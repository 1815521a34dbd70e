"""blob heads: the size and first MiB of stored blobs, so new files can stream while hashed

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 05:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blob_heads",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("head", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_blob_heads")),
    )
    with op.batch_alter_table("blob_heads", schema=None) as batch_op:
        batch_op.create_index("ix_blob_heads_size_head", ["size", "head"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("blob_heads", schema=None) as batch_op:
        batch_op.drop_index("ix_blob_heads_size_head")
    op.drop_table("blob_heads")
