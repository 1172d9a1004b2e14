"""The outbox's kind of password-reset e-mails (`password_reset`): the messages queued before stay
as they were, the new kind is accepted and no unknown one, and going back makes resets the
one-time-link kind they were. On SQLite, and on PostgreSQL when TENANTRY_TEST_DATABASE_URL is set."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from tenantry.db.migrate import alembic_config, upgrade
from tests.db import migrating

BEFORE = "0020_accounts"


@pytest.fixture(params=migrating.ENGINES)
def before(request, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A database at the revision before, with a partner and an invitation in the outbox."""
    with migrating.fresh_database(request.param, tmp_path) as url:
        upgrade(url, BEFORE)
        with migrating.filling(url) as add:
            add("partners", id=1, name="P", timezone="UTC", currency="USD")
            add("mail_outbox", id=1, partner_id=1, kind="invitation", status="delivered")
        yield url


def _queue(url: str, mail_id: int, kind: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO mail_outbox (id, partner_id, kind, sent_by, recipients, recipient_count,"
                    " subject, text, status, attempts, created_at) VALUES (:id, 1, :kind, 'system', '[]', 1,"
                    " 'Reset', '', 'pending', 0, :now)"
                ),
                {"id": mail_id, "kind": kind, "now": migrating.NOW},
            )
    finally:
        engine.dispose()


def test_messages_queued_before_keep_their_kind_and_a_reset_is_a_kind_of_its_own(before):
    upgrade(before)
    _queue(before, 2, "password_reset")
    assert migrating.rows(before, "SELECT id, kind FROM mail_outbox ORDER BY id") == [
        (1, "invitation"),
        (2, "password_reset"),
    ]


def test_an_unknown_kind_is_still_refused(before):
    upgrade(before)
    with pytest.raises(IntegrityError):
        _queue(before, 2, "newsletter")


def test_going_back_makes_resets_invitations_and_refuses_the_reset_kind(before):
    upgrade(before)
    _queue(before, 2, "password_reset")
    command.downgrade(alembic_config(before), BEFORE)
    assert migrating.rows(before, "SELECT id, kind FROM mail_outbox ORDER BY id") == [
        (1, "invitation"),
        (2, "invitation"),
    ]
    with pytest.raises(IntegrityError):
        _queue(before, 3, "password_reset")
    upgrade(before)  # and forward again
    _queue(before, 3, "password_reset")


def test_ids_of_the_outbox_are_still_never_reused_on_sqlite(before):
    if not before.startswith("sqlite"):
        pytest.skip("PostgreSQL identities never hand out an id twice")
    upgrade(before)
    (sql,) = migrating.rows(before, "SELECT sql FROM sqlite_master WHERE name = 'mail_outbox'")[0]
    assert "AUTOINCREMENT" in sql.upper()
