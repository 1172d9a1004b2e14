"""A client's earlier names, so a statement names a client as it was named when its month ended

Revision ID: 0029_client_renames
Revises: 0028_external_ids_composed
Create Date: 2026-12-06 04:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tenantry.db.base import UTCDateTime

revision: str = "0029_client_renames"
down_revision: str | None = "0028_external_ids_composed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ids = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "client_renames",
        sa.Column("id", _ids, nullable=False),
        sa.Column("partner_id", _ids, nullable=False),
        sa.Column("client_id", _ids, nullable=False),
        sa.Column("old_name", sa.String(length=200), nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_client_renames_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_renames")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("client_renames", schema=None) as batch_op:
        batch_op.create_index("ix_client_renames_partner_at", ["partner_id", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("client_renames", schema=None) as batch_op:
        batch_op.drop_index("ix_client_renames_partner_at")
    op.drop_table("client_renames")
