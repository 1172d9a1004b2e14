"""Who set a schedule's e-mail addresses, whose role and daily e-mails they answer to (SPEC §17, §12)

A schedule's addresses outside the account counted against its creator, even when another user
had set them since. Schedules made before keep their creator as the one who set them.

Revision ID: 0030_schedule_emails_set_by
Revises: 0029_client_renames
Create Date: 2026-12-06 08:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030_schedule_emails_set_by"
down_revision: str | None = "0029_client_renames"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Rebuilt on SQLite (batch mode): the ids stay AUTOINCREMENT, so none is ever handed out twice.
_KEEP_IDS = {"sqlite_autoincrement": True}


def upgrade() -> None:
    with op.batch_alter_table("report_schedules", schema=None, table_kwargs=_KEEP_IDS) as batch_op:
        batch_op.add_column(sa.Column("emails_set_by", sa.String(length=64), nullable=True))
    op.execute("UPDATE report_schedules SET emails_set_by = created_by")
    with op.batch_alter_table("report_schedules", schema=None, table_kwargs=_KEEP_IDS) as batch_op:
        batch_op.alter_column("emails_set_by", existing_type=sa.String(length=64), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("report_schedules", schema=None, table_kwargs=_KEEP_IDS) as batch_op:
        batch_op.drop_column("emails_set_by")
