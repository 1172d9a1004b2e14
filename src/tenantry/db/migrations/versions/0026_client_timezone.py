"""A client's own timezone for its dashboards' days (SPEC §13: the partner's unless set)

Revision ID: 0026_client_timezone
Revises: 0025_idempotency_expiry_index
Create Date: 2026-12-05 22:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026_client_timezone"
down_revision: str | None = "0025_idempotency_expiry_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("timezone")
