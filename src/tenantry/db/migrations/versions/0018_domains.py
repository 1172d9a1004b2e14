"""Partners' own domains: host names that serve one partner once the operator verified them

Revision ID: 0018_domains
Revises: 0017_branding
Create Date: 2026-12-02 00:25:26.419476
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tenantry.db.base import UTCDateTime

revision: str = "0018_domains"
down_revision: str | None = "0017_branding"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "partner_domains",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("partner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("hostname", sa.String(length=253), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("verified_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_partner_domains_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_domains")),
        sa.UniqueConstraint("hostname", name=op.f("uq_partner_domains_hostname")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("partner_domains", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_partner_domains_partner_id"), ["partner_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("partner_domains", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_partner_domains_partner_id"))
    op.drop_table("partner_domains")
