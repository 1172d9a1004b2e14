"""Klips, second edition: a size on the dashboard's grid, a whole definition (columns, series,
query, format, comparison, text...) instead of a column mapping, text klips without a data
source, the new kinds; dashboard filters; the client user role `editor`

Revision ID: 0014_klips_second_edition
Revises: 0013_statement_index
Create Date: 2026-12-01 21:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_klips_second_edition"
down_revision: str | None = "0013_statement_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ids = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_NEW_KINDS = "kind in ('value', 'bar', 'line', 'area', 'pie', 'donut', 'table', 'gauge', 'text')"
_OLD_KINDS = "kind in ('value', 'table', 'bar', 'line', 'pie')"

# Rebuilt on SQLite (batch mode): the ids stay AUTOINCREMENT, so none is ever handed out twice.
_KEEP_IDS = {"sqlite_autoincrement": True}


def upgrade() -> None:
    with op.batch_alter_table("klips", schema=None, table_kwargs=_KEEP_IDS) as batch_op:
        batch_op.add_column(sa.Column("size_w", sa.Integer(), nullable=False, server_default="6"))
        batch_op.add_column(sa.Column("size_h", sa.Integer(), nullable=False, server_default="2"))
        batch_op.add_column(sa.Column("definition", sa.JSON(), nullable=True))
    # A first-edition klip's whole definition is its column mapping.
    klips = sa.table(
        "klips", sa.column("id", _ids), sa.column("columns", sa.JSON()), sa.column("definition", sa.JSON())
    )
    bind = op.get_bind()
    for klip_id, columns in bind.execute(sa.select(klips.c.id, klips.c.columns)).all():
        definition = {"columns": columns} if columns else {}
        bind.execute(sa.update(klips).where(klips.c.id == klip_id).values(definition=definition))
    with op.batch_alter_table("klips", schema=None, table_kwargs=_KEEP_IDS) as batch_op:
        batch_op.alter_column("definition", existing_type=sa.JSON(), nullable=False)
        batch_op.alter_column("datasource_id", existing_type=_ids, nullable=True)
        batch_op.drop_column("columns")
        batch_op.drop_constraint(op.f("ck_klips_kind"), type_="check")
        batch_op.create_check_constraint("kind", _NEW_KINDS)
        batch_op.create_check_constraint("size_w", "size_w BETWEEN 1 AND 12")
        batch_op.create_check_constraint("size_h", "size_h BETWEEN 1 AND 6")
    # Defaults in the database too: rows written by plain SQL get the first edition's layout.
    with op.batch_alter_table("dashboards", schema=None, table_kwargs=_KEEP_IDS) as batch_op:
        batch_op.add_column(sa.Column("filters", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("client_users", schema=None, table_kwargs=_KEEP_IDS) as batch_op:
        batch_op.drop_constraint(op.f("ck_client_users_role"), type_="check")
        batch_op.create_check_constraint("role", "role in ('admin', 'editor', 'member')")


def downgrade() -> None:
    bind = op.get_bind()
    # The first edition knows neither editors, text klips nor the new kinds: editors become
    # members (they keep seeing what is shared with them); the klips it cannot draw are removed.
    bind.execute(sa.text("UPDATE client_users SET role = 'member' WHERE role = 'editor'"))
    bind.execute(sa.text(f"DELETE FROM klips WHERE NOT ({_OLD_KINDS}) OR datasource_id IS NULL"))
    with op.batch_alter_table("client_users", schema=None, table_kwargs=_KEEP_IDS) as batch_op:
        batch_op.drop_constraint(op.f("ck_client_users_role"), type_="check")
        batch_op.create_check_constraint("role", "role in ('admin', 'member')")
    with op.batch_alter_table("dashboards", schema=None, table_kwargs=_KEEP_IDS) as batch_op:
        batch_op.drop_column("filters")
    with op.batch_alter_table("klips", schema=None, table_kwargs=_KEEP_IDS) as batch_op:
        batch_op.add_column(sa.Column("columns", sa.JSON(), nullable=True))
    klips = sa.table(
        "klips", sa.column("id", _ids), sa.column("columns", sa.JSON()), sa.column("definition", sa.JSON())
    )
    for klip_id, definition in bind.execute(sa.select(klips.c.id, klips.c.definition)).all():
        columns = (definition or {}).get("columns", {})
        bind.execute(sa.update(klips).where(klips.c.id == klip_id).values(columns=columns))
    with op.batch_alter_table("klips", schema=None, table_kwargs=_KEEP_IDS) as batch_op:
        batch_op.alter_column("columns", existing_type=sa.JSON(), nullable=False)
        batch_op.alter_column("datasource_id", existing_type=_ids, nullable=False)
        batch_op.drop_constraint(op.f("ck_klips_size_h"), type_="check")
        batch_op.drop_constraint(op.f("ck_klips_size_w"), type_="check")
        batch_op.drop_constraint(op.f("ck_klips_kind"), type_="check")
        batch_op.create_check_constraint("kind", _OLD_KINDS)
        batch_op.drop_column("definition")
        batch_op.drop_column("size_h")
        batch_op.drop_column("size_w")
