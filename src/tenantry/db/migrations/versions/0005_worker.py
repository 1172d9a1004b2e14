"""Worker: leases, webhooks, event deliveries, trial notices

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-26 03:06:34.607798
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tenantry.db.models

revision: str = "0005"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("partner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", tenantry.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name=op.f("fk_webhooks_partner_id_partners"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.create_index("ix_webhooks_partner_id_id", ["partner_id", "id"], unique=False)

    op.create_table(
        "event_deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("partner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("webhook_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", tenantry.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", tenantry.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", tenantry.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", tenantry.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", tenantry.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("channel in ('webhook', 'email')", name=op.f("ck_event_deliveries_channel")),
        sa.CheckConstraint(
            "status in ('pending', 'delivered', 'failed', 'logged')", name=op.f("ck_event_deliveries_status")
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_event_deliveries_event_id_events"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_event_deliveries_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name=op.f("fk_event_deliveries_webhook_id_webhooks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_deliveries")),
    )
    with op.batch_alter_table("event_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_event_deliveries_event_id", ["event_id"], unique=False)
        batch_op.create_index("ix_event_deliveries_status_next", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index("ix_event_deliveries_webhook_id", ["webhook_id", "id"], unique=False)

    op.create_table(
        "trial_notices",
        sa.Column("client_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("trial_ends_at", tenantry.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", tenantry.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind in ('will_end', 'ended')", name=op.f("ck_trial_notices_kind")),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_trial_notices_client_id_clients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("client_id", "kind", "trial_ends_at", name=op.f("pk_trial_notices")),
    )
    with op.batch_alter_table("data_sources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_owner", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("lease_expires_at", tenantry.db.models.UTCDateTime(timezone=True), nullable=True)
        )

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("dispatched_at", tenantry.db.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index("ix_events_dispatched_at", ["dispatched_at"], unique=False)

    # Events written before the worker existed are history: do not mail or post them now.
    op.execute("UPDATE events SET dispatched_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_dispatched_at")
        batch_op.drop_column("dispatched_at")

    with op.batch_alter_table("data_sources", schema=None) as batch_op:
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("lease_owner")

    op.drop_table("trial_notices")
    with op.batch_alter_table("event_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_event_deliveries_webhook_id")
        batch_op.drop_index("ix_event_deliveries_status_next")
        batch_op.drop_index("ix_event_deliveries_event_id")

    op.drop_table("event_deliveries")
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_index("ix_webhooks_partner_id_id")

    op.drop_table("webhooks")
