"""Branding: a partner's brand, clients' logos, the logo images, and the HTML part and sender
name of queued e-mails

Revision ID: 0017_branding
Revises: 0016_templates
Create Date: 2026-12-02 00:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tenantry.db.base import UTCDateTime

revision: str = "0017_branding"
down_revision: str | None = "0016_templates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "brandings",
        sa.Column("id", ID, nullable=False),
        sa.Column("partner_id", ID, nullable=False),
        sa.Column("product_name", sa.String(length=100), nullable=False),
        sa.Column("primary_color", sa.String(length=7), nullable=False),
        sa.Column("accent_color", sa.String(length=7), nullable=True),
        sa.Column("email_from_name", sa.String(length=100), nullable=True),
        sa.Column("support_email", sa.String(length=254), nullable=True),
        sa.Column("footer_text", sa.String(length=500), nullable=True),
        sa.Column("logo_sha256", sa.String(length=64), nullable=True),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_brandings_partner_id_partners"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_brandings")),
        sa.UniqueConstraint("partner_id", name=op.f("uq_brandings_partner_id")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "client_logos",
        sa.Column("id", ID, nullable=False),
        sa.Column("partner_id", ID, nullable=False),
        sa.Column("client_id", ID, nullable=False),
        sa.Column("logo_sha256", sa.String(length=64), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_client_logos_client_id_clients"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_client_logos_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_logos")),
        sa.UniqueConstraint("client_id", name=op.f("uq_client_logos_client_id")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("client_logos", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_client_logos_partner_id"), ["partner_id"], unique=False)

    op.create_table(
        "brand_logos",
        sa.Column("id", ID, nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_brand_logos")),
        sa.UniqueConstraint("sha256", name=op.f("uq_brand_logos_sha256")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("html", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("from_name", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.drop_column("from_name")
        batch_op.drop_column("html")

    op.drop_table("brand_logos")
    with op.batch_alter_table("client_logos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_client_logos_partner_id"))

    op.drop_table("client_logos")
    op.drop_table("brandings")
