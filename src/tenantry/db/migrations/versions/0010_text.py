"""Data-source pages: a snapshot read a page at a time; stored text made safe

Revision ID: 0010_text
Revises: 0009_sign_in_throttle
Create Date: 2026-12-01 15:30:00.000000

Listing a data source's rows reads only the pages it shows. Existing snapshots are split into
pages here; their text is scrubbed on the way (control characters other than tab and line
breaks, noncharacters and lone surrogates become U+FFFD, as new data is on ingest), and the
snapshot itself is rewritten when scrubbing changed it.

Names and titles stored before one-line fields refused control characters are made one line
(a line break in a dashboard's name would otherwise still reach an e-mail's subject), and client
descriptions lose the control characters a description now refuses. E-mail addresses and
external ids are left as they are: they are unique, and rewriting them could make two equal.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tenantry.datasources.pages import split_into_pages
from tenantry.text import as_lines, as_one_line, scrub_rows

revision: str = "0010_text"
down_revision: str | None = "0009_sign_in_throttle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ids = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# table -> (column, how it is made safe)
_TEXTS = {
    "partners": [("name", as_one_line)],
    "partner_users": [("name", as_one_line)],
    "clients": [("name", as_one_line), ("description", as_lines)],
    "client_users": [("name", as_one_line)],
    "api_keys": [("name", as_one_line)],
    "data_sources": [("name", as_one_line)],
    "dashboards": [("name", as_one_line)],
    "klips": [("title", as_one_line)],
    "published_links": [("name", as_one_line)],
}


def upgrade() -> None:
    op.create_table(
        "data_source_pages",
        sa.Column("data_source_id", _ids, nullable=False),
        sa.Column("first_row", sa.Integer(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["data_source_id"],
            ["data_sources.id"],
            name=op.f("fk_data_source_pages_data_source_id_data_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("data_source_id", "first_row", name=op.f("pk_data_source_pages")),
    )
    _page_existing_snapshots()
    _make_stored_names_safe()


def _make_stored_names_safe() -> None:
    conn = op.get_bind()
    for table_name, columns in _TEXTS.items():
        for column, safe in columns:
            table = sa.table(table_name, sa.column("id", _ids), sa.column(column, sa.Text()))
            changed = [
                {"row_id": row_id, "value": safe(value)}
                for row_id, value in conn.execute(sa.select(table.c.id, table.c[column]))
                if isinstance(value, str) and safe(value) != value
            ]
            if changed:
                conn.execute(
                    sa.update(table)
                    .where(table.c.id == sa.bindparam("row_id"))
                    .values({column: sa.bindparam("value")}),
                    changed,
                )


def _page_existing_snapshots() -> None:
    conn = op.get_bind()
    sources = sa.table("data_sources", sa.column("id", _ids), sa.column("rows", sa.JSON()))
    pages = sa.table(
        "data_source_pages",
        sa.column("data_source_id", _ids),
        sa.column("first_row", sa.Integer()),
        sa.column("row_count", sa.Integer()),
        sa.column("rows", sa.Text()),
    )
    # One snapshot in memory at a time.
    for (source_id,) in conn.execute(sa.select(sources.c.id).order_by(sources.c.id)).all():
        stored = conn.execute(sa.select(sources.c.rows).where(sources.c.id == source_id)).scalar_one()
        rows = stored if isinstance(stored, list) else []
        safe = scrub_rows(row for row in rows if isinstance(row, dict))
        if safe != rows:
            conn.execute(sa.update(sources).where(sources.c.id == source_id).values(rows=safe))
        batch = [
            {"data_source_id": source_id, "first_row": first, "row_count": count, "rows": text}
            for first, count, text in split_into_pages(safe)
        ]
        if batch:
            conn.execute(sa.insert(pages), batch)


def downgrade() -> None:
    op.drop_table("data_source_pages")
