"""associations: the directory of approved associations

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "associations",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("slug", sa.String(48), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_associations"),
        sa.UniqueConstraint("slug", name="uq_associations_slug"),
    )


def downgrade() -> None:
    op.drop_table("associations")
