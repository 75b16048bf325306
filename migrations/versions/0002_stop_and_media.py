"""contacts.stopped_at (opt-out) and messages.kind (text or media)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=8), server_default="text", nullable=False))
        batch_op.create_index("ix_messages_channel_provider_ref", ["channel", "provider_ref"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_channel_provider_ref")
        batch_op.drop_column("kind")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("stopped_at")
