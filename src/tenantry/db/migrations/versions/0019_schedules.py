"""Scheduled e-mail reports: schedules and their runs (one per schedule and slot)

Revision ID: 0019_schedules
Revises: 0018_domains
Create Date: 2026-12-02 00:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tenantry.db.base import UTCDateTime

revision: str = "0019_schedules"
down_revision: str | None = "0018_domains"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "report_schedules",
        sa.Column("id", _id, nullable=False),
        sa.Column("partner_id", _id, nullable=False),
        sa.Column("client_id", _id, nullable=True),
        sa.Column("dashboard_id", _id, nullable=False),
        sa.Column("frequency", sa.String(length=16), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=True),
        sa.Column("day_of_month", sa.Integer(), nullable=True),
        sa.Column("time", sa.String(length=5), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("recipient_user_ids", sa.JSON(), nullable=False),
        sa.Column("recipient_emails", sa.JSON(), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_run_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "frequency in ('daily', 'weekly', 'monthly')", name=op.f("ck_report_schedules_frequency")
        ),
        sa.CheckConstraint("format in ('pdf', 'png')", name=op.f("ck_report_schedules_format")),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_report_schedules_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["dashboard_id"],
            ["dashboards.id"],
            name=op.f("fk_report_schedules_dashboard_id_dashboards"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_report_schedules_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_schedules")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("report_schedules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_report_schedules_dashboard_id"), ["dashboard_id"], unique=False)
        batch_op.create_index("ix_report_schedules_next_run_at", ["next_run_at"], unique=False)
        batch_op.create_index("ix_report_schedules_partner_id_id", ["partner_id", "id"], unique=False)

    op.create_table(
        "report_runs",
        sa.Column("id", _id, nullable=False),
        sa.Column("schedule_id", _id, nullable=False),
        sa.Column("partner_id", _id, nullable=False),
        sa.Column("slot", UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("watermark", sa.Boolean(), nullable=False),
        sa.Column("mail_id", _id, nullable=True),
        sa.Column("finished_at", UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status in ('sent', 'skipped', 'failed')", name=op.f("ck_report_runs_status")),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_report_runs_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["report_schedules.id"],
            name=op.f("fk_report_runs_schedule_id_report_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_runs")),
        sa.UniqueConstraint("schedule_id", "slot", name=op.f("uq_report_runs_schedule_id")),
        sqlite_autoincrement=True,
    )

    with op.batch_alter_table("report_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_report_runs_mail_id"), ["mail_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("report_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_runs_mail_id"))
    op.drop_table("report_runs")
    with op.batch_alter_table("report_schedules", schema=None) as batch_op:
        batch_op.drop_index("ix_report_schedules_partner_id_id")
        batch_op.drop_index("ix_report_schedules_next_run_at")
        batch_op.drop_index(batch_op.f("ix_report_schedules_dashboard_id"))
    op.drop_table("report_schedules")
