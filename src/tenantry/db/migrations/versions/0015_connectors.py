"""Connectors: `sql` data sources, a url source's request settings (`config`) and its sealed
secrets (`secrets`), and client properties for placeholders

Revision ID: 0015_connectors
Revises: 0014_klips_second_edition
Create Date: 2026-12-01 22:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_connectors"
down_revision: str | None = "0014_klips_second_edition"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ids = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Rebuilt on SQLite (batch mode): the ids stay AUTOINCREMENT, so none is ever handed out twice.
_KEEP_IDS = {"sqlite_autoincrement": True}


def upgrade() -> None:
    with op.batch_alter_table("data_sources", schema=None, table_kwargs=_KEEP_IDS) as batch_op:
        batch_op.add_column(sa.Column("config", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("secrets", sa.Text(), nullable=True))
        batch_op.drop_constraint(op.f("ck_data_sources_kind"), type_="check")
        batch_op.create_check_constraint("kind", "kind in ('url', 'inline', 'sql')")
    op.create_table(
        "client_properties",
        sa.Column("client_id", _ids, nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_client_properties_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("client_id", "key", name=op.f("pk_client_properties")),
    )


def downgrade() -> None:
    op.drop_table("client_properties")
    # The first kinds know no sql source, and no request settings or secrets: sql sources and the
    # klips showing them go (klips first, their foreign key has no cascade).
    bind = op.get_bind()
    bind.execute(
        sa.text("DELETE FROM klips WHERE datasource_id IN (SELECT id FROM data_sources WHERE kind = 'sql')")
    )
    bind.execute(sa.text("DELETE FROM data_sources WHERE kind = 'sql'"))
    with op.batch_alter_table("data_sources", schema=None, table_kwargs=_KEEP_IDS) as batch_op:
        batch_op.drop_constraint(op.f("ck_data_sources_kind"), type_="check")
        batch_op.create_check_constraint("kind", "kind in ('url', 'inline')")
        batch_op.drop_column("secrets")
        batch_op.drop_column("config")
