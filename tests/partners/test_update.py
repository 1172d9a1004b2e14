"""PATCH /api/1/partner: the partner's name, timezone, prices and currency (admins only)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tenantry.db.models import AuditEvent, Partner
from tenantry.db.statements_models import TermsChange


def update(http, headers, **body):
    return http.patch("/api/1/partner", json=body, headers=headers)


class TestUpdatingThePartner:
    def test_an_admin_changes_name_timezone_prices_and_currency(self, http, partner):
        response = update(
            http,
            partner.headers,
            name="  Northwind  ",
            timezone="Europe/Paris",
            dashboard_price="12.50",
            user_price=7,
            currency="eur",
        )
        assert response.status_code == 200
        body = response.json()
        assert (body["name"], body["timezone"]) == ("Northwind", "Europe/Paris")
        assert (body["plan"]["dashboard_price"], body["plan"]["user_price"], body["plan"]["currency"]) == (
            "12.50",
            "7.00",
            "EUR",
        )
        assert http.get("/api/1/partner", headers=partner.headers).json() == body

    def test_each_change_is_audited_and_terms_changes_are_kept_as_history(self, http, partner, db):
        assert update(http, partner.headers, dashboard_price="11.00").status_code == 200
        assert update(http, partner.headers, name="Renamed").status_code == 200
        events = db.scalars(select(AuditEvent).where(AuditEvent.action == "partner.updated")).all()
        assert [e.details for e in events] == [{"dashboard_price": "11.00"}, {"name": "Renamed"}]
        assert events[0].actor == f"partner_user:{partner.admin_user_id}"
        history = db.scalars(select(TermsChange).order_by(TermsChange.id)).all()
        # The creation's snapshot, then the price change; a new name is not a term.
        assert [str(t.dashboard_price) for t in history] == ["10.00", "11.00"]

    def test_an_empty_or_unchanged_body_changes_nothing(self, http, partner, db):
        assert update(http, partner.headers).status_code == 200
        assert update(http, partner.headers, dashboard_price="10.00").status_code == 200
        assert db.scalars(select(AuditEvent).where(AuditEvent.action == "partner.updated")).all() == []

    @pytest.mark.parametrize("role", ["editor", "viewer"])
    def test_only_an_admin_may_change_the_partner(self, http, partner, add_partner_user, db, role):
        refused = update(http, add_partner_user(partner, role), dashboard_price="1.00")
        assert refused.status_code == 403
        assert refused.json()["code"] == "forbidden"
        assert str(db.get(Partner, partner.id).dashboard_price) == "10.00"

    @pytest.mark.parametrize(
        "body",
        [
            {"timezone": "Mars/Olympus"},
            {"timezone": ""},
            {"dashboard_price": "-1.00"},
            {"dashboard_price": "1.005"},
            {"dashboard_price": "ten"},
            {"user_price": "NaN"},
            {"user_price": "1e20"},
            {"currency": "EURO"},
            {"currency": "E1R"},
            {"name": "   "},
            {"name": None},
            {"plan_users": 5},
        ],
    )
    def test_a_malformed_change_is_a_422_problem_and_changes_nothing(self, http, partner, db, body):
        response = update(http, partner.headers, **body)
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"
        assert response.headers["content-type"] == "application/problem+json"
        stored = db.get(Partner, partner.id)
        assert (stored.timezone, str(stored.dashboard_price), stored.currency) == ("UTC", "10.00", "USD")

    @pytest.mark.parametrize(
        "body",
        [{"trial_days": 99_999_999_999}, {"trial_extension_days": 99_999_999_999}, {"trial_days": 30}],
        ids=["trial no date can hold", "extension no date can hold", "a trial length at all"],
    )
    def test_a_trial_length_is_not_the_partners_to_change_and_is_refused_with_422(
        self, http, partner, db, body
    ):
        # Trial lengths are set with the plan (`tenantry partner create`, at most 3650 days): the
        # API takes none, so none too long for a date to hold reaches a client's trial.
        before = http.get("/api/1/partner", headers=partner.headers).json()
        response = update(http, partner.headers, **body)
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"
        stored = db.get(Partner, partner.id)
        assert (stored.trial_days, stored.trial_extension_days) == (14, 14)
        assert http.get("/api/1/partner", headers=partner.headers).json() == before
        assert db.scalars(select(AuditEvent).where(AuditEvent.action == "partner.updated")).all() == []
