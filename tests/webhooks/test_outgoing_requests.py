"""A webhook cannot be aimed at the server's own network (SPEC §12 "Outgoing requests"), and its
delivery log tells nothing about what listens there. The guard here is as it ships."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from tenantry.db.worker_models import EventDelivery
from tenantry.outbound import Guard
from tests.content import make_client
from tests.servers import port_of


class TestWebhooks:
    @pytest.mark.parametrize(
        "spelling",
        [
            "http://127.0.0.1:{port}/hook",
            "http://127.1:{port}/hook",
            "http://2130706433:{port}/hook",
            "http://0177.0.0.1:{port}/hook",
            "http://0x7f000001:{port}/hook",
            "http://[::ffff:127.0.0.1]:{port}/hook",
            "http://0.0.0.0:{port}/hook",
            "http://evil@127.0.0.1:{port}/hook",
            "http://169.254.169.254/latest/meta-data/",
        ],
    )
    def test_an_internal_address_in_any_spelling_is_refused_and_nothing_is_created(
        self, guarded_http, partner, receiver, spelling
    ):
        url = spelling.format(port=port_of(receiver.url))
        response = guarded_http.post("/api/1/webhooks", json={"url": url}, headers=partner.headers)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "validation_error"
        assert guarded_http.get("/api/1/webhooks", headers=partner.headers).json()["total"] == 0

    def test_a_name_that_resolves_to_loopback_is_never_posted_to_and_fails_at_once(
        self, guarded_http, partner, receiver, make_worker, database
    ):
        url = f"http://localhost:{port_of(receiver.url)}/hook"
        created = guarded_http.post("/api/1/webhooks", json={"url": url}, headers=partner.headers)
        assert created.status_code == 201, created.text
        make_client(guarded_http, partner, "trial")
        make_worker(guard=Guard()).run_once()
        log = guarded_http.get(f"/api/1/webhooks/{created.json()['id']}/deliveries", headers=partner.headers)
        (item,) = log.json()["items"]
        assert (item["status"], item["attempts"], item["last_status_code"], item["last_error"]) == (
            "failed",
            1,
            None,
            "address not allowed",
        )
        assert item["next_attempt_at"] is None
        assert receiver.received == []
        with database.session() as db:
            hooks = select(EventDelivery.status).where(EventDelivery.channel == "webhook")
            assert db.scalars(hooks).all() == ["failed"]

    @pytest.mark.parametrize("host", ["\U0001f4a9.la", "xn--ls8h.la"])
    def test_a_host_name_no_request_can_be_built_for_is_refused_at_creation(
        self, guarded_http, partner, host
    ):
        response = guarded_http.post(
            "/api/1/webhooks", json={"url": f"http://{host}/hook"}, headers=partner.headers
        )
        assert response.status_code == 422, response.text
        assert "international domain name" in response.json()["detail"]
        assert guarded_http.get("/api/1/webhooks", headers=partner.headers).json()["total"] == 0

    def test_one_stored_before_that_fails_at_once_instead_of_crashing_its_delivery_for_ever(
        self, http, partner, receiver, make_worker, database
    ):
        created = http.post("/api/1/webhooks", json={"url": receiver.url}, headers=partner.headers)
        assert created.status_code == 201, created.text
        with database.session() as db:  # as an earlier release let it be stored
            db.execute(text("UPDATE webhooks SET url = 'http://xn--ls8h.la/hook'"))
            db.commit()
        make_client(http, partner, "trial")
        worker = make_worker(guard=Guard(resolve=lambda host, port: ["127.0.0.1"]))
        worker.run_once()
        log = http.get(f"/api/1/webhooks/{created.json()['id']}/deliveries", headers=partner.headers)
        (item,) = log.json()["items"]
        assert (item["status"], item["attempts"], item["last_error"]) == ("failed", 1, "address not allowed")
        assert receiver.received == []
