"""The webhooks API (SPEC §9): partner keys only, viewers read, other partners' webhooks 404."""

from __future__ import annotations

import pytest

from tests.content import client_key, make_client, partner_user_headers


def create(http, partner, url="https://example.test/hook", **body):
    return http.post("/api/1/webhooks", json={"url": url, **body}, headers=partner.headers)


class TestCreate:
    def test_a_webhook_is_created_with_a_secret_shown_only_once(self, http, partner):
        response = create(http, partner, events=["client.trial_ended", "client.status_changed"])
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["url"] == "https://example.test/hook"
        assert body["events"] == ["client.status_changed", "client.trial_ended"]
        assert body["secret"].startswith("whsec_") and len(body["secret"]) >= 40
        listed = http.get("/api/1/webhooks", headers=partner.headers).json()
        assert listed["total"] == 1
        assert "secret" not in listed["items"][0]

    def test_without_events_a_webhook_receives_every_type(self, http, partner):
        assert create(http, partner).json()["events"] == []

    @pytest.mark.parametrize(
        "body",
        [
            {"url": "ftp://example.test/hook"},
            {"url": "file:///etc/passwd"},
            {"url": "not a url"},
            {"url": "https://example.test/hook", "events": ["client.exploded"]},
            {"url": "https://example.test/hook", "extra": 1},
            # A URL parser drops tabs and line breaks and strips the rest: the hook would be made
            # at an address the caller never sent.
            {"url": "http://127.0.0.1:9/hook\x00x"},
            {"url": "http://127.0.0.1:9/hook\r\nx"},
            {"url": "http://127.0.0.1:9/hook\tx"},
            {"url": "http://127.0.0.1:9/hook\nx"},
        ],
    )
    def test_bad_input_is_refused_with_422_and_changes_nothing(self, http, partner, body):
        response = http.post("/api/1/webhooks", json=body, headers=partner.headers)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert http.get("/api/1/webhooks", headers=partner.headers).json()["total"] == 0


class TestAccess:
    def test_a_viewer_reads_but_cannot_create_or_delete(self, http, partner, db, clock):
        webhook_id = create(http, partner).json()["id"]
        headers = partner_user_headers(db, clock, partner, "viewer")
        assert http.get("/api/1/webhooks", headers=headers).json()["total"] == 1
        refused = http.post("/api/1/webhooks", json={"url": "https://example.test/h"}, headers=headers)
        assert refused.status_code == 403
        assert http.delete(f"/api/1/webhooks/{webhook_id}", headers=headers).status_code == 403
        assert http.get(f"/api/1/webhooks/{webhook_id}/deliveries", headers=headers).status_code == 200

    def test_a_client_key_is_refused(self, http, partner, db, clock):
        client_id = make_client(http, partner, "active")
        _, headers = client_key(db, clock, partner, client_id, "admin")
        assert http.get("/api/1/webhooks", headers=headers).status_code == 403
        refused = http.post("/api/1/webhooks", json={"url": "https://example.test/h"}, headers=headers)
        assert refused.status_code == 403

    def test_another_partners_webhook_is_not_found(self, http, partner, make_partner):
        webhook_id = create(http, partner).json()["id"]
        other = make_partner()
        assert http.get(f"/api/1/webhooks/{webhook_id}/deliveries", headers=other.headers).status_code == 404
        assert http.delete(f"/api/1/webhooks/{webhook_id}", headers=other.headers).status_code == 404
        assert http.get("/api/1/webhooks", headers=other.headers).json()["total"] == 0
        assert http.get("/api/1/webhooks", headers=partner.headers).json()["total"] == 1

    @pytest.mark.parametrize("role", ["viewer", "editor"])
    def test_another_partners_webhook_is_not_found_whatever_the_role(
        self, http, partner, make_partner, db, clock, role
    ):
        other = make_partner()
        webhook_id = create(http, other).json()["id"]
        headers = partner_user_headers(db, clock, partner, role)
        assert http.delete(f"/api/1/webhooks/{webhook_id}", headers=headers).status_code == 404
        assert http.get("/api/1/webhooks", headers=other.headers).json()["total"] == 1


class TestDelete:
    def test_a_deleted_webhook_is_gone_with_its_log(self, http, partner):
        webhook_id = create(http, partner).json()["id"]
        assert http.delete(f"/api/1/webhooks/{webhook_id}", headers=partner.headers).status_code == 204
        assert http.get("/api/1/webhooks", headers=partner.headers).json()["total"] == 0
        assert (
            http.get(f"/api/1/webhooks/{webhook_id}/deliveries", headers=partner.headers).status_code == 404
        )
