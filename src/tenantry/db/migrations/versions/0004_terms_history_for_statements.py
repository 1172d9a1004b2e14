"""terms history for statements

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-26 02:29:19.832468
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tenantry.db.models

revision: str = "0004"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "terms_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("partner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", tenantry.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("dashboard_price", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("user_price", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_terms_changes_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_terms_changes")),
    )
    with op.batch_alter_table("terms_changes", schema=None) as batch_op:
        batch_op.create_index("ix_terms_changes_partner_at", ["partner_id", "at"], unique=False)
    # Partners that exist already start their history with the terms they have now.
    op.execute(
        "INSERT INTO terms_changes (partner_id, at, timezone, currency, dashboard_price, user_price, actor)"
        " SELECT id, created_at, timezone, currency, dashboard_price, user_price, 'system' FROM partners"
    )


def downgrade() -> None:
    with op.batch_alter_table("terms_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_terms_changes_partner_at")
    op.drop_table("terms_changes")
