"""The migrations build the schema the models describe, on each engine."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from tenantry.db.migrate import alembic_config, upgrade
from tenantry.db.models import Base
from tests.db.migrating import ENGINES, fresh_database


def differences(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))
    finally:
        engine.dispose()


def indexes(url: str, table: str) -> set[str]:
    engine = create_engine(url)
    try:
        return {index["name"] for index in inspect(engine).get_indexes(table)}
    finally:
        engine.dispose()


@pytest.mark.parametrize("engine", ENGINES)
def test_the_migrations_build_every_table_column_and_index_the_models_describe(engine, tmp_path):
    with fresh_database(engine, tmp_path) as url:
        upgrade(url)
        assert differences(url) == []


@pytest.mark.parametrize("engine", ENGINES)
def test_the_claim_indexes_come_and_go_with_their_migration(engine, tmp_path):
    with fresh_database(engine, tmp_path) as url:
        upgrade(url)
        command.downgrade(alembic_config(url), "0021_reset_mail_kind")
        assert (
            indexes(url, "report_schedules") & {"ix_report_schedules_partner_due", "ix_report_schedules_due"}
            == set()
        )
        assert "ix_report_schedules_next_run_at" in indexes(url, "report_schedules")
        assert "ix_event_deliveries_partner_due" not in indexes(url, "event_deliveries")
        assert indexes(url, "mail_outbox") >= {"ix_mail_outbox_partner_id"}
        assert "ix_mail_outbox_partner_due" not in indexes(url, "mail_outbox")
        upgrade(url)
        assert differences(url) == []


def storage(url: str, table: str, column: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            query = (
                "SELECT attstorage FROM pg_attribute"
                " WHERE attrelid = CAST(:table AS regclass) AND attname = :column"
            )
            return str(conn.execute(text(query), {"table": table, "column": column}).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.skipif("postgresql" not in ENGINES, reason="needs TENANTRY_TEST_DATABASE_URL (PostgreSQL)")
def test_postgresql_keeps_pdf_and_png_bytes_without_compressing_them_again(tmp_path):
    with fresh_database("postgresql", tmp_path) as url:
        upgrade(url)
        # 'e': external, out of line and uncompressed; 'x', the default, tries to compress first.
        assert storage(url, "mail_outbox", "attachment") == "e"
        assert storage(url, "brand_logos", "data") == "e"
        assert storage(url, "mail_outbox", "html") == "x"
        command.downgrade(alembic_config(url), "0022_claim_indexes")
        assert storage(url, "mail_outbox", "attachment") == "x"
        assert storage(url, "brand_logos", "data") == "x"
