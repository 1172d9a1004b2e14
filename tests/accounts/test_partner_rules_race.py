"""A partner's first account rules written by two requests at once (the console's two-step
sign-in setting takes no partner lock): the second waits for the first and finds its row, on
PostgreSQL too, instead of failing on the key (a 500)."""

from __future__ import annotations

import threading

from tenantry.accounts.service import require_mfa, set_require_mfa
from tenantry.db.account_models import PartnerAccountRules
from tenantry.db.models import AuditEvent


def test_two_first_settings_at_once_both_succeed_and_the_last_one_holds(
    database, clock, partner_admin, session
):
    admin = partner_admin()
    session.commit()
    first = database.session(write=True)
    first.begin()
    set_require_mfa(first, clock, admin, True)  # its rules row is written, not yet committed
    failed: list[BaseException] = []

    def second_request() -> None:
        with database.session(write=True) as second:
            try:
                set_require_mfa(second, clock, admin, False)
                second.commit()
            except BaseException as exc:  # reported to the test's thread
                failed.append(exc)

    other = threading.Thread(target=second_request)
    other.start()
    other.join(timeout=0.5)  # on PostgreSQL it waits on the first's key; SQLite's on its write lock
    first.commit()
    first.close()
    other.join(timeout=30)
    assert not other.is_alive()
    assert failed == []
    with database.session() as db:
        assert db.get(PartnerAccountRules, admin.partner_id).require_mfa is False
        assert require_mfa(db, admin) is False
        changes = db.query(AuditEvent).filter_by(action="partner.require_mfa_changed").count()
        assert changes == 2
