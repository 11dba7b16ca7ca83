"""The samples table: labelled examples sent with POST /digit/feedback.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "samples",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("label", sa.Integer(), nullable=False),
        sa.Column("predicted", sa.Integer(), nullable=True),
        sa.Column("model_version", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("reviewed_at", TIMESTAMP, nullable=True),
        sa.Column("image_png", sa.LargeBinary(), nullable=False),
        sa.Column("original", sa.LargeBinary(), nullable=False),
        sa.Column("original_type", sa.String(64), nullable=False),
    )
    op.create_index("ix_samples_label", "samples", ["label"])
    op.create_index("ix_samples_status", "samples", ["status"])
    op.create_index("ix_samples_created_at", "samples", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_samples_created_at", table_name="samples")
    op.drop_index("ix_samples_status", table_name="samples")
    op.drop_index("ix_samples_label", table_name="samples")
    op.drop_table("samples")
