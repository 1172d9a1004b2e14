"""Editing users, sending an invitation again, and changing one's own password (SPEC §18)."""

from __future__ import annotations

from sqlalchemy import select

from tenantry.auth.secrets import verify_password
from tenantry.db.access_models import WebSession
from tenantry.db.models import ClientUser, PartnerUser
from tests.accounts.conftest import path_of, post_page_form
from tests.factories import ADMIN_PASSWORD, PASSWORD, add_user, admin_email, key_for, new_client, sign_in

NEW_PASSWORD = "a brand new secret 7"


def _patch_user(http, headers, client_id, user_id, **body):  # type: ignore[no-untyped-def]
    return http.patch(f"/api/1/clients/{client_id}/users/{user_id}", json=body, headers=headers)


class TestEditingClientUsers:
    def test_a_partner_user_renames_a_client_user_and_changes_its_role(self, http, partner):
        client_id = new_client(http, partner)
        user = add_user(http, partner, client_id, "ann@client.test", role="member")
        answer = _patch_user(http, partner.headers, client_id, user["id"], name="Ann B", role="editor")
        assert answer.status_code == 200, answer.text
        assert (answer.json()["name"], answer.json()["role"]) == ("Ann B", "editor")

    def test_a_client_admin_changes_a_role_in_its_own_client(self, http, partner):
        client_id = new_client(http, partner)
        admin = add_user(http, partner, client_id, "boss@client.test", role="admin")
        member = add_user(http, partner, client_id, "ann@client.test", role="member")
        headers = key_for(http, partner, client_id, admin["id"])
        assert _patch_user(http, headers, client_id, member["id"], role="admin").json()["role"] == "admin"

    def test_the_last_admin_of_a_client_cannot_be_demoted(self, http, partner, db):
        client_id = new_client(http, partner)
        admin = add_user(http, partner, client_id, "boss@client.test", role="admin")
        answer = _patch_user(http, partner.headers, client_id, admin["id"], role="member")
        assert answer.status_code == 409
        assert answer.json()["code"] == "last_admin"
        assert db.get(ClientUser, admin["id"]).role == "admin"

    def test_with_a_second_admin_one_can_be_demoted(self, http, partner):
        client_id = new_client(http, partner)
        first = add_user(http, partner, client_id, "boss@client.test", role="admin")
        add_user(http, partner, client_id, "boss2@client.test", role="admin")
        assert _patch_user(http, partner.headers, client_id, first["id"], role="member").status_code == 200

    def test_a_member_cannot_edit_users(self, http, partner, db):
        client_id = new_client(http, partner)
        add_user(http, partner, client_id, "boss@client.test", role="admin")
        member = add_user(http, partner, client_id, "ann@client.test", role="member")
        headers = key_for(http, partner, client_id, member["id"])
        answer = _patch_user(http, headers, client_id, member["id"], role="admin")
        assert answer.status_code == 403
        assert db.get(ClientUser, member["id"]).role == "member"

    def test_a_client_admin_editing_another_clients_user_is_not_found(self, http, partner, db):
        ours = new_client(http, partner)
        theirs = new_client(http, partner)
        admin = add_user(http, partner, ours, "boss@client.test", role="admin")
        victim = add_user(http, partner, theirs, "victim@other.test", role="member")
        headers = key_for(http, partner, ours, admin["id"])
        assert _patch_user(http, headers, theirs, victim["id"], role="admin").status_code == 404
        assert _patch_user(http, headers, ours, victim["id"], role="admin").status_code == 404
        assert db.get(ClientUser, victim["id"]).role == "member"

    def test_another_partners_client_user_is_not_found(self, http, partner, make_partner, db):
        other = make_partner(users=10, dashboards=10, published_links=10, api_calls_per_day=1000)
        client_id = new_client(http, other)
        user = add_user(http, other, client_id, "ann@client.test", role="member")
        assert _patch_user(http, partner.headers, client_id, user["id"], name="Mine").status_code == 404
        assert db.get(ClientUser, user["id"]).name == "ann"

    def test_an_unknown_role_or_field_is_a_422(self, http, partner):
        client_id = new_client(http, partner)
        user = add_user(http, partner, client_id, "ann@client.test", role="member")
        assert _patch_user(http, partner.headers, client_id, user["id"], role="owner").status_code == 422
        assert _patch_user(http, partner.headers, client_id, user["id"], email="x@y.z").status_code == 422
        assert _patch_user(http, partner.headers, client_id, user["id"], name="a\nb").status_code == 422


class TestEditingPartnerUsers:
    def test_an_admin_changes_a_partner_users_role(self, http, partner, add_partner_user, db):
        add_partner_user(partner, "viewer")
        viewer = db.scalars(select(PartnerUser).where(PartnerUser.role == "viewer")).one()
        answer = http.patch(
            f"/api/1/partner/users/{viewer.id}", json={"role": "editor"}, headers=partner.headers
        )
        assert answer.status_code == 200
        assert answer.json()["role"] == "editor"

    def test_the_last_partner_admin_cannot_be_demoted(self, http, partner, db):
        answer = http.patch(
            f"/api/1/partner/users/{partner.admin_user_id}", json={"role": "editor"}, headers=partner.headers
        )
        assert answer.status_code == 409
        assert answer.json()["code"] == "last_admin"
        assert db.get(PartnerUser, partner.admin_user_id).role == "admin"

    def test_an_editor_cannot_edit_partner_users(self, http, partner, add_partner_user, db):
        headers = add_partner_user(partner, "editor")
        answer = http.patch(
            f"/api/1/partner/users/{partner.admin_user_id}", json={"name": "X"}, headers=headers
        )
        assert answer.status_code == 403
        assert db.get(PartnerUser, partner.admin_user_id).name != "X"

    def test_a_client_admin_cannot_edit_a_partner_user(self, http, partner, db):
        client_id = new_client(http, partner)
        admin = add_user(http, partner, client_id, "boss@client.test", role="admin")
        headers = key_for(http, partner, client_id, admin["id"])
        answer = http.patch(
            f"/api/1/partner/users/{partner.admin_user_id}", json={"role": "viewer"}, headers=headers
        )
        assert answer.status_code in (403, 404)
        assert db.get(PartnerUser, partner.admin_user_id).role == "admin"

    def test_another_partners_user_is_not_found(self, http, partner, make_partner, db):
        other = make_partner()
        answer = http.patch(
            f"/api/1/partner/users/{other.admin_user_id}", json={"name": "X"}, headers=partner.headers
        )
        assert answer.status_code == 404


class TestResendingInvitations:
    def test_a_new_invitation_replaces_the_old_link(self, mail_http, partner, mailed_links):
        client_id = new_client(mail_http, partner)
        user = add_user(mail_http, partner, client_id, "invitee@client.test", password=None, role="member")
        [old] = mailed_links("invite")
        answer = mail_http.post(
            f"/api/1/clients/{client_id}/users/{user['id']}/resend-invitation", headers=partner.headers
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["queued"] is True
        [new] = mailed_links("invite")
        assert new != old
        assert mail_http.get(path_of(old)).status_code == 404
        assert mail_http.get(path_of(new)).status_code == 200
        assert (
            post_page_form(mail_http, path_of(new), password=NEW_PASSWORD, confirm=NEW_PASSWORD).status_code
            == 200
        )

    def test_a_user_who_has_set_a_password_is_a_409(self, http, partner):
        client_id = new_client(http, partner)
        user = add_user(http, partner, client_id, "ann@client.test", role="member")
        answer = http.post(
            f"/api/1/clients/{client_id}/users/{user['id']}/resend-invitation", headers=partner.headers
        )
        assert answer.status_code == 409
        assert answer.json()["code"] == "invitation_accepted"

    def test_a_client_admin_cannot_resend_for_another_clients_user(self, http, partner):
        ours = new_client(http, partner)
        theirs = new_client(http, partner)
        admin = add_user(http, partner, ours, "boss@client.test", role="admin")
        victim = add_user(http, partner, theirs, "v@other.test", password=None, role="member")
        headers = key_for(http, partner, ours, admin["id"])
        answer = http.post(f"/api/1/clients/{theirs}/users/{victim['id']}/resend-invitation", headers=headers)
        assert answer.status_code == 404

    def test_a_partner_user_invitation_can_be_sent_again(self, mail_http, partner, mailed_links):
        body = {"email": "new@partner.test", "name": "New", "role": "editor"}
        user = mail_http.post("/api/1/partner/users", json=body, headers=partner.headers).json()
        [old] = mailed_links("invite")
        answer = mail_http.post(
            f"/api/1/partner/users/{user['id']}/resend-invitation", headers=partner.headers
        )
        assert answer.status_code == 200
        [new] = mailed_links("invite")
        assert mail_http.get(path_of(old)).status_code == 404
        assert mail_http.get(path_of(new)).status_code == 200


class TestChangingOwnPassword:
    def test_a_right_current_password_changes_it(self, http, partner, db):
        body = {"current": ADMIN_PASSWORD, "new": NEW_PASSWORD}
        assert http.post("/api/1/me/password", json=body, headers=partner.headers).status_code == 204
        db.rollback()
        assert verify_password(NEW_PASSWORD, db.get(PartnerUser, partner.admin_user_id).password_hash)

    def test_a_wrong_current_password_is_refused_and_counted_by_the_sign_in_throttle(self, http, partner, db):
        body = {"current": "not the password", "new": NEW_PASSWORD}
        answers = [http.post("/api/1/me/password", json=body, headers=partner.headers) for _ in range(6)]
        assert [a.status_code for a in answers] == [403] * 5 + [429]
        assert answers[0].json()["field"] == "current"
        assert sign_in(http, admin_email(db, partner), ADMIN_PASSWORD).status_code == 429
        db.rollback()
        assert verify_password(ADMIN_PASSWORD, db.get(PartnerUser, partner.admin_user_id).password_hash)

    def test_a_weak_new_password_is_a_422_naming_the_reason(self, http, partner):
        body = {"current": ADMIN_PASSWORD, "new": "short"}
        answer = http.post("/api/1/me/password", json=body, headers=partner.headers)
        assert answer.status_code == 422
        assert (answer.json()["code"], answer.json()["reason"], answer.json()["field"]) == (
            "weak_password",
            "too_short",
            "new",
        )

    def test_changing_it_from_a_session_ends_the_other_sessions_and_keeps_this_one(
        self, http, app, partner, db
    ):
        from fastapi.testclient import TestClient

        email = admin_email(db, partner)
        with TestClient(app) as other:
            assert sign_in(other, email, ADMIN_PASSWORD).status_code == 303
            assert sign_in(http, email, ADMIN_PASSWORD).status_code == 303
            csrf = http.get("/partner").text.split('name="csrf_token" value="')[1].split('"')[0]
            answer = http.post(
                "/api/1/me/password",
                json={"current": ADMIN_PASSWORD, "new": NEW_PASSWORD},
                headers={"X-CSRF-Token": csrf},
            )
            assert answer.status_code == 204, answer.text
            assert http.get("/partner", follow_redirects=False).status_code == 200
            assert other.get("/partner", follow_redirects=False).headers["location"] == "/login"
        db.rollback()
        sessions = db.scalars(
            select(WebSession).where(WebSession.partner_user_id == partner.admin_user_id)
        ).all()
        assert len(sessions) == 1

    def test_the_account_page_form_changes_the_password(self, http, partner, db):
        client_id = new_client(http, partner)
        add_user(http, partner, client_id, "ann@client.test", role="admin")
        assert sign_in(http, "ann@client.test", PASSWORD).status_code == 303
        csrf = http.get("/app").text.split('name="csrf_token" value="')[1].split('"')[0]
        form = {"csrf_token": csrf, "current": PASSWORD, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD}
        answer = http.post("/account/password", data=form, follow_redirects=False)
        assert answer.status_code == 303
        assert "changed" in http.get("/app").text
        wrong = {**form, "current": "not the password"}
        assert "not correct" in http.post("/account/password", data=wrong).text
