"""Who set a data source's secrets, so a client may not aim the partner's credentials elsewhere (SPEC §14)

A partner often builds a source in a client's account with credentials that reach every client's
data, scoped to the client by a property. A client user who kept those credentials with "*****"
could change the path, query or SQL and read another client's data. Sources stored before are
marked as the partner's when they hold secrets (the safe side: a client retypes its own once).

Revision ID: 0031_source_secrets_set_by
Revises: 0030_schedule_emails_set_by
Create Date: 2026-12-06 08:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031_source_secrets_set_by"
down_revision: str | None = "0030_schedule_emails_set_by"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Rebuilt on SQLite (batch mode) to drop the column: the ids stay AUTOINCREMENT, so none is ever
# handed out twice.
_KEEP_IDS = {"sqlite_autoincrement": True}


def upgrade() -> None:
    # A nullable column is added in place on SQLite too: no rebuild of the table.
    op.add_column("data_sources", sa.Column("secrets_set_by", sa.String(length=16), nullable=True))
    op.execute("UPDATE data_sources SET secrets_set_by = 'partner' WHERE secrets IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("data_sources", schema=None, table_kwargs=_KEEP_IDS) as batch_op:
        batch_op.drop_column("secrets_set_by")
