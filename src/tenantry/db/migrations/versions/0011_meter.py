"""The meter: its timezone in force (a new one applies from the next month), and the Redis run
each day's counter was started in

Revision ID: 0011_meter
Revises: 0008_mail_outbox
Create Date: 2026-12-01 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tenantry.db.models

revision: str = "0011_meter"
down_revision: str | None = "0008_mail_outbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Adding nullable columns: SQLite does it in place (no table copy), like PostgreSQL.
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_timezone", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("timezone_from", tenantry.db.models.UTCDateTime(timezone=True), nullable=True)
        )
    # The run of Redis a day's counter was started in, to tell a counter Redis lost from a new one.
    with op.batch_alter_table("api_call_counters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("epoch", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_call_counters", schema=None) as batch_op:
        batch_op.drop_column("epoch")
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.drop_column("timezone_from")
        batch_op.drop_column("previous_timezone")
