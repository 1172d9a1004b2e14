"""Mail outbox: e-mails written by requests, sent by the worker after commit

Revision ID: 0008_mail_outbox
Revises: 0010_text
Create Date: 2026-12-01 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tenantry.db.models

revision: str = "0008_mail_outbox"
down_revision: str | None = "0010_text"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("partner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("sent_by", sa.String(length=64), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("recipient_count", sa.Integer(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("attachment", sa.LargeBinary(), nullable=True),
        sa.Column("attachment_name", sa.String(length=200), nullable=True),
        sa.Column("attachment_type", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", tenantry.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", tenantry.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", tenantry.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", tenantry.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", tenantry.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind in ('dashboard', 'invitation')", name=op.f("ck_mail_outbox_kind")),
        sa.CheckConstraint(
            "status in ('pending', 'delivered', 'failed', 'logged')", name=op.f("ck_mail_outbox_status")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_mail_outbox_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_outbox")),
        # Ids are never reused (see 0006_history_and_ids).
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_mail_outbox_partner_id", ["partner_id"], unique=False)
        batch_op.create_index("ix_mail_outbox_sent_by", ["sent_by", "kind", "created_at"], unique=False)
        batch_op.create_index("ix_mail_outbox_status_next", ["status", "next_attempt_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_mail_outbox_status_next")
        batch_op.drop_index("ix_mail_outbox_sent_by")
        batch_op.drop_index("ix_mail_outbox_partner_id")

    op.drop_table("mail_outbox")
