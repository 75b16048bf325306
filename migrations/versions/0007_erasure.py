"""erasure at the person's request: when a contact was erased (the stub left until the last
message to her has gone is purged a few minutes later); discreet mode; associations' own data
keys (crypto-shredding); on SQLite, ids never reused

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


AUTOINCREMENT = ("conversations", "messages", "handoffs")


def upgrade() -> None:
    op.create_table(
        "association_keys",
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("association", sa.String(48), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=True),
        sa.Column("wrap_key_id", sa.String(16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("destroyed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id"),
    )
    op.create_index("ix_association_keys_association", "association_keys", ["association"])
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("discreet", sa.Boolean(), nullable=False, server_default=sa.false()))
    if op.get_bind().dialect.name == "sqlite":
        # SQLite reuses the highest ids once their rows are deleted (an erasure deletes the newest
        # messages): a web chat polling "after id N" could then miss an answer. AUTOINCREMENT
        # never reuses one. PostgreSQL sequences never do.
        for table in AUTOINCREMENT:
            with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": True}):
                pass


def downgrade() -> None:  # AUTOINCREMENT stays on SQLite: harmless
    op.drop_index("ix_association_keys_association", table_name="association_keys")
    op.drop_table("association_keys")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("discreet")
        batch.drop_column("erased_at")
