"""jobs.error_detail: the exception behind a failed job, shown to administrators only.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("error_detail", sa.Text(), nullable=True))


def downgrade() -> None:
    # SQLite cannot drop a column in place; batch mode copies the table.
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("error_detail")
