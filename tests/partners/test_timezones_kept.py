"""Timezone names a partner kept from before partners and schedules took places of the IANA
database only (`localtime`, `right/…`): what they hold keeps working."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from tenantry.db.models import Partner
from tests.content import inline_source
from tests.factories import post_form
from tests.web.test_schedules_page import client_admin_schedules


def _hold_timezone(database, partner, name: str) -> None:
    """The partner keeps a timezone an earlier version accepted (`ZoneInfo(name)` loaded it)."""
    with database.session(write=True) as session:
        session.execute(update(Partner).where(Partner.id == partner.id).values(timezone=name))
        session.commit()


class TestATimezoneHeldFromBefore:
    @pytest.mark.parametrize("name", ["localtime", "right/Europe/Paris"])
    def test_a_partner_sending_back_its_own_unchanged_timezone_is_not_refused(
        self, http, partner, database, name
    ) -> None:
        _hold_timezone(database, partner, name)
        response = http.patch(
            "/api/1/partner", json={"name": "Renamed", "timezone": name}, headers=partner.headers
        )
        assert response.status_code == 200, response.text

    def test_the_schedules_form_of_a_partner_holding_localtime_schedules_a_report_in_it(
        self, http, partner, database, clock
    ) -> None:
        # The form is filled in with the partner's timezone, but a schedule may not be given
        # "localtime": the field is left empty, and the report keeps the partner's time.
        _hold_timezone(database, partner, "localtime")
        page, user = client_admin_schedules(http, partner, clock)
        shown = http.get(page).text
        assert 'id="s-timezone" name="timezone" type="text" value=""' in shown
        post_form(
            http,
            page,
            page,
            frequency="daily",
            time="07:45",
            timezone="",
            format="pdf",
            user_ids=str(user["id"]),
        )
        text = http.get(page).text
        assert "an IANA timezone name" not in text
        assert "at 07:45 (localtime)" in text

    def test_a_preview_over_an_instant_past_the_calendar_is_answered_in_localtime(
        self, http, partner, database
    ) -> None:
        _hold_timezone(database, partner, "localtime")
        source_id = inline_source(http, partner, None, [{"at": "0001-01-01T00:00:00+14:00", "n": 1}])
        body = {"datasource_id": source_id, "kind": "table", "query": {"sort": [{"column": "n"}]}}
        response = http.post("/api/1/klips/preview", json=body, headers=partner.headers)
        assert response.status_code == 200, response.text
        assert "0001-01-01T00:00:00+14:00" in response.text
