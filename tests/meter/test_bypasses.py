"""Ways around the meter, tried from outside: every one must end in a refusal (SPEC §12, the meter)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient

from tenantry.app import create_app
from tenantry.db.models import PartnerUser
from tests.factories import PASSWORD, add_user, client_with_user, csrf_of, key_for, new_client, sign_in


def signed_in_client_user(http, partner, clock, calls: int) -> tuple[int, dict[str, str]]:
    """A client allowed `calls` a day and its user signed in on `http`; returns its id and key."""
    client_id, _, key = client_with_user(
        http, partner, clock, "active", "user@client.test", api_calls_per_day=calls
    )
    assert sign_in(http, "user@client.test", PASSWORD).status_code == 303
    return client_id, key


def session_call(http, method: str = "GET", path: str = "/api/1/me", **kwargs):
    """A call to the JSON API with the browser's session cookie (and its CSRF header when writing)."""
    headers = {}
    if method != "GET":
        headers["X-CSRF-Token"] = csrf_of(http.get("/app").text)
    return http.request(method, path, headers=headers, **kwargs)


class TestBrowserSessions:
    def test_a_client_users_session_gets_nothing_when_no_call_is_allowed(self, http, partner, clock):
        signed_in_client_user(http, partner, clock, 0)
        refused = session_call(http)
        assert refused.status_code == 429
        assert refused.json()["code"] == "daily_api_limit_reached"
        assert refused.headers["RateLimit-Policy"] == '"daily";q=0;w=86400'

    def test_session_calls_and_key_calls_draw_on_the_same_daily_allocation(self, http, partner, clock):
        client_id, key = signed_in_client_user(http, partner, clock, 3)
        assert http.get("/api/1/me", headers=key).headers["X-RateLimit-Remaining"] == "2"
        read = session_call(http)
        assert (read.status_code, read.headers["X-RateLimit-Remaining"]) == (200, "1")
        written = session_call(http, "POST", "/api/1/me/api-keys", json={"name": "from the browser"})
        assert (written.status_code, written.headers["X-RateLimit-Remaining"]) == (201, "0")
        assert session_call(http).status_code == 429
        assert http.get("/api/1/me", headers=key).status_code == 429
        http.cookies.clear()
        usage = http.get(f"/api/1/clients/{client_id}", headers=partner.headers).json()["usage"]
        assert usage["api_calls_today"] == 3

    def test_a_refused_session_write_changes_nothing(self, http, partner, clock):
        signed_in_client_user(http, partner, clock, 0)
        refused = session_call(http, "POST", "/api/1/me/api-keys", json={"name": "sneaky"})
        assert refused.status_code == 429
        http.cookies.clear()
        sign_in(http, "user@client.test", PASSWORD)
        assert "sneaky" not in http.get("/app").text

    def test_a_session_of_a_suspended_client_is_refused_and_not_counted(self, http, partner, clock):
        client_id, _ = signed_in_client_user(http, partner, clock, 5)
        assert session_call(http).status_code == 200
        http.patch(f"/api/1/clients/{client_id}", json={"status": "disabled"}, headers=partner.headers)
        assert session_call(http).status_code == 403
        http.cookies.clear()
        usage = http.get(f"/api/1/clients/{client_id}", headers=partner.headers).json()["usage"]
        assert usage["api_calls_today"] == 1

    def test_a_partner_users_session_stays_unmetered_while_partner_keys_are_metered(
        self, http, make_partner, clock, db
    ):
        partner = make_partner(users=10, dashboards=10, api_calls_per_day=5)
        new_client(http, partner, "trial", api_calls_per_day=5)  # nothing left for partner keys
        assert http.get("/api/1/partner", headers=partner.headers).status_code == 429
        admin = db.get(PartnerUser, partner.admin_user_id)
        assert sign_in(http, admin.email, "correct horse battery").status_code == 303
        read = http.get("/api/1/partner")
        assert read.status_code == 200
        assert "RateLimit-Policy" not in read.headers
        csrf = csrf_of(http.get("/partner").text)
        created = http.post(
            "/api/1/clients", json={"name": "From the console"}, headers={"X-CSRF-Token": csrf}
        )
        assert created.status_code == 201


class TestTimezoneChanges:
    def test_cycling_the_timezone_never_opens_a_fresh_day(self, http, partner, clock):
        # 11:00 UTC on 10 March is still the 9th at UTC-12 and already the 11th at UTC+14.
        clock.set(datetime(2026, 3, 10, 11, 0, tzinfo=UTC))
        _, _, key = client_with_user(http, partner, clock, "active", "a@client.test", api_calls_per_day=3)
        allowed = 0
        for zone in ("UTC", "Pacific/Kiritimati", "Etc/GMT+12", "UTC", "Pacific/Kiritimati"):
            changed = http.patch("/api/1/partner", json={"timezone": zone}, headers=partner.headers)
            assert changed.status_code == 200
            assert changed.json()["timezone"] == zone
            allowed += sum(http.get("/api/1/me", headers=key).status_code == 200 for _ in range(4))
        assert allowed == 3

    def test_the_new_timezone_takes_over_the_meter_when_the_next_month_begins(self, http, partner, clock):
        _, _, key = client_with_user(http, partner, clock, "active", "a@client.test", api_calls_per_day=1)
        http.patch("/api/1/partner", json={"timezone": "Pacific/Kiritimati"}, headers=partner.headers)
        today = http.get("/api/1/me", headers=key)
        assert today.headers["X-RateLimit-Reset"] == str(int(datetime(2026, 3, 11, tzinfo=UTC).timestamp()))
        # March is counted in UTC to its end; April's first day, in Kiritimati (UTC+14), begins
        # there and ends at its own midnight, 10:00 UTC.
        clock.set(datetime(2026, 3, 31, 23, 59, tzinfo=UTC))
        assert http.get("/api/1/me", headers=key).status_code == 200
        clock.set(datetime(2026, 4, 1, 0, 0, tzinfo=UTC))
        first = http.get("/api/1/me", headers=key)
        assert first.status_code == 200
        assert first.headers["X-RateLimit-Reset"] == str(
            int(datetime(2026, 4, 1, 10, tzinfo=UTC).timestamp())
        )
        clock.set(datetime(2026, 4, 1, 9, 59, tzinfo=UTC))
        assert http.get("/api/1/me", headers=key).status_code == 429
        clock.set(datetime(2026, 4, 1, 10, 0, tzinfo=UTC))
        assert http.get("/api/1/me", headers=key).status_code == 200

    def test_the_clients_calls_today_are_read_on_the_meters_day(self, http, partner, clock):
        client_id, _, key = client_with_user(
            http, partner, clock, "active", "a@client.test", api_calls_per_day=9
        )
        for _ in range(2):
            http.get("/api/1/me", headers=key)
        http.patch("/api/1/partner", json={"timezone": "Pacific/Kiritimati"}, headers=partner.headers)
        one = http.get(f"/api/1/clients/{client_id}", headers=partner.headers).json()
        listed = http.get("/api/1/clients", headers=partner.headers).json()["items"]
        assert one["usage"]["api_calls_today"] == 2
        assert [c["usage"]["api_calls_today"] for c in listed if c["id"] == client_id] == [2]


class TestBurstPerClient:
    def test_every_key_and_session_of_a_client_share_one_burst_limit(
        self, settings, clock, database, make_partner
    ):
        app = create_app(
            settings.model_copy(update={"api_burst_per_second": 5}), clock=clock, database=database
        )
        with TestClient(app) as http:
            partner = make_partner(users=10, dashboards=10, api_calls_per_day=1000)
            client_id, user, first_key = client_with_user(
                http, partner, clock, "active", "user@client.test", api_calls_per_day=100
            )
            second_key = key_for(http, partner, client_id, user["id"])
            other_user = add_user(http, partner, client_id, "other@client.test")
            third_key = key_for(http, partner, client_id, other_user["id"])
            _, _, elsewhere = client_with_user(http, partner, clock, "active", "b@client.test")
            assert sign_in(http, "user@client.test", PASSWORD).status_code == 303
            # Six requests of one client, well within one second (a pause would only make it flaky).
            statuses = [http.get("/api/1/me", headers=first_key).status_code for _ in range(3)]
            statuses += [http.get("/api/1/me", headers=second_key).status_code]
            statuses += [http.get("/api/1/me").status_code]  # the browser session
            refused = http.get("/api/1/me", headers=third_key)
            assert statuses == [200] * 5
            assert (refused.status_code, refused.json()["code"]) == (429, "rate_limited")
            assert http.get("/api/1/me").status_code == 429
            # Another client of the same partner is not slowed down by this one.
            assert http.get("/api/1/me", headers=elsewhere).status_code == 200
