"""SPEC §12 "Limits" for inline rows (5 MB and 50,000 rows at most, 422 naming the limit), and the
rows listing reading only the pages it shows, never decoding the whole snapshot; snapshots stored
before pages existed are paged (and scrubbed) by the migration."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import select

from tenantry.app import create_app
from tenantry.db.dashboard_models import DataSource
from tenantry.db.migrate import upgrade
from tenantry.db.session import Database
from tenantry.settings import Settings
from tests.conftest import PG_URL, START, _psycopg
from tests.content import make_client
from tests.queries import statements_sent


def rows(n: int, note: str = "") -> list[dict[str, Any]]:
    return [{"n": i, "region": ("North", "South", "East")[i % 3], "note": note} for i in range(n)]


def create_inline(http, partner, client_id: int, body_rows: list[dict[str, Any]]):
    return http.post(
        f"/api/1/clients/{client_id}/datasources",
        json={"name": "Big", "kind": "inline", "rows": body_rows},
        headers=partner.headers,
    )


def listing(http, partner, source_id: int, offset: int, limit: int) -> dict[str, Any]:
    response = http.get(
        f"/api/1/datasources/{source_id}/rows?offset={offset}&limit={limit}", headers=partner.headers
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


class TestInlineLimits:
    def test_fifty_thousand_rows_are_accepted_and_one_more_is_a_422_naming_the_limit(self, http, partner):
        client_id = make_client(http, partner)
        assert create_inline(http, partner, client_id, rows(50_000)).status_code == 201
        refused = create_inline(http, partner, client_id, rows(50_001))
        assert refused.status_code == 422
        assert refused.json()["code"] == "validation_error"
        assert "50000" in refused.json()["detail"]
        assert (
            http.get(f"/api/1/clients/{client_id}/datasources", headers=partner.headers).json()["total"] == 1
        )

    def test_rows_over_five_megabytes_are_a_422_naming_the_limit_and_store_nothing(self, http, partner, db):
        client_id = make_client(http, partner)
        heavy = rows(600, note="x" * 9_000)  # about 5.4 MB as JSON, in few rows
        refused = create_inline(http, partner, client_id, heavy)
        assert refused.status_code == 422
        problem = refused.json()
        assert problem["code"] == "validation_error"
        assert problem["detail"].startswith("Inline rows are limited to 5 MB;")
        assert problem["limit_bytes"] == 5 * 1024 * 1024
        assert db.scalars(select(DataSource)).first() is None

    def test_replacing_rows_is_held_to_the_same_limit_and_keeps_the_old_ones(self, http, partner):
        client_id = make_client(http, partner)
        source_id = create_inline(http, partner, client_id, rows(3)).json()["id"]
        refused = http.patch(
            f"/api/1/datasources/{source_id}",
            json={"rows": rows(600, note="x" * 9_000)},
            headers=partner.headers,
        )
        assert refused.status_code == 422
        assert listing(http, partner, source_id, 0, 50)["items"] == rows(3)


class TestListingRows:
    def test_any_window_of_a_large_snapshot_is_exactly_those_rows(self, http, partner):
        client_id = make_client(http, partner)
        all_rows = rows(2_345)
        source_id = create_inline(http, partner, client_id, all_rows).json()["id"]
        for offset, limit in [
            (0, 50),
            (480, 40),
            (499, 2),
            (500, 200),
            (2_300, 200),
            (2_345, 10),
            (10**9, 5),
        ]:
            body = listing(http, partner, source_id, offset, limit)
            assert body["items"] == all_rows[offset : offset + limit], (offset, limit)
            assert body["total"] == 2_345

    def test_wide_rows_make_small_pages_so_a_listing_never_decodes_the_snapshot(self, http, partner, db):
        from tenantry.datasources import pages
        from tenantry.db.dashboard_models import DataSourcePage

        client_id = make_client(http, partner)
        wide = rows(400, note="y" * 10_000)  # 4 MB: fewer rows than a page holds, far more bytes
        source_id = create_inline(http, partner, client_id, wide).json()["id"]
        stored = db.scalars(select(DataSourcePage).where(DataSourcePage.data_source_id == source_id)).all()
        assert sum(p.row_count for p in stored) == 400
        assert max(len(p.rows) for p in stored) <= pages.PAGE_MAX_CHARS + 10_100
        assert listing(http, partner, source_id, 123, 3)["items"] == wide[123:126]

    def test_a_listing_never_reads_the_whole_snapshot(self, http, partner, database, monkeypatch):
        from tenantry.datasources import repository

        client_id = make_client(http, partner)
        source_id = create_inline(http, partner, client_id, rows(50_000)).json()["id"]
        decoded: list[int] = []
        real_rows_in = getattr(repository, "rows_in", None)

        def counting_rows_in(found: Any, offset: int, limit: int) -> Any:
            found = list(found)
            decoded.extend(len(text) for _, text in found)
            assert real_rows_in is not None
            return real_rows_in(found, offset, limit)

        monkeypatch.setattr(repository, "rows_in", counting_rows_in, raising=False)
        with statements_sent(database.engine) as statements:
            body = listing(http, partner, source_id, 25_000, 50)
        assert [row["n"] for row in body["items"]] == list(range(25_000, 25_050))
        assert body["total"] == 50_000
        # The snapshot column is never read; one page of at most 500 rows is decoded.
        assert not [s for s in statements if "data_sources.rows" in s]
        assert len(decoded) == 1 and decoded[0] <= 64 * 1024

    def test_a_refresh_replaces_every_page(self, http, partner):
        client_id = make_client(http, partner)
        source_id = create_inline(http, partner, client_id, rows(1_200)).json()["id"]
        http.patch(
            f"/api/1/datasources/{source_id}", json={"rows": rows(2, note="new")}, headers=partner.headers
        )
        body = listing(http, partner, source_id, 0, 200)
        assert body["items"] == rows(2, note="new") and body["total"] == 2
        assert listing(http, partner, source_id, 600, 50)["items"] == []

    def test_deleting_a_source_deletes_its_pages(self, http, partner, db):
        from tenantry.db.dashboard_models import DataSourcePage

        client_id = make_client(http, partner)
        source_id = create_inline(http, partner, client_id, rows(700)).json()["id"]
        assert http.delete(f"/api/1/datasources/{source_id}", headers=partner.headers).status_code == 204
        assert db.scalars(select(DataSourcePage)).first() is None


# Rows as a version before pages could store them: unscrubbed, including a lone surrogate.
LEGACY_ROWS = [{"label": f"row {i}\x00\ud800", "value": i} for i in range(1_100)]


def _filler(column: sa.Column[Any]) -> Any:
    """Some value for a NOT NULL column of a table as an older revision has it."""
    try:
        kind = column.type.python_type
    except NotImplementedError:
        kind = str
    if kind is datetime:
        return START
    if kind is bool:
        return False
    if kind in (int, float):
        return 0
    if kind in (dict, list):
        return []
    if kind.__name__ == "Decimal":
        return 0
    return "x"


def _insert(conn: sa.Connection, table: sa.Table, **given: Any) -> None:
    values = {
        c.name: _filler(c)
        for c in table.columns
        if not c.nullable and c.server_default is None and not c.primary_key
    }
    values.update(given)
    conn.execute(table.insert().values(**values))


@pytest.fixture
def empty_database_url(tmp_path) -> Iterator[str]:
    """A database of its own, migrated by the test (the session's database is already at head)."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    server = sa.make_url(_psycopg(PG_URL))
    name = f"tenantry_old_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_snapshots_and_names_stored_before_are_paged_and_made_safe_by_the_migration(
    empty_database_url, tmp_path
):
    from tenantry.auth.secrets import new_api_key
    from tenantry.clock import FakeClock
    from tenantry.db.models import ApiKey, PartnerUser

    upgrade(empty_database_url, "0005")
    engine = sa.create_engine(_psycopg(empty_database_url))
    old = sa.MetaData()
    old.reflect(engine)
    with engine.begin() as conn:
        unlimited = {f"plan_{r}": -1 for r in ("dashboards", "users", "published_links", "api_calls_per_day")}
        _insert(conn, old.tables["partners"], id=1, name="Old", timezone="UTC", currency="USD", **unlimited)
        _insert(
            conn,
            old.tables["data_sources"],
            id=7,
            partner_id=1,
            client_id=None,
            name="Old rows",
            kind="inline",
            rows=LEGACY_ROWS,
            row_count=len(LEGACY_ROWS),
            version="v1",
        )
        _insert(
            conn,
            old.tables["dashboards"],
            id=3,
            partner_id=1,
            client_id=None,
            name="Report\r\nBcc: x@evil.test",
        )
        _insert(
            conn,
            old.tables["clients"],
            id=4,
            partner_id=1,
            name="Acme\x1b[2J",
            description="a\r\nb\x07",
            status="setup",
        )
    engine.dispose()

    upgrade(empty_database_url)

    database = Database(empty_database_url)
    key = new_api_key()
    with database.session(write=True) as session:
        user = PartnerUser(partner_id=1, email="a@old.test", name="A", role="admin", created_at=START)
        session.add(user)
        session.flush()
        session.add(
            ApiKey(
                partner_id=1,
                partner_user_id=user.id,
                name="k",
                prefix=key.prefix,
                secret_hash=key.secret_hash,
                created_at=START,
            )
        )
        session.commit()
    settings = Settings(
        database_url=empty_database_url,
        data_dir=tmp_path,
        secret_key="test-secret-key-" + "x" * 32,
        _env_file=None,  # type: ignore[call-arg]
    )
    app = create_app(settings, clock=FakeClock(datetime(2026, 3, 10, tzinfo=UTC)), database=database)
    try:
        with TestClient(app) as http:  # every request while the app runs (its lifespan)
            response = http.get(
                "/api/1/datasources/7/rows?offset=990&limit=20",
                headers={"Authorization": f"Bearer {key.secret}"},
            )
            dashboard = http.get("/api/1/dashboards/3", headers={"Authorization": f"Bearer {key.secret}"})
            client = http.get("/api/1/clients/4", headers={"Authorization": f"Bearer {key.secret}"})
        assert response.status_code == 200, response.text
        expected = [{"label": f"row {i}\ufffd\ufffd", "value": i} for i in range(990, 1_010)]
        assert response.json()["items"] == expected
        assert response.json()["total"] == 1_100
        # A name stored with a line break is made one line, so it cannot reach an e-mail header.
        assert dashboard.json()["name"] == "Report  Bcc: x@evil.test"
        assert (client.json()["name"], client.json()["description"]) == ("Acme\ufffd[2J", "a\r\nb\ufffd")
        with database.session() as session:
            # The snapshot itself was rewritten safe, for everything else that reads it.
            assert session.get(DataSource, 7).rows[5] == {"label": "row 5\ufffd\ufffd", "value": 5}
    finally:
        database.dispose()
