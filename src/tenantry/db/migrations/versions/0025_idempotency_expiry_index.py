"""Idempotency records are removed once past their 24 hours: an index on when each was made

Revision ID: 0025_idempotency_expiry_index
Revises: 0024_idempotency_carried_out
Create Date: 2026-12-05 20:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0025_idempotency_expiry_index"
down_revision: str | None = "0024_idempotency_carried_out"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.create_index("ix_idempotency_records_created_at", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.drop_index("ix_idempotency_records_created_at")
