"""Indexes that give due jobs in the order they are claimed, each partner's and all of them: report
schedules, deliveries of events, outbox messages

Revision ID: 0022_claim_indexes
Revises: 0021_reset_mail_kind
Create Date: 2026-12-04 21:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022_claim_indexes"
down_revision: str | None = "0021_reset_mail_kind"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_report_schedules_partner_due", "report_schedules", ["partner_id", "next_run_at", "id"]
    )
    # Many schedules fall due at the same minute: a claim that looks past each partner's first
    # takes them by (due, id) from this index instead of sorting every due schedule.
    op.create_index("ix_report_schedules_due", "report_schedules", ["next_run_at", "id"])
    op.drop_index("ix_report_schedules_next_run_at", table_name="report_schedules")
    op.create_index(
        "ix_event_deliveries_partner_due",
        "event_deliveries",
        ["partner_id", "status", "next_attempt_at", "id"],
    )
    # The new index leads with the partner, so it also serves what the old one did.
    op.create_index(
        "ix_mail_outbox_partner_due", "mail_outbox", ["partner_id", "status", "next_attempt_at", "id"]
    )
    op.drop_index("ix_mail_outbox_partner_id", table_name="mail_outbox")


def downgrade() -> None:
    op.create_index("ix_mail_outbox_partner_id", "mail_outbox", ["partner_id"])
    op.drop_index("ix_mail_outbox_partner_due", table_name="mail_outbox")
    op.drop_index("ix_event_deliveries_partner_due", table_name="event_deliveries")
    op.drop_index("ix_report_schedules_partner_due", table_name="report_schedules")
    op.create_index("ix_report_schedules_next_run_at", "report_schedules", ["next_run_at"])
    op.drop_index("ix_report_schedules_due", table_name="report_schedules")
