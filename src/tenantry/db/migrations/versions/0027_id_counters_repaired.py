"""SQLite: the AUTOINCREMENT counters that table rebuilds of earlier migrations dropped, set again
above every id still named anywhere (SPEC §12: ids are never reused)

Migrations 0009, 0010, 0014, 0015, 0017 and 0021 rebuilt some tables (SQLite alters a table by
copying it), and a rebuild sets the table's counter to its highest id still present: the ids of
rows deleted before the upgrade could be handed out again. Migrations now keep the counters
(`env.py`); this sets them, for databases already upgraded, above the highest id their rows, the
audit log and the histories still name, as 0006 did.

Revision ID: 0027_id_counters_repaired
Revises: 0026_client_timezone
Create Date: 2026-12-05 23:00:00.000000
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0027_id_counters_repaired"
down_revision: str | None = "0026_client_timezone"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return  # PostgreSQL's sequences never go back
    ids = _migration("0006_history_and_ids.py")
    tables = [
        name
        for name, sql in bind.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
        if "AUTOINCREMENT" in str(sql).upper()
    ]
    for table in tables:
        ids._start_above(bind, table, ids._highest_named(bind, table))


def _migration(name: str) -> ModuleType:
    """Another migration's module, read from its file beside this one (as alembic reads them)."""
    spec = importlib.util.spec_from_file_location(
        f"_tenantry_migration_{name[:4]}", Path(__file__).with_name(name)
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def downgrade() -> None:
    pass  # the counters only ever go up
