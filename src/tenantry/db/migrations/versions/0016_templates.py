"""Templates: a partner's data sources and dashboards kept as a template, and each client's
deployed copy of one (its instance)

Revision ID: 0016_templates
Revises: 0015_connectors
Create Date: 2026-12-01 22:46:26.291917
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tenantry.db.base import UTCDateTime

revision: str = "0016_templates"
down_revision: str | None = "0015_connectors"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "templates",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("partner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_templates_partner_id_partners"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_templates")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_templates_partner_id"), ["partner_id"], unique=False)

    op.create_table(
        "template_instances",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("template_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("client_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("detached", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_template_instances_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["templates.id"],
            name=op.f("fk_template_instances_template_id_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_template_instances")),
        sa.UniqueConstraint("template_id", "client_id", name=op.f("uq_template_instances_template_id")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("template_instances", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_template_instances_client_id"), ["client_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("template_instances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_template_instances_client_id"))

    op.drop_table("template_instances")
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_templates_partner_id"))

    op.drop_table("templates")
