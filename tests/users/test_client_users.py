"""Client users (SPEC §4 "add or remove client users", §6 allocation, §9) over HTTP."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from tenantry.db.models import AuditEvent, ClientUser
from tenantry.mail import LogMailer
from tests.concurrently import at_once
from tests.factories import PASSWORD, add_user, key_for, new_client, set_status


def users_url(client_id: int) -> str:
    return f"/api/1/clients/{client_id}/users"


def post_user(http, partner, client_id, email="ann@client.test", **body):
    body = {"email": email, "name": "Ann", "password": PASSWORD, **body}
    return http.post(users_url(client_id), json=body, headers=partner.headers)


def usage_users(http, partner, client_id) -> int:
    return http.get(f"/api/1/clients/{client_id}", headers=partner.headers).json()["usage"]["users"]


class TestWhichStatusesAllowUsers:
    # SPEC §4 "add or remove client users (seed)": setup ✗, trial ✓, trial_expired ✗, active ✓, disabled ✗
    @pytest.mark.parametrize(
        ("status", "allowed"),
        [("setup", False), ("trial", True), ("trial_expired", False), ("active", True), ("disabled", False)],
    )
    def test_adding_and_removing_a_user_follows_the_policy_table(self, http, partner, clock, status, allowed):
        created = {"setup": "setup", "trial": "trial", "trial_expired": "trial", "active": "active"}
        client_id = new_client(http, partner, created.get(status, "active"))
        existing = None
        if status != "setup":
            existing = add_user(http, partner, client_id, "first@client.test")
        if status == "disabled":
            set_status(http, partner, client_id, "disabled")
        if status == "trial_expired":
            clock.advance(timedelta(days=15))

        added = post_user(http, partner, client_id)
        assert added.status_code == (201 if allowed else 409)
        if not allowed:
            assert added.json()["code"] == "status_forbids"
            assert added.json()["client_status"] == status
        if existing is not None:
            removed = http.delete(f"{users_url(client_id)}/{existing['id']}", headers=partner.headers)
            assert removed.status_code == (204 if allowed else 409)

    def test_the_setup_refusal_names_the_status_and_the_action(self, http, partner):
        client_id = new_client(http, partner, "setup")
        refused = post_user(http, partner, client_id)
        assert refused.json()["detail"] == "Users cannot be added while the client is in Setup mode."
        assert http.get(users_url(client_id), headers=partner.headers).json()["total"] == 0

    def test_the_disabled_refusal_to_remove_says_so(self, http, partner):
        client_id = new_client(http, partner, "active")
        user = add_user(http, partner, client_id, "a@client.test")
        set_status(http, partner, client_id, "disabled")
        refused = http.delete(f"{users_url(client_id)}/{user['id']}", headers=partner.headers)
        assert refused.json()["detail"] == "Users cannot be removed while the client is disabled."


class TestAllocation:
    def test_a_user_beyond_the_allocation_is_refused_and_usage_stays_in_step(self, http, partner):
        client_id = new_client(http, partner, "trial", users=2)
        add_user(http, partner, client_id, "a@client.test")
        second = add_user(http, partner, client_id, "b@client.test")
        refused = post_user(http, partner, client_id, "c@client.test")
        assert refused.status_code == 409
        assert refused.json()["code"] == "allocation_exceeded"
        assert usage_users(http, partner, client_id) == 2
        http.delete(f"{users_url(client_id)}/{second['id']}", headers=partner.headers)
        assert usage_users(http, partner, client_id) == 1
        assert post_user(http, partner, client_id, "c@client.test").status_code == 201

    def test_an_email_is_unique_within_a_client_only(self, http, partner):
        first = new_client(http, partner, "trial")
        second = new_client(http, partner, "trial")
        assert post_user(http, partner, first, "Same@Client.test").status_code == 201
        duplicate = post_user(http, partner, first, "same@client.test")
        assert duplicate.status_code == 409
        assert duplicate.json()["code"] == "duplicate"
        assert post_user(http, partner, second, "same@client.test").status_code == 201

    @pytest.mark.parametrize(
        "body",
        [
            {"email": "not-an-email", "name": "A"},
            {"email": "a@b.test", "name": "A", "role": "owner"},
            {"email": "a@b.test", "name": "A", "password": "short"},
            {"email": "a@b.test", "name": "A", "extra": 1},
        ],
    )
    def test_a_malformed_user_is_a_422_and_adds_nothing(self, http, partner, body):
        client_id = new_client(http, partner, "trial")
        assert http.post(users_url(client_id), json=body, headers=partner.headers).status_code == 422
        assert usage_users(http, partner, client_id) == 0


class TestRoles:
    def test_a_client_admin_manages_the_users_of_its_own_client_and_a_member_sees_none_of_them(
        self, http, partner
    ):
        client_id = new_client(http, partner, "trial")
        admin = add_user(http, partner, client_id, "admin@client.test", role="admin")
        member = add_user(http, partner, client_id, "member@client.test", role="member")
        admin_key = key_for(http, partner, client_id, admin["id"])
        member_key = key_for(http, partner, client_id, member["id"])
        body = {"email": "new@client.test", "name": "New"}
        assert http.post(users_url(client_id), json=body, headers=member_key).status_code == 403
        listed = http.get(users_url(client_id), headers=member_key)
        assert (listed.status_code, listed.json()["code"]) == (403, "forbidden")
        assert "admin@client.test" not in listed.text
        assert http.get(users_url(client_id), headers=admin_key).json()["total"] == 2
        assert http.post(users_url(client_id), json=body, headers=admin_key).status_code == 201
        assert http.delete(f"{users_url(client_id)}/{admin['id']}", headers=admin_key).status_code == 403
        assert http.delete(f"{users_url(client_id)}/{member['id']}", headers=admin_key).status_code == 204

    def test_two_client_admins_removing_and_demoting_each_other_at_once_always_leave_the_client_an_admin(
        self, http, server_url, partner, db
    ):
        """The first admin removes the second while the second demotes the first. Whichever runs
        first, the other is refused: a request authenticated as an admin acts with the role the
        caller has once the partner is locked, not the one it had when it arrived."""
        client_id = new_client(http, partner, "trial", users=9)
        first = add_user(http, partner, client_id, "first@client.test", role="admin")
        first_key = key_for(http, partner, client_id, first["id"])
        outcomes = []
        for n in range(6):
            promoted = http.patch(
                f"{users_url(client_id)}/{first['id']}", json={"role": "admin"}, headers=partner.headers
            )
            assert promoted.status_code == 200
            second = add_user(http, partner, client_id, f"second-{n}@client.test", role="admin")
            second_key = key_for(http, partner, client_id, second["id"])
            answers = at_once(
                server_url,
                lambda i, second_key=second_key: first_key if i == 0 else second_key,
                lambda client, _, i, second=second: (
                    client.delete(f"{users_url(client_id)}/{second['id']}")
                    if i == 0
                    else client.patch(f"{users_url(client_id)}/{first['id']}", json={"role": "member"})
                ),
                threads=2,
                rounds=1,
            )
            db.rollback()
            roles = db.scalars(
                select(ClientUser.role).where(ClientUser.id.in_([first["id"], second["id"]]))
            ).all()
            outcomes.append((tuple(sorted(a.status_code for a in answers)), tuple(sorted(roles))))
        # Either the removal ran first (the demotion is refused, or its key is gone before it is
        # read: 401) or the demotion did (the removal is refused).
        expected = {((204, 401), ("admin",)), ((204, 403), ("admin",)), ((200, 403), ("admin", "member"))}
        assert set(outcomes) <= expected, outcomes

    def test_every_change_is_audited(self, http, partner, db):
        client_id = new_client(http, partner, "trial")
        user = add_user(http, partner, client_id, "a@client.test")
        http.delete(f"{users_url(client_id)}/{user['id']}", headers=partner.headers)
        actions = db.scalars(select(AuditEvent.action).where(AuditEvent.client_id == client_id)).all()
        assert "client_user.added" in actions
        assert "client_user.removed" in actions


class TestInvitations:
    @pytest.fixture
    def invite(self, smtp_server, send_mail):
        def invite(http, partner):
            client_id = new_client(http, partner, "trial")
            response = post_user(http, partner, client_id, "invitee@client.test", password=None)
            body = {k: v for k, v in response.json().items()}
            assert smtp_server.messages == []  # queued by the request, sent by the worker
            assert send_mail() == 1
            [message] = smtp_server.messages
            text = message.get_body(("plain",)).get_content()
            link = re.search(r"https?://\S+/invite/(\S+)", text).group(0)
            return client_id, body, message, link

        return invite

    def test_a_user_without_a_password_gets_a_one_time_link_by_email(
        self, smtp_http, partner, invite, settings
    ):
        _, body, message, link = invite(smtp_http, partner)
        assert body["invitation"] == {"queued": True, "delivered": False, "reason": None}
        assert body["password_set"] is False
        assert message["To"] == "invitee@client.test"
        assert link.startswith(settings.base_url + "/invite/")
        assert len(link.rsplit("/", 1)[1]) >= 43  # 256 random bits, URL-safe

    def test_the_link_sets_the_password_once(self, smtp_http, partner, invite):
        client_id, _, _, link = invite(smtp_http, partner)
        path = "/invite/" + link.rsplit("/", 1)[1]
        page = smtp_http.get(path)
        assert page.status_code == 200
        assert 'for="password"' in page.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        form = {"password": "my new password", "confirm": "my new password", "csrf_token": csrf}
        done = smtp_http.post(path, data=form)
        assert done.status_code == 200
        assert "Your password is set" in done.text
        [user] = smtp_http.get(users_url(client_id), headers=partner.headers).json()["items"]
        assert user["password_set"] is True
        assert smtp_http.post(path, data=form).status_code == 404
        assert smtp_http.get(path).status_code == 404

    def test_an_invitation_expires_after_seven_days(self, smtp_http, partner, invite, clock):
        *_, link = invite(smtp_http, partner)
        clock.advance(timedelta(days=7))
        assert smtp_http.get("/invite/" + link.rsplit("/", 1)[1]).status_code == 404

    def test_an_invitation_form_without_its_csrf_token_is_refused(self, smtp_http, partner, invite):
        client_id, _, _, link = invite(smtp_http, partner)
        path = "/invite/" + link.rsplit("/", 1)[1]
        smtp_http.get(path)
        refused = smtp_http.post(path, data={"password": "my new password", "confirm": "my new password"})
        assert refused.status_code == 403
        [user] = smtp_http.get(users_url(client_id), headers=partner.headers).json()["items"]
        assert user["password_set"] is False

    def test_without_smtp_the_answer_says_the_invitation_was_not_delivered(self, http, partner):
        client_id = new_client(http, partner, "trial")
        body = post_user(http, partner, client_id, password=None).json()
        assert body["invitation"] == {"queued": False, "delivered": False, "reason": LogMailer.REASON}

    def test_a_user_given_a_password_gets_no_invitation(self, http, partner):
        client_id = new_client(http, partner, "trial")
        body = post_user(http, partner, client_id).json()
        assert body["invitation"] is None
        assert body["password_set"] is True
