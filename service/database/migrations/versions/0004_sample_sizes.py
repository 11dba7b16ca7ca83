"""samples.size_bytes: the bytes of a sample's two images, summed for the store's quota.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "samples", sa.Column("size_bytes", sa.Integer(), nullable=False, server_default="0")
    )
    op.execute("UPDATE samples SET size_bytes = length(image_png) + length(original)")


def downgrade() -> None:
    # SQLite cannot drop a column in place; batch mode copies the table.
    with op.batch_alter_table("samples") as batch:
        batch.drop_column("size_bytes")
