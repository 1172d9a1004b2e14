"""Statements: the status and allocation histories indexed by client, time and id (on PostgreSQL
with what a statement reads of a row), replacing the (client, time) indexes

Revision ID: 0013_statement_index
Revises: 0011_meter
Create Date: 2026-12-01 19:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013_statement_index"
down_revision: str | None = "0011_meter"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A statement reads each client's last change before the month: one index-only probe each.
    with op.batch_alter_table("status_changes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_status_changes_client_at_id",
            ["client_id", "at", "id"],
            unique=False,
            postgresql_include=["partner_id", "to_status"],
        )
        batch_op.drop_index("ix_status_changes_client_at")
    with op.batch_alter_table("allocation_changes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_allocation_changes_client_at_id",
            ["client_id", "at", "id"],
            unique=False,
            postgresql_include=["partner_id", "dashboards", "users"],
        )
        batch_op.drop_index("ix_allocation_changes_client_at")


def downgrade() -> None:
    with op.batch_alter_table("allocation_changes", schema=None) as batch_op:
        batch_op.create_index("ix_allocation_changes_client_at", ["client_id", "at"], unique=False)
        batch_op.drop_index("ix_allocation_changes_client_at_id")
    with op.batch_alter_table("status_changes", schema=None) as batch_op:
        batch_op.create_index("ix_status_changes_client_at", ["client_id", "at"], unique=False)
        batch_op.drop_index("ix_status_changes_client_at_id")
