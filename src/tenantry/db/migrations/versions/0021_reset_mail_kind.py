"""Password-reset e-mails are an outbox kind of their own (`password_reset`), no longer queued as
invitations

Revision ID: 0021_reset_mail_kind
Revises: 0020_accounts
Create Date: 2026-12-04 12:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_reset_mail_kind"
down_revision: str | None = "0020_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Rebuilt on SQLite (batch mode): the ids stay AUTOINCREMENT, so none is ever handed out twice.
_KEEP_IDS = {"sqlite_autoincrement": True}


def upgrade() -> None:
    # The resets queued before stay `invitation`: nothing in a settled row tells them apart.
    with op.batch_alter_table("mail_outbox", schema=None, table_kwargs=_KEEP_IDS) as batch_op:
        batch_op.drop_constraint(op.f("ck_mail_outbox_kind"), type_="check")
        batch_op.create_check_constraint("kind", "kind in ('dashboard', 'invitation', 'password_reset')")


def downgrade() -> None:
    # The first kinds know no reset of its own: resets become the one-time-link kind they were.
    op.get_bind().execute(sa.text("UPDATE mail_outbox SET kind = 'invitation' WHERE kind = 'password_reset'"))
    with op.batch_alter_table("mail_outbox", schema=None, table_kwargs=_KEEP_IDS) as batch_op:
        batch_op.drop_constraint(op.f("ck_mail_outbox_kind"), type_="check")
        batch_op.create_check_constraint("kind", "kind in ('dashboard', 'invitation')")
