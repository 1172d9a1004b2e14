"""History kept when a client is deleted; ids never reused on SQLite

A deleted client leaves its status and allocation histories behind (their foreign keys to
`clients` go) and a row in `deleted_clients` with its name, so closed statements never change.

On SQLite every table with an integer id is rebuilt as AUTOINCREMENT, keeping its rows, and its
sequence starts above the highest id it has held that anything still names (the audit log and the
outbox remember clients that are gone), so no id is handed out twice. PostgreSQL identities never
hand out an id twice already.

Revision ID: 0006_history_and_ids
Revises: 0012_link_origins
Create Date: 2026-12-01 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tenantry.db.models

revision: str = "0006_history_and_ids"
down_revision: str | None = "0012_link_origins"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ids = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# A client's histories outlive it: their cascading foreign keys to `clients` go.
HISTORY_FOREIGN_KEYS = {
    "status_changes": "fk_status_changes_client_id_clients",
    "allocation_changes": "fk_allocation_changes_client_id_clients",
}

# Audit targets (`kind:id`) name rows that may be gone since; new ids start above those too.
AUDIT_TARGETS = {
    "client": "clients",
    "client_user": "client_users",
    "partner_user": "partner_users",
    "dashboard": "dashboards",
    "datasource": "data_sources",
    "published_link": "published_links",
    "api_key": "api_keys",
    "webhook": "webhooks",
    "invitation": "invitations",
}

# Other columns that name a client id without a foreign key (the client may be gone).
CLIENT_ID_COLUMNS = (
    ("audit_events", "client_id"),
    ("events", "client_id"),
    ("status_changes", "client_id"),
    ("allocation_changes", "client_id"),
)


def upgrade() -> None:
    op.create_table(
        "deleted_clients",
        sa.Column("id", _ids, autoincrement=False, nullable=False),
        sa.Column("partner_id", _ids, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("deleted_at", tenantry.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_deleted_clients_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deleted_clients")),
    )
    with op.batch_alter_table("deleted_clients", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deleted_clients_partner_deleted_at", ["partner_id", "deleted_at"], unique=False
        )

    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        for table, foreign_key in HISTORY_FOREIGN_KEYS.items():
            op.drop_constraint(foreign_key, table, type_="foreignkey")
        return
    _sqlite_autoincrement(bind)


def _sqlite_autoincrement(bind: sa.Connection) -> None:
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        # Rebuilding a table drops the old one: with foreign keys enforced, every row referring
        # to it would be deleted with it. The migration environment turns them off.
        raise RuntimeError("SQLite foreign keys must be off while tables are rebuilt")
    inspector = sa.inspect(bind)
    rebuilt = []
    for table in inspector.get_table_names():
        if table in ("alembic_version", "deleted_clients") or table.startswith("sqlite_"):
            continue
        if inspector.get_pk_constraint(table)["constrained_columns"] != ["id"]:
            continue
        id_type = next(c["type"] for c in inspector.get_columns(table) if c["name"] == "id")
        if not isinstance(id_type, sa.INTEGER):  # only an INTEGER PRIMARY KEY is the rowid
            continue
        rebuilt.append(table)
        created = bind.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).scalar()
        if "AUTOINCREMENT" in str(created).upper() and table not in HISTORY_FOREIGN_KEYS:
            continue
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ) as batch_op:
            if table in HISTORY_FOREIGN_KEYS:
                batch_op.drop_constraint(HISTORY_FOREIGN_KEYS[table], type_="foreignkey")
    for table in rebuilt:
        _start_above(bind, table, _highest_named(bind, table))


def _highest_named(bind: sa.Connection, table: str) -> int:
    """The highest id of `table` that its rows, or anything naming its rows, still hold."""
    found = [bind.exec_driver_sql(f'SELECT MAX(id) FROM "{table}"').scalar()]
    kinds = [kind for kind, named in AUDIT_TARGETS.items() if named == table]
    for kind in kinds:
        prefix = kind + ":"
        found.append(
            bind.exec_driver_sql(
                "SELECT MAX(CAST(substr(target, ?) AS INTEGER)) FROM audit_events"
                " WHERE substr(target, 1, ?) = ?",
                (len(prefix) + 1, len(prefix), prefix),
            ).scalar()
        )
    if table == "clients":
        for other, column in CLIENT_ID_COLUMNS:
            found.append(bind.exec_driver_sql(f'SELECT MAX("{column}") FROM "{other}"').scalar())
    return max((int(n) for n in found if n is not None), default=0)


def _start_above(bind: sa.Connection, table: str, highest: int) -> None:
    if highest <= 0:
        return
    bind.exec_driver_sql(
        "UPDATE sqlite_sequence SET seq = ? WHERE name = ? AND seq < ?", (highest, table, highest)
    )
    bind.exec_driver_sql(
        "INSERT INTO sqlite_sequence (name, seq) SELECT ?, ? WHERE NOT EXISTS"
        " (SELECT 1 FROM sqlite_sequence WHERE name = ?)",
        (table, highest, table),
    )


def downgrade() -> None:
    # The histories of deleted clients go, as they used to with their clients. AUTOINCREMENT stays
    # on SQLite: it only keeps ids from being handed out twice.
    for table in HISTORY_FOREIGN_KEYS:
        op.execute(f"DELETE FROM {table} WHERE client_id NOT IN (SELECT id FROM clients)")
    for table, foreign_key in HISTORY_FOREIGN_KEYS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_foreign_key(foreign_key, "clients", ["client_id"], ["id"], ondelete="CASCADE")
    with op.batch_alter_table("deleted_clients", schema=None) as batch_op:
        batch_op.drop_index("ix_deleted_clients_partner_deleted_at")
    op.drop_table("deleted_clients")
