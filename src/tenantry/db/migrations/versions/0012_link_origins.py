"""Published links: the sites allowed to frame them

Revision ID: 0012_link_origins
Revises: 0005
Create Date: 2026-12-01 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_link_origins"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("published_links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("allowed_origins", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("published_links", schema=None) as batch_op:
        batch_op.drop_column("allowed_origins")
