"""The partner's SQL (`partners.repository`) beside the transactions that use it."""

from __future__ import annotations

from sqlalchemy import update

from tenantry.db.models import Partner
from tenantry.meter.calendar import MeterCalendar
from tenantry.partners.repository import lock_partner, partner_meter_calendar


def test_the_meter_calendar_comes_from_the_locked_row_only_while_its_transaction_lasts(
    database, make_partner
):
    partner = make_partner()
    with database.session(write=True) as session:
        lock_partner(session, partner.id)
        session.execute(update(Partner).where(Partner.id == partner.id).values(timezone="Europe/Paris"))
        # This transaction's own row, as it changed it.
        assert partner_meter_calendar(session, partner.id) == MeterCalendar("Europe/Paris")
        session.commit()
        with database.session(write=True) as other:
            other.execute(update(Partner).where(Partner.id == partner.id).values(timezone="Asia/Tokyo"))
            other.commit()
        # A later transaction of the same session reads the partner as it is now, not the row kept.
        assert partner_meter_calendar(session, partner.id) == MeterCalendar("Asia/Tokyo")
