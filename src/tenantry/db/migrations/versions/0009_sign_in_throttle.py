"""Password attempts and lockouts for the sign-in and published-link throttles

The sign-in failures and the published links' own failure counters give way to one pair of
tables, in which an attempt is counted before its password is checked (see auth.throttle). Counts
in progress are not carried over: they are at most fifteen minutes old.

Revision ID: 0009_sign_in_throttle
Revises: 0006_history_and_ids
Create Date: 2026-12-01 14:51:48.709901
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tenantry.db.models

revision: str = "0009_sign_in_throttle"
down_revision: str | None = "0006_history_and_ids"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "password_attempts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("at", tenantry.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_attempts")),
    )
    with op.batch_alter_table("password_attempts", schema=None) as batch_op:
        batch_op.create_index("ix_password_attempts_at", ["at"], unique=False)
        batch_op.create_index("ix_password_attempts_scope_at", ["scope", "at"], unique=False)

    op.create_table(
        "password_lockouts",
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("locked_until", tenantry.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_password_lockouts")),
    )
    with op.batch_alter_table("password_lockouts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_password_lockouts_locked_until"), ["locked_until"], unique=False)

    with op.batch_alter_table("sign_in_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_sign_in_failures_scope_at")
    op.drop_table("sign_in_failures")

    # SQLite rebuilds the table: keep its ids never reused (AUTOINCREMENT).
    with op.batch_alter_table(
        "published_links", schema=None, table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.drop_column("locked_until")
        batch_op.drop_column("failed_attempts")


def downgrade() -> None:
    with op.batch_alter_table(
        "published_links", schema=None, table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.add_column(sa.Column("failed_attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("locked_until", tenantry.db.models.UTCDateTime(timezone=True), nullable=True)
        )

    op.create_table(
        "sign_in_failures",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("scope", sa.String(length=300), nullable=False),
        sa.Column("at", tenantry.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_failures")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("sign_in_failures", schema=None) as batch_op:
        batch_op.create_index("ix_sign_in_failures_scope_at", ["scope", "at"], unique=False)

    with op.batch_alter_table("password_lockouts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_password_lockouts_locked_until"))
    op.drop_table("password_lockouts")

    with op.batch_alter_table("password_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_password_attempts_scope_at")
        batch_op.drop_index("ix_password_attempts_at")
    op.drop_table("password_attempts")
