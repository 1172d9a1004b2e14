"""Migration 0032: users' e-mail addresses stored before it are composed (NFC), so a user added
with a decomposed address signs in typing the usual spelling, and an address whose composed form
another user of the same scope holds is left alone. On SQLite, and on PostgreSQL when
TENANTRY_TEST_DATABASE_URL is set."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic import command
from fastapi.testclient import TestClient

from tenantry.app import create_app
from tenantry.auth.secrets import hash_password
from tenantry.clock import FakeClock
from tenantry.db.migrate import alembic_config, upgrade
from tenantry.db.session import Database
from tenantry.settings import Settings
from tests.conftest import START
from tests.db import migrating
from tests.factories import PASSWORD, sign_in

BEFORE = "0031_source_secrets_set_by"
COMPOSED = "\u00e9lise@client.test"  # é as one character
DECOMPOSED = "e\u0301lise@client.test"  # e and a combining acute accent


@pytest.fixture(params=migrating.ENGINES)
def before(request, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """An empty database at the revision before, on each engine."""
    with migrating.fresh_database(request.param, tmp_path) as url:
        upgrade(url, BEFORE)
        yield url


def _partner_with_clients(add: Callable[..., None]) -> None:
    add("partners", id=1, name="P", timezone="UTC", currency="USD")
    for client_id in (1, 2):
        add("clients", id=client_id, partner_id=1, name=f"C{client_id}", status="active")


@contextmanager
def _app_on(url: str, folder: Path) -> Iterator[TestClient]:
    """The app serving the migrated database at `url`."""
    settings = Settings(
        database_url=url,
        data_dir=folder,
        secret_key="test-secret-key-" + "x" * 32,
        _env_file=None,  # type: ignore[call-arg]
    )
    database = Database(url)
    try:
        with TestClient(create_app(settings, clock=FakeClock(START), database=database)) as http:
            yield http
    finally:
        database.dispose()


class TestAddressesStoredDecomposed:
    def test_a_partner_user_added_decomposed_signs_in_with_the_composed_spelling(self, before, tmp_path):
        with migrating.filling(before) as add:
            _partner_with_clients(add)
            add(
                "partner_users",
                id=1,
                partner_id=1,
                email=DECOMPOSED,
                name="Élise",
                role="admin",
                password_hash=hash_password(PASSWORD),
            )
        upgrade(before)
        assert migrating.rows(before, "SELECT email FROM partner_users") == [(COMPOSED,)]
        with _app_on(before, tmp_path) as http:
            assert sign_in(http, COMPOSED, PASSWORD).status_code == 303

    def test_client_users_and_the_addresses_schedules_send_to_are_composed(self, before):
        with migrating.filling(before) as add:
            _partner_with_clients(add)
            add("client_users", id=1, client_id=1, email=DECOMPOSED, name="Élise", role="member")
            add("client_users", id=2, client_id=2, email=DECOMPOSED, name="Élise", role="member")
            add("dashboards", id=1, partner_id=1, name="D")
            add(
                "report_schedules",
                id=1,
                partner_id=1,
                dashboard_id=1,
                frequency="daily",
                time="09:00",
                format="pdf",
                recipient_emails=[DECOMPOSED, "ann@client.test", COMPOSED],
                created_by="partner_user:1",
                emails_set_by="partner_user:1",
            )
        upgrade(before)
        assert migrating.rows(before, "SELECT id, email FROM client_users ORDER BY id") == [
            (1, COMPOSED),
            (2, COMPOSED),
        ]
        ((addresses,),) = migrating.rows(before, "SELECT recipient_emails FROM report_schedules")
        if isinstance(addresses, str):  # SQLite's driver gives JSON back as text
            addresses = json.loads(addresses)
        assert addresses == [COMPOSED, "ann@client.test"]


class TestAnAddressWhoseComposedFormIsHeld:
    def test_a_client_user_spelled_like_another_of_the_client_is_left_alone(self, before):
        with migrating.filling(before) as add:
            _partner_with_clients(add)
            add("client_users", id=1, client_id=1, email=COMPOSED, name="A", role="member")
            add("client_users", id=2, client_id=1, email=DECOMPOSED, name="B", role="member")
        upgrade(before)
        assert migrating.rows(before, "SELECT id, email FROM client_users ORDER BY id") == [
            (1, COMPOSED),
            (2, DECOMPOSED),
        ]

    def test_a_partner_user_spelled_like_another_in_the_product_is_left_alone(self, before):
        with migrating.filling(before) as add:
            add("partners", id=1, name="P", timezone="UTC", currency="USD")
            add("partners", id=2, name="Q", timezone="UTC", currency="USD")
            add("partner_users", id=1, partner_id=1, email=DECOMPOSED, name="A", role="admin")
            add("partner_users", id=2, partner_id=2, email=COMPOSED, name="B", role="admin")
        upgrade(before)
        assert migrating.rows(before, "SELECT id, email FROM partner_users ORDER BY id") == [
            (1, DECOMPOSED),
            (2, COMPOSED),
        ]

    def test_going_back_and_forth_again_keeps_the_addresses(self, before):
        with migrating.filling(before) as add:
            _partner_with_clients(add)
            add("client_users", id=1, client_id=1, email=DECOMPOSED, name="A", role="member")
        upgrade(before)
        command.downgrade(alembic_config(before), BEFORE)
        upgrade(before)
        assert migrating.rows(before, "SELECT email FROM client_users") == [(COMPOSED,)]
