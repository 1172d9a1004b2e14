"""The partner use cases (SPEC §2 the plan, §7 terms for statements, §10 `partner create`), called
directly with a session: no HTTP, no app."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from tenantry.auth.secrets import verify_password
from tenantry.db.models import ApiKey, AuditEvent, Partner, PartnerUser
from tenantry.db.statements_models import TermsChange
from tenantry.errors import Duplicate, Forbidden, InvalidInput, WeakPassword
from tenantry.partners.schemas import PartnerUpdate
from tenantry.partners.service import PartnerPlan, create_partner, update_partner
from tests.services import as_role

# Every write goes through the `session` fixture and is rolled back with it.
pytestmark = pytest.mark.rolled_back


def create(session, clock, **given: Any):  # type: ignore[no-untyped-def]
    arguments: dict[str, Any] = {
        "name": "Acme Partners",
        "admin_email": "admin@acme.test",
        "plan": PartnerPlan(),
    }
    return create_partner(session, clock, **{**arguments, **given})


def count(session, model) -> int:  # type: ignore[no-untyped-def]
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


class TestCreatingAPartner:
    @pytest.mark.parametrize(
        ("given", "refusal"),
        [
            pytest.param(
                {"name": "Acme\x00"}, "The partner's name must not contain control", id="control character"
            ),
            pytest.param({"name": "   "}, "The partner's name must be 1 to 200 characters.", id="blank name"),
            pytest.param(
                {"name": "x" * 201}, "The partner's name must be 1 to 200 characters.", id="long name"
            ),
            pytest.param({"admin_email": "nobody"}, "'nobody' is not an e-mail address.", id="no @"),
            pytest.param(
                {"timezone": "Mars/Olympus"}, "Unknown timezone 'Mars/Olympus'", id="unknown timezone"
            ),
            pytest.param(
                {"plan": PartnerPlan(dashboards=-2)}, "The plan's dashboards must be -1", id="below -1"
            ),
            pytest.param(
                {"plan": PartnerPlan(users=0)}, "room for at least one user", id="no room for the admin"
            ),
            pytest.param(
                {"plan": PartnerPlan(trial_days=0)}, "Trial days must be at least 1", id="no trial days"
            ),
            pytest.param(
                {"plan": PartnerPlan(trial_extension_days=-1)},
                "extension days at least 0",
                id="negative extension",
            ),
            pytest.param(
                {"plan": PartnerPlan(dashboards=2_000_000_001)},
                "The plan's dashboards must be -1 (unlimited) or a number from 0 to 2000000000.",
                id="pool total beyond its column",
            ),
            pytest.param(
                {"plan": PartnerPlan(trial_days=99_999_999_999)},
                "Trial days and extension days must be at most 3650.",
                id="trial no date can hold",
            ),
            pytest.param(
                {"plan": PartnerPlan(trial_extension_days=3651)},
                "Trial days and extension days must be at most 3650.",
                id="extension too long",
            ),
            pytest.param(
                {"plan": PartnerPlan(user_price=Decimal("-1"))}, "cannot be negative", id="negative price"
            ),
            pytest.param(
                {"plan": PartnerPlan(dashboard_price=Decimal("1e40"))},
                "Prices must be amounts from 0 to 9999999999.99.",
                id="price beyond its column",
            ),
            pytest.param(
                {"plan": PartnerPlan(user_price=Decimal("NaN"))},
                "Prices must be amounts from 0 to 9999999999.99.",
                id="price not a number",
            ),
            pytest.param({"plan": PartnerPlan(currency="US")}, "three-letter code", id="two-letter currency"),
        ],
    )
    def test_a_partner_that_breaks_a_rule_is_refused_and_nothing_is_written(
        self, session, clock, given, refusal
    ):
        with pytest.raises(InvalidInput) as refused:
            create(session, clock, **given)
        assert refused.value.detail.startswith(refusal) or refusal in refused.value.detail
        assert (count(session, Partner), count(session, PartnerUser)) == (0, 0)

    def test_a_new_partner_has_its_admin_an_api_key_its_terms_and_one_user_used(self, session, clock):
        created = create(session, clock, name="  Acme Partners ", admin_email="Admin@ACME.test")
        partner = session.get(Partner, created.partner_id)
        admin = session.get(PartnerUser, created.admin_user_id)
        assert (partner.name, partner.used_users, partner.client_count) == ("Acme Partners", 1, 0)
        assert (admin.email, admin.role) == ("admin@acme.test", "admin")
        assert count(session, ApiKey) == 1 and created.api_key
        assert count(session, TermsChange) == 1
        # Without a password one is generated, shown once, and hashed like any other.
        assert created.admin_password is not None
        assert verify_password(created.admin_password, admin.password_hash)

    def test_a_given_admin_password_is_kept_and_never_returned(self, session, clock):
        created = create(session, clock, admin_password="correct horse battery")
        assert created.admin_password is None
        assert verify_password(
            "correct horse battery", session.get(PartnerUser, created.admin_user_id).password_hash
        )

    def test_a_weak_admin_password_is_refused(self, session, clock):
        with pytest.raises(WeakPassword):
            create(session, clock, admin_password="short")
        assert count(session, Partner) == 0

    def test_an_admin_email_already_used_by_any_partner_is_refused(self, session, clock):
        create(session, clock, name="First")
        with pytest.raises(Duplicate):
            create(session, clock, name="Second", admin_email="ADMIN@acme.test")
        assert count(session, Partner) == 1


def update(session, clock, principal, **body: Any):  # type: ignore[no-untyped-def]
    return update_partner(session, clock, principal, PartnerUpdate.model_validate(body))


# SPEC §7: statements read the terms in force; a change of timezone, currency or a price appends a
# snapshot of the terms, a change of anything else does not.
TERMS = [
    pytest.param({"dashboard_price": "12.50"}, True, id="dashboard price"),
    pytest.param({"user_price": "0"}, True, id="user price"),
    pytest.param({"currency": "eur"}, True, id="currency"),
    pytest.param({"timezone": "Europe/Paris"}, True, id="timezone"),
    pytest.param({"name": "Renamed"}, False, id="name"),
    pytest.param({"dashboard_price": "10.00", "currency": "USD"}, False, id="the same terms again"),
]


class TestChangingAPartner:
    @pytest.mark.parametrize(("body", "new_terms"), TERMS)
    def test_a_change_of_terms_appends_a_snapshot_for_statements(
        self, session, clock, partner_admin, body, new_terms
    ):
        admin = partner_admin()
        before = count(session, TermsChange)
        clock.advance(days=1)
        update(session, clock, admin, **body)
        assert count(session, TermsChange) == before + (1 if new_terms else 0)

    def test_a_change_is_audited_with_what_changed_and_a_no_change_is_not(
        self, session, clock, partner_admin
    ):
        admin = partner_admin()
        partner = update(session, clock, admin, name="Renamed", currency="eur")
        assert (partner.name, partner.currency) == ("Renamed", "EUR")
        update(session, clock, admin, name="Renamed")
        audited = session.scalars(select(AuditEvent).where(AuditEvent.action == "partner.updated")).all()
        assert [event.details for event in audited] == [{"name": "Renamed", "currency": "EUR"}]

    @pytest.mark.parametrize("role", ["editor", "viewer"])
    def test_only_an_admin_changes_the_partner(self, session, clock, partner_admin, role):
        admin = partner_admin()
        with pytest.raises(Forbidden):
            update(session, clock, as_role(admin, role), name="Renamed")
        assert session.get(Partner, admin.partner_id).name == "Partner"

    @pytest.mark.parametrize(
        "name",
        [
            "right/UTC",  # the leap-second copy of the database
            "posix/Europe/Paris",
            "posixrules",
            "localtime",  # the server's own zone, where the system has that link
            "Factory",
            "../zoneinfo/UTC",
            "/usr/share/zoneinfo/UTC",
            "europe/paris",
        ],
    )
    def test_only_a_place_of_the_iana_database_is_a_timezone(self, session, clock, partner_admin, name):
        admin = partner_admin()
        with pytest.raises(InvalidInput, match="Unknown timezone"):
            update(session, clock, admin, timezone=name)
        assert session.get(Partner, admin.partner_id).timezone == "UTC"

    @pytest.mark.parametrize("name", ["Europe/Paris", "UTC", "America/Argentina/Buenos_Aires", "Etc/GMT+12"])
    def test_a_place_of_the_iana_database_is_kept(self, session, clock, partner_admin, name):
        admin = partner_admin()
        update(session, clock, admin, timezone=name)
        assert session.get(Partner, admin.partner_id).timezone == name

    def test_an_unknown_timezone_is_refused_and_nothing_changes(self, session, clock, partner_admin):
        admin = partner_admin()
        terms = count(session, TermsChange)
        with pytest.raises(InvalidInput):
            update(session, clock, admin, timezone="Mars/Olympus", name="Renamed")
        partner = session.get(Partner, admin.partner_id)
        assert (partner.name, partner.timezone) == ("Partner", "UTC")
        assert count(session, TermsChange) == terms
