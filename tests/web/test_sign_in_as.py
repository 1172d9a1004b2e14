"""Partner users entering a client ("sign in as", seed: disabled accounts stay accessible)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tenantry.db.models import AuditEvent
from tests.factories import ADMIN_PASSWORD, admin_email, client_with_user, csrf_of, enter, new_client, sign_in


class TestSignInAs:
    @pytest.mark.parametrize("status", ["setup", "trial", "trial_expired", "active", "disabled"])
    def test_a_partner_admin_enters_a_client_in_every_status(self, http, partner, clock, status, db):
        if status == "setup":
            client_id = new_client(http, partner, "setup")
        else:
            client_id, _, _ = client_with_user(http, partner, clock, status, "u@client.test")
        email = admin_email(db, partner)
        db.rollback()
        sign_in(http, email, ADMIN_PASSWORD)
        response = enter(http, client_id)
        assert response.status_code == 303
        assert response.headers["location"] == "/app"
        page = http.get("/app")
        assert page.status_code == 200
        assert "Signed in as <strong>Client" in page.text
        assert f"by <strong>{email.split('@')[0]}</strong>" in page.text

    def test_entering_is_audited_with_the_mode(self, partner_session, partner, db):
        client_id = new_client(partner_session, partner, "trial")
        enter(partner_session, client_id, "view_only")
        event = db.scalars(select(AuditEvent).where(AuditEvent.action == "client.signed_in_as")).one()
        assert (event.client_id, event.actor, event.details) == (
            client_id,
            f"partner_user:{partner.admin_user_id}",
            {"mode": "view_only"},
        )

    def test_view_only_refuses_every_change(self, partner_session, partner):
        client_id = new_client(partner_session, partner, "trial")
        enter(partner_session, client_id, "view_only")
        page = partner_session.get("/app")
        assert "view only" in page.text
        assert "Request trial extension" not in page.text
        refused = partner_session.post("/app/extend-trial", data={"csrf_token": csrf_of(page.text)})
        assert refused.status_code == 403
        api = partner_session.post(
            f"/api/1/clients/{client_id}/extend-trial", headers={"X-CSRF-Token": csrf_of(page.text)}
        )
        assert api.status_code == 403
        trial = partner_session.get(f"/api/1/clients/{client_id}", headers=partner.headers).json()["trial"]
        assert trial["extended"] is False

    # Each console form, with what it would change: in view-only mode it is refused with the
    # sentence and changes nothing, as the portal's forms and the API are.
    CONSOLE_FORMS = [
        # (the form, its fields, where what it would change is read)
        (
            "/partner/clients/{client}/users",
            {"email": "n@client.test", "name": "N", "role": "admin"},
            "/api/1/clients/{client}/users",
        ),
        (
            "/partner/clients/{client}/status",
            {"status": "disabled", "reason": "?"},
            "/api/1/clients/{client}",
        ),
        ("/partner/clients", {"name": "Made in view only", "status": "setup"}, "/api/1/clients"),
        ("/partner/dashboards", {"name": "Sneaky"}, "/api/1/partner/dashboards"),
        (
            "/partner/datasources",
            {"kind": "inline", "name": "Rows", "csv_text": "a\n1\n"},
            "/api/1/partner/datasources",
        ),
    ]

    @pytest.mark.parametrize(("form", "fields", "changed"), CONSOLE_FORMS, ids=[f[0] for f in CONSOLE_FORMS])
    def test_view_only_refuses_the_console_forms_too(self, partner_session, partner, form, fields, changed):
        client_id = new_client(partner_session, partner, "trial")
        enter(partner_session, client_id, "view_only")
        csrf = csrf_of(partner_session.get("/app").text)
        watched = changed.format(client=client_id)
        before = partner_session.get(watched, headers=partner.headers).json()
        refused = partner_session.post(form.format(client=client_id), data={"csrf_token": csrf, **fields})
        assert refused.status_code == 200  # back to a page, which says why
        assert "view-only mode: nothing can be changed" in refused.text
        assert partner_session.get(watched, headers=partner.headers).json() == before

    # The user's own account, changed from the same session: refused too, as the API refuses
    # POST /api/1/me/api-keys from it.
    ACCOUNT_FORMS = [
        ("/account/api-keys", {"name": "In view only"}, "/api/1/me/api-keys"),
        (
            "/account/password",
            {"current": "wrong but unread", "new": "a new passphrase 1", "confirm": "a new passphrase 1"},
            None,
        ),
        ("/account/mfa", {}, None),
    ]

    @pytest.mark.parametrize(("form", "fields", "changed"), ACCOUNT_FORMS, ids=[f[0] for f in ACCOUNT_FORMS])
    def test_view_only_refuses_the_account_forms_too(
        self, partner_session, partner, db, form, fields, changed
    ):
        client_id = new_client(partner_session, partner, "trial")
        enter(partner_session, client_id, "view_only")
        csrf = csrf_of(partner_session.get("/app").text)
        before = partner_session.get(changed, headers=partner.headers).json() if changed else None
        audited = db.scalar(select(func.count()).select_from(AuditEvent))
        refused = partner_session.post(form, data={"csrf_token": csrf, **fields})
        assert "view-only mode: nothing can be changed" in refused.text
        if changed:
            assert partner_session.get(changed, headers=partner.headers).json() == before
        db.rollback()
        assert db.scalar(select(func.count()).select_from(AuditEvent)) == audited

    @pytest.mark.parametrize("mode", ["view_only", "admin"])
    def test_once_the_entered_client_is_deleted_the_console_and_the_api_change_things_again(
        self, partner_session, partner, mode
    ):
        client_id = new_client(partner_session, partner, "trial")
        enter(partner_session, client_id, mode)
        assert (
            partner_session.delete(f"/api/1/clients/{client_id}", headers=partner.headers).status_code == 204
        )
        page = partner_session.get("/partner/clients")
        assert page.status_code == 200 and "view only" not in page.text
        made = partner_session.post(
            "/partner/clients", data={"csrf_token": csrf_of(page.text), "name": "After", "status": "setup"}
        )
        assert "view-only mode" not in made.text
        names = [
            c["name"] for c in partner_session.get("/api/1/clients", headers=partner.headers).json()["items"]
        ]
        assert "After" in names
        api = partner_session.post(
            "/api/1/clients",
            json={"name": "Through the session", "status": "setup"},
            headers={"X-CSRF-Token": csrf_of(page.text)},
        )
        assert api.status_code == 201, api.text

    def test_as_admin_the_trial_can_be_extended_from_the_portal(self, partner_session, partner):
        client_id = new_client(partner_session, partner, "trial")
        enter(partner_session, client_id, "admin")
        page = partner_session.get("/app")
        assert "Request trial extension (14 more days)" in page.text
        done = partner_session.post(
            "/app/extend-trial", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False
        )
        assert done.status_code == 303
        assert "Trial: 28 days left." in partner_session.get("/app").text

    def test_the_way_back_leaves_the_client(self, partner_session, partner):
        client_id = new_client(partner_session, partner, "trial")
        enter(partner_session, client_id)
        page = partner_session.get("/app")
        back = partner_session.post(
            "/partner/return", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False
        )
        assert back.headers["location"] == "/partner"
        assert 'class="banner"' not in partner_session.get("/partner").text
        assert partner_session.get("/app", follow_redirects=False).headers["location"] == "/partner"

    def test_another_partners_client_cannot_be_entered(self, partner_session, make_partner):
        other = make_partner()
        foreign = new_client(partner_session, other, "trial")
        assert enter(partner_session, foreign).status_code == 404

    def test_a_partner_viewer_cannot_sign_in_as(self, http, partner, clock):
        body = {"email": "viewer@p.test", "name": "Vi", "role": "viewer", "password": "a long secret 3"}
        assert http.post("/api/1/partner/users", json=body, headers=partner.headers).status_code == 201
        client_id = new_client(http, partner, "trial")
        sign_in(http, "viewer@p.test", "a long secret 3")
        assert 'action="/partner/sign-in-as"' not in http.get(f"/partner/clients/{client_id}").text
        assert enter(http, client_id).status_code == 403

    def test_a_client_user_cannot_sign_in_as(self, http, partner, clock):
        _, _, _ = client_with_user(http, partner, clock, "trial", "u@client.test")
        other = new_client(http, partner, "trial")
        sign_in(http, "u@client.test", "a long secret 1")
        csrf = csrf_of(http.get("/app").text)
        refused = http.post("/partner/sign-in-as", data={"client_id": str(other), "csrf_token": csrf})
        assert refused.status_code == 403
