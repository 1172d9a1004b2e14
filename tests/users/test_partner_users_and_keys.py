"""Partner users, API keys and `/me` (SPEC §8, §9) over HTTP."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from tenantry.db.models import ApiKey, PartnerUser
from tests.concurrently import at_once
from tests.content import partner_user_headers
from tests.factories import add_user, client_with_user, csrf_of, key_for, new_client, sign_in

ROUNDS = 8
BODY = {"email": "editor@partner.test", "name": "Ed", "role": "editor", "password": "a long secret 2"}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


class TestPartnerUsers:
    def test_an_admin_adds_lists_and_removes_partner_users(self, http, partner):
        added = http.post("/api/1/partner/users", json=BODY, headers=partner.headers)
        assert added.status_code == 201
        user = added.json()
        assert (user["email"], user["role"], user["password_set"]) == ("editor@partner.test", "editor", True)
        listed = http.get("/api/1/partner/users", headers=partner.headers).json()
        assert [u["email"] for u in listed["items"]][1:] == ["editor@partner.test"]
        assert listed["total"] == 2
        assert http.delete(f"/api/1/partner/users/{user['id']}", headers=partner.headers).status_code == 204
        assert http.get("/api/1/partner/users", headers=partner.headers).json()["total"] == 1

    def test_partner_users_count_against_the_plans_users(self, http, make_partner):
        partner = make_partner(users=2)
        assert http.post("/api/1/partner/users", json=BODY, headers=partner.headers).status_code == 201
        pool = http.get("/api/1/partner", headers=partner.headers).json()["pool"]["users"]
        assert (pool["used_by_partner"], pool["remaining"]) == (2, 0)
        refused = http.post(
            "/api/1/partner/users", json={**BODY, "email": "x@p.test"}, headers=partner.headers
        )
        assert refused.status_code == 409
        assert refused.json()["code"] == "pool_exhausted"

    def test_a_partner_user_email_is_unique_across_the_product(self, http, partner, make_partner):
        assert http.post("/api/1/partner/users", json=BODY, headers=partner.headers).status_code == 201
        other = make_partner()
        duplicate = http.post("/api/1/partner/users", json=BODY, headers=other.headers)
        assert duplicate.status_code == 409
        assert duplicate.json()["code"] == "duplicate"

    def test_only_admins_add_or_remove_partner_users_and_no_one_removes_themself(self, http, partner):
        editor = http.post("/api/1/partner/users", json=BODY, headers=partner.headers).json()
        key = http.post("/api/1/me/api-keys", json={"name": "admin's"}, headers=partner.headers).json()
        assert key["secret"]
        editor_key = self._key_of(http, editor["email"])
        assert (
            http.post(
                "/api/1/partner/users", json={**BODY, "email": "v@p.test"}, headers=editor_key
            ).status_code
            == 403
        )
        assert (
            http.delete(f"/api/1/partner/users/{partner.admin_user_id}", headers=editor_key).status_code
            == 403
        )
        themself = http.delete(f"/api/1/partner/users/{partner.admin_user_id}", headers=partner.headers)
        assert themself.status_code == 403

    def _key_of(self, http, email: str) -> dict[str, str]:
        sign_in(http, email, BODY["password"])
        csrf = csrf_of(http.get("/partner").text)
        created = http.post("/api/1/me/api-keys", json={"name": "mine"}, headers={"X-CSRF-Token": csrf})
        assert created.status_code == 201, created.text
        http.cookies.clear()
        return bearer(created.json()["secret"])

    @pytest.mark.parametrize("role", ["viewer", "editor"])
    def test_another_partners_user_is_not_found_whatever_the_role(
        self, http, partner, make_partner, db, clock, role
    ):
        other = make_partner()
        target = f"/api/1/partner/users/{other.admin_user_id}"
        headers = partner_user_headers(db, clock, partner, role)
        assert http.patch(target, json={"role": "viewer"}, headers=headers).status_code == 404
        assert http.delete(target, headers=headers).status_code == 404
        assert http.post(f"{target}/resend-invitation", headers=headers).status_code == 404
        [admin] = http.get("/api/1/partner/users", headers=other.headers).json()["items"]
        assert admin["role"] == "admin"


class TestAdminsActingOnEachOtherAtOnce:
    def test_two_admins_removing_and_demoting_each_other_at_once_always_leave_the_partner_an_admin(
        self, server_url, partner, add_partner_user, database, db
    ):
        """The first admin removes the second while the second demotes the first. Whichever runs
        first, the other is refused (403): a request authenticated as an admin acts with the role
        the caller has once the partner is locked, not the one it had when it arrived."""
        outcomes = []
        for _ in range(ROUNDS):
            with database.session(write=True) as session:
                session.get(PartnerUser, partner.admin_user_id).role = "admin"
                session.commit()
            second = add_partner_user(partner, "admin")
            with httpx.Client(base_url=server_url, headers=second) as http:
                second_id = http.get("/api/1/me").json()["user"]["id"]
            answers = at_once(
                server_url,
                lambda i, second=second: partner.headers if i == 0 else second,
                lambda http, _, i, second_id=second_id: (
                    http.delete(f"/api/1/partner/users/{second_id}")
                    if i == 0
                    else http.patch(f"/api/1/partner/users/{partner.admin_user_id}", json={"role": "viewer"})
                ),
                threads=2,
                rounds=1,
            )
            db.rollback()
            roles = db.scalars(
                select(PartnerUser.role).where(PartnerUser.id.in_([partner.admin_user_id, second_id]))
            ).all()
            outcomes.append((tuple(sorted(a.status_code for a in answers)), tuple(sorted(roles))))
        # Either the removal ran first (the demotion is refused, or its key is gone before it is
        # read: 401) or the demotion did (the removal is refused).
        expected = {((204, 401), ("admin",)), ((204, 403), ("admin",)), ((200, 403), ("admin", "viewer"))}
        assert set(outcomes) <= expected, outcomes


class TestApiKeys:
    def test_the_secret_is_shown_once_and_lists_show_the_prefix_only(self, http, partner, db):
        created = http.post("/api/1/me/api-keys", json={"name": "ci"}, headers=partner.headers)
        assert created.status_code == 201
        key = created.json()
        assert key["secret"].startswith(f"tnt_{key['prefix']}_")
        listed = http.get("/api/1/me/api-keys", headers=partner.headers).json()
        assert listed["total"] == 2
        assert all("secret" not in item for item in listed["items"])
        assert http.get("/api/1/me", headers=bearer(key["secret"])).status_code == 200
        stored = db.scalars(select(ApiKey.secret_hash).where(ApiKey.id == key["id"])).one()
        assert key["secret"] not in stored

    def test_a_revoked_key_stops_working_at_once(self, http, partner):
        key = http.post("/api/1/me/api-keys", json={"name": "ci"}, headers=partner.headers).json()
        assert (
            http.delete(f"/api/1/me/api-keys/{key['id']}", headers=bearer(key["secret"])).status_code == 204
        )
        assert http.get("/api/1/me", headers=bearer(key["secret"])).status_code == 401
        listed = http.get("/api/1/me/api-keys", headers=partner.headers).json()["items"]
        assert [k["revoked_at"] is not None for k in listed] == [False, True]

    def test_a_client_key_sees_only_its_own_client(self, http, partner, clock):
        mine, _, headers = client_with_user(http, partner, clock, "active", "a@client.test")
        other = new_client(http, partner, "active")
        assert http.get(f"/api/1/clients/{mine}", headers=headers).status_code == 200
        assert http.get(f"/api/1/clients/{other}", headers=headers).status_code == 404
        assert http.get(f"/api/1/clients/{other}/users", headers=headers).status_code == 404

    @pytest.mark.parametrize(
        ("status", "code", "detail"),
        [
            (
                "disabled",
                "account_suspended",
                "Your account has been suspended. Please contact your account administrator.",
            ),
            (
                "trial_expired",
                "trial_ended",
                "Your trial has ended. Please contact your account administrator.",
            ),
        ],
    )
    def test_a_client_key_works_only_in_trial_and_active(self, http, partner, clock, status, code, detail):
        _, _, headers = client_with_user(http, partner, clock, status, "a@client.test")
        refused = http.get("/api/1/me", headers=headers)
        assert refused.status_code == 403
        assert (refused.json()["code"], refused.json()["detail"]) == (code, detail)

    def test_only_partner_admins_and_editors_create_keys_for_client_users(self, http, partner, clock):
        client_id, user, headers = client_with_user(http, partner, clock, "trial", "a@client.test")
        path = f"/api/1/clients/{client_id}/users/{user['id']}/api-keys"
        assert http.post(path, json={"name": "x"}, headers=headers).status_code == 403
        assert http.post(path, json={"name": "x"}, headers=partner.headers).status_code == 201


class TestMe:
    def test_a_partner_key_is_a_partner_user_with_no_client(self, http, partner):
        me = http.get("/api/1/me", headers=partner.headers).json()
        assert me["user"]["id"] == partner.admin_user_id
        assert (me["user"]["kind"], me["user"]["role"], me["client"]) == ("partner_user", "admin", None)

    def test_a_client_key_sees_its_user_and_client_with_the_trial_clock(self, http, partner, clock):
        client_id, user, headers = client_with_user(http, partner, clock, "trial", "a@client.test")
        me = http.get("/api/1/me", headers=headers).json()
        assert me["user"] == {
            "id": user["id"],
            "kind": "client_user",
            "email": "a@client.test",
            "name": "a",
            "role": "admin",
            "partner_id": partner.id,
        }
        assert me["client"]["id"] == client_id
        assert (me["client"]["status"], me["client"]["effective_status"]) == ("trial", "trial")
        assert me["client"]["trial"]["days_remaining"] == 14

    def test_a_member_key_cannot_add_users(self, http, partner):
        client_id = new_client(http, partner, "trial")
        member = add_user(http, partner, client_id, "m@client.test", role="member")
        headers = key_for(http, partner, client_id, member["id"])
        body = {"email": "x@client.test", "name": "X"}
        assert http.post(f"/api/1/clients/{client_id}/users", json=body, headers=headers).status_code == 403
