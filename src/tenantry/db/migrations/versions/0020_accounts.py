"""Accounts: password resets, TOTP factors and recovery codes, partner account rules

Revision ID: 0020_accounts
Revises: 0019_schedules
Create Date: 2026-12-02 00:25:00.620527
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tenantry.db.base import UTCDateTime

revision: str = "0020_accounts"
down_revision: str | None = "0019_schedules"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "partner_account_rules",
        sa.Column("partner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("require_mfa", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_partner_account_rules_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("partner_id", name=op.f("pk_partner_account_rules")),
    )
    op.create_table(
        "password_resets",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("partner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("partner_user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("client_user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(partner_user_id IS NULL) <> (client_user_id IS NULL)", name=op.f("ck_password_resets_one_user")
        ),
        sa.ForeignKeyConstraint(
            ["client_user_id"],
            ["client_users.id"],
            name=op.f("fk_password_resets_client_user_id_client_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_password_resets_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["partner_user_id"],
            ["partner_users.id"],
            name=op.f("fk_password_resets_partner_user_id_partner_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_resets")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_resets_token_hash")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("password_resets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_password_resets_client_user_id"), ["client_user_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_password_resets_partner_id"), ["partner_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_password_resets_partner_user_id"), ["partner_user_id"], unique=False
        )

    op.create_table(
        "totp_factors",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("partner_user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("client_user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("secret_sealed", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_step", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "(partner_user_id IS NULL) <> (client_user_id IS NULL)", name=op.f("ck_totp_factors_one_user")
        ),
        sa.ForeignKeyConstraint(
            ["client_user_id"],
            ["client_users.id"],
            name=op.f("fk_totp_factors_client_user_id_client_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["partner_user_id"],
            ["partner_users.id"],
            name=op.f("fk_totp_factors_partner_user_id_partner_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_totp_factors")),
        sa.UniqueConstraint("client_user_id", name=op.f("uq_totp_factors_client_user_id")),
        sa.UniqueConstraint("partner_user_id", name=op.f("uq_totp_factors_partner_user_id")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("factor_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("used_at", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["factor_id"],
            ["totp_factors.id"],
            name=op.f("fk_recovery_codes_factor_id_totp_factors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("recovery_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recovery_codes_factor_id"), ["factor_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("recovery_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recovery_codes_factor_id"))

    op.drop_table("recovery_codes")
    op.drop_table("totp_factors")
    with op.batch_alter_table("password_resets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_password_resets_partner_user_id"))
        batch_op.drop_index(batch_op.f("ix_password_resets_partner_id"))
        batch_op.drop_index(batch_op.f("ix_password_resets_client_user_id"))

    op.drop_table("password_resets")
    op.drop_table("partner_account_rules")
