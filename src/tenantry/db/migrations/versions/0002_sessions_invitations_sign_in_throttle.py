"""Web sessions, invitations and the sign-in throttle.

Revision ID: 0002
Revises: 0004
Create Date: 2026-11-26 02:28:56.631604
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tenantry.db.models

revision: str = "0002"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_failures",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("scope", sa.String(length=300), nullable=False),
        sa.Column("at", tenantry.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_failures")),
    )
    with op.batch_alter_table("sign_in_failures", schema=None) as batch_op:
        batch_op.create_index("ix_sign_in_failures_scope_at", ["scope", "at"], unique=False)

    op.create_table(
        "invitations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("partner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("partner_user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("client_user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", tenantry.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", tenantry.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", tenantry.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(partner_user_id IS NULL) <> (client_user_id IS NULL)", name=op.f("ck_invitations_one_user")
        ),
        sa.ForeignKeyConstraint(
            ["client_user_id"],
            ["client_users.id"],
            name=op.f("fk_invitations_client_user_id_client_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_invitations_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["partner_user_id"],
            ["partner_users.id"],
            name=op.f("fk_invitations_partner_user_id_partner_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_invitations_token_hash")),
    )
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invitations_client_user_id"), ["client_user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_invitations_partner_id"), ["partner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_invitations_partner_user_id"), ["partner_user_id"], unique=False)

    op.create_table(
        "web_sessions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("partner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("partner_user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("client_user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("acting_client_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("acting_mode", sa.String(length=16), nullable=True),
        sa.Column("created_at", tenantry.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", tenantry.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "acting_mode IS NULL OR acting_mode in ('admin', 'view_only')",
            name=op.f("ck_web_sessions_acting_mode"),
        ),
        sa.CheckConstraint(
            "(partner_user_id IS NULL) <> (client_user_id IS NULL)", name=op.f("ck_web_sessions_one_user")
        ),
        sa.ForeignKeyConstraint(
            ["acting_client_id"],
            ["clients.id"],
            name=op.f("fk_web_sessions_acting_client_id_clients"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["client_user_id"],
            ["client_users.id"],
            name=op.f("fk_web_sessions_client_user_id_client_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_web_sessions_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["partner_user_id"],
            ["partner_users.id"],
            name=op.f("fk_web_sessions_partner_user_id_partner_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sessions_token_hash")),
    )
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_web_sessions_client_user_id"), ["client_user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_web_sessions_partner_id"), ["partner_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_web_sessions_partner_user_id"), ["partner_user_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_sessions_partner_user_id"))
        batch_op.drop_index(batch_op.f("ix_web_sessions_partner_id"))
        batch_op.drop_index(batch_op.f("ix_web_sessions_client_user_id"))

    op.drop_table("web_sessions")
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invitations_partner_user_id"))
        batch_op.drop_index(batch_op.f("ix_invitations_partner_id"))
        batch_op.drop_index(batch_op.f("ix_invitations_client_user_id"))

    op.drop_table("invitations")
    with op.batch_alter_table("sign_in_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_sign_in_failures_scope_at")

    op.drop_table("sign_in_failures")
