"""Migration 0030: a schedule made before it keeps its creator as the user who set its addresses
(their role and e-mails a day go on deciding its outside addresses). On SQLite, and on PostgreSQL
when TENANTRY_TEST_DATABASE_URL is set."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command

from tenantry.db.migrate import alembic_config, upgrade
from tests.db import migrating

BEFORE = "0029_client_renames"


@pytest.fixture(params=migrating.ENGINES)
def before(request, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A database at the revision before, with two schedules made by two users."""
    with migrating.fresh_database(request.param, tmp_path) as url:
        upgrade(url, BEFORE)
        with migrating.filling(url) as add:
            add("partners", id=1, name="P", timezone="UTC", currency="USD")
            add("dashboards", id=1, partner_id=1, name="D")
            for schedule_id, creator in ((1, "partner_user:1"), (2, "partner_user:2")):
                add(
                    "report_schedules",
                    id=schedule_id,
                    partner_id=1,
                    dashboard_id=1,
                    frequency="daily",
                    time="09:00",
                    format="pdf",
                    recipient_emails=["someone@elsewhere.test"],
                    created_by=creator,
                )
        yield url


class TestSchedulesMadeBeforeTheMigration:
    def test_each_keeps_its_creator_as_the_user_who_set_its_addresses(self, before):
        upgrade(before)
        assert migrating.rows(before, "SELECT id, emails_set_by FROM report_schedules ORDER BY id") == [
            (1, "partner_user:1"),
            (2, "partner_user:2"),
        ]

    def test_going_back_and_forth_again_keeps_the_schedules(self, before):
        upgrade(before)
        command.downgrade(alembic_config(before), BEFORE)
        assert migrating.rows(before, "SELECT id, created_by FROM report_schedules ORDER BY id") == [
            (1, "partner_user:1"),
            (2, "partner_user:2"),
        ]
        upgrade(before)
        assert migrating.rows(before, "SELECT emails_set_by FROM report_schedules ORDER BY id") == [
            ("partner_user:1",),
            ("partner_user:2",),
        ]
