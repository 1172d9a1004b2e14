"""E-mailing a dashboard is not an open relay (SPEC §12 "Who reads what"): read-only roles send
only to users of their own account, and every user sends to at most 50 recipients a day."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tenantry.db.worker_models import OutboxMail
from tests.content import client_key, dashboard_in, partner_user_headers, portal_dashboard, share


def email(http, headers, dashboard_id, *to):
    return http.post(f"/api/1/dashboards/{dashboard_id}/email", json={"to": list(to)}, headers=headers)


def queued(database) -> int:
    with database.session() as db:
        return int(db.scalar(select(func.count()).select_from(OutboxMail)) or 0)


def addresses(n: int, start: int = 0) -> list[str]:
    return [f"reader{i}@elsewhere.test" for i in range(start, start + n)]


class TestReadOnlyRoles:
    def test_a_partner_viewer_emails_only_the_partners_users(self, smtp_http, partner, db, clock, database):
        _, _, dashboard_id = dashboard_in(smtp_http, partner, "active")
        viewer = partner_user_headers(db, clock, partner, "viewer")
        refused = email(smtp_http, viewer, dashboard_id, "viewer@partner.test", "anyone@elsewhere.test")
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "forbidden"
        assert "anyone@elsewhere.test" in refused.json()["detail"]
        assert queued(database) == 0
        assert email(smtp_http, viewer, dashboard_id, "Viewer@Partner.test").status_code == 202
        assert queued(database) == 1

    def test_a_client_member_emails_only_the_clients_users(self, smtp_http, partner, db, clock, database):
        client_id, _, dashboard_id = dashboard_in(smtp_http, partner, "active")
        member_id, member = client_key(db, clock, partner, client_id, "member")
        client_key(db, clock, partner, client_id, "admin")
        shared = smtp_http.put(
            f"/api/1/dashboards/{dashboard_id}/shares",
            json={"user_ids": [member_id]},
            headers=partner.headers,
        )
        assert shared.status_code == 200, shared.text
        for outside in ("anyone@elsewhere.test", "viewer@partner.test"):
            refused = email(smtp_http, member, dashboard_id, outside)
            assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
        assert queued(database) == 0
        assert (
            email(smtp_http, member, dashboard_id, "member@client.test", "admin@client.test").status_code
            == 202
        )

    def test_an_admin_or_editor_emails_anyone(self, smtp_http, partner, db, clock):
        _, _, dashboard_id = dashboard_in(smtp_http, partner, "active")
        editor = partner_user_headers(db, clock, partner, "editor")
        assert email(smtp_http, editor, dashboard_id, "anyone@elsewhere.test").status_code == 202
        assert email(smtp_http, partner.headers, dashboard_id, "anyone@elsewhere.test").status_code == 202


class TestDailyLimit:
    def test_a_user_emails_at_most_50_recipients_a_day(self, smtp_http, partner, clock, database):
        _, _, dashboard_id = dashboard_in(smtp_http, partner, "active")
        for n in range(2):
            assert email(smtp_http, partner.headers, dashboard_id, *addresses(20, 20 * n)).status_code == 202
        assert email(smtp_http, partner.headers, dashboard_id, *addresses(10, 40)).status_code == 202
        clock.advance(hours=1)
        refused = email(smtp_http, partner.headers, dashboard_id, "one.more@elsewhere.test")
        assert refused.status_code == 429
        assert refused.headers["content-type"].startswith("application/problem+json")
        problem = refused.json()
        assert (problem["code"], problem["limit"], problem["remaining"]) == ("email_limit_reached", 50, 0)
        assert refused.headers["retry-after"] == str(23 * 3600)
        assert queued(database) == 3
        clock.advance(hours=23)
        assert email(smtp_http, partner.headers, dashboard_id, "one.more@elsewhere.test").status_code == 202

    def test_a_refusal_to_wait_is_not_replayed_to_a_retry_with_the_same_idempotency_key(
        self, smtp_http, partner, clock, database
    ):
        _, _, dashboard_id = dashboard_in(smtp_http, partner, "active")
        for n in range(2):
            assert email(smtp_http, partner.headers, dashboard_id, *addresses(20, 20 * n)).status_code == 202
        assert email(smtp_http, partner.headers, dashboard_id, *addresses(10, 40)).status_code == 202
        clock.advance(hours=1)
        keyed = {**partner.headers, "Idempotency-Key": "one-more-report"}
        body = {"to": ["one.more@elsewhere.test"]}
        path = f"/api/1/dashboards/{dashboard_id}/email"
        refused = smtp_http.post(path, json=body, headers=keyed)
        assert (refused.status_code, refused.headers["retry-after"]) == (429, str(23 * 3600))
        clock.advance(hours=23)  # as Retry-After said: within the key's 24 hours
        retried = smtp_http.post(path, json=body, headers=keyed)
        assert retried.status_code == 202, retried.text
        assert "idempotent-replayed" not in retried.headers
        assert queued(database) == 4
        again = smtp_http.post(path, json=body, headers=keyed)  # and that answer is the one kept
        assert (again.status_code, again.headers["idempotent-replayed"]) == (202, "true")
        assert queued(database) == 4

    def test_recipients_are_counted_not_calls_and_the_same_address_once(self, smtp_http, partner, database):
        _, _, dashboard_id = dashboard_in(smtp_http, partner, "active")
        assert email(smtp_http, partner.headers, dashboard_id, *addresses(20)).status_code == 202
        assert email(smtp_http, partner.headers, dashboard_id, *addresses(20, 20)).status_code == 202
        twice = ["a@elsewhere.test", "A@elsewhere.test", *addresses(8, 40)]  # 9 recipients
        assert email(smtp_http, partner.headers, dashboard_id, *twice).status_code == 202
        refused = email(smtp_http, partner.headers, dashboard_id, *addresses(2, 60))
        assert (refused.status_code, refused.json()["remaining"]) == (429, 1)

    def test_the_limit_is_per_user(self, smtp_http, partner, db, clock):
        _, _, dashboard_id = dashboard_in(smtp_http, partner, "active")
        for n in range(2):
            email(smtp_http, partner.headers, dashboard_id, *addresses(20, 20 * n))
        email(smtp_http, partner.headers, dashboard_id, *addresses(10, 40))
        editor = partner_user_headers(db, clock, partner, "editor")
        assert email(smtp_http, editor, dashboard_id, "anyone@elsewhere.test").status_code == 202

    @pytest.mark.parametrize("hours", [0, 12])
    def test_the_portal_form_counts_against_the_same_limit(self, smtp_http, partner, clock, hours):
        from tests.factories import PASSWORD, client_with_user, csrf_of, sign_in

        client_id, user, headers = client_with_user(smtp_http, partner, clock, "active", "admin@client.test")
        board, _ = portal_dashboard(smtp_http, partner, client_id)
        share(smtp_http, partner, board, user["id"])
        for n in range(2):
            assert email(smtp_http, headers, board, *addresses(20, 20 * n)).status_code == 202
        assert email(smtp_http, headers, board, *addresses(10, 40)).status_code == 202
        clock.advance(timedelta(hours=hours))
        sign_in(smtp_http, "admin@client.test", PASSWORD)
        page = f"/app/dashboards/{board}"
        form = {"csrf_token": csrf_of(smtp_http.get(page).text), "to": "late@elsewhere.test", "format": "pdf"}
        smtp_http.post(f"{page}/email", data=form, follow_redirects=False)
        assert "at most 50 recipients a day" in smtp_http.get(page).text
