"""external references: version files that stay at a URI instead of being blobs

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 20:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("version_files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=2000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("version_files", schema=None) as batch_op:
        batch_op.drop_column("source")
