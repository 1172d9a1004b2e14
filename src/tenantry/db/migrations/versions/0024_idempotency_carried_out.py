"""An idempotency record says when its request's work committed (`carried_out_at`), so a retry
after a crash between that commit and the recorded answer is not carried out twice

Revision ID: 0024_idempotency_carried_out
Revises: 0023_binary_storage
Create Date: 2026-12-05 14:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tenantry.db.models

revision: str = "0024_idempotency_carried_out"
down_revision: str | None = "0023_binary_storage"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("carried_out_at", tenantry.db.models.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.drop_column("carried_out_at")
