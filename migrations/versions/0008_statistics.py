"""anonymous statistics: counts by ISO week, figure and dimension values (no id, no text)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stat_counts",
        sa.Column("week", sa.String(8), nullable=False),
        sa.Column("figure", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("topic", sa.String(32), nullable=False),
        sa.Column("association", sa.String(48), nullable=False),
        sa.Column("departement", sa.String(3), nullable=False),
        sa.Column("value", sa.String(16), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "week",
            "figure",
            "channel",
            "language",
            "topic",
            "association",
            "departement",
            "value",
            name="pk_stat_counts",
        ),
    )


def downgrade() -> None:
    op.drop_table("stat_counts")
