"""Delivering events to webhooks (SPEC §9): signed JSON, any 2xx is success, otherwise retried
with backoff for 24 hours; at least once, with the same event id on every attempt."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from tenantry.db.models import Event
from tenantry.db.worker_models import EventDelivery
from tenantry.events.service import dispatch_events
from tests.content import ACTIVE_RESOURCES, make_client
from tests.factories import set_status
from tests.queries import executions_sent


def subscribe(http, partner, receiver, **body):
    response = http.post("/api/1/webhooks", json={"url": receiver.url, **body}, headers=partner.headers)
    assert response.status_code == 201, response.text
    return response.json()


def deliveries(http, partner, webhook_id, **params):
    response = http.get(f"/api/1/webhooks/{webhook_id}/deliveries", params=params, headers=partner.headers)
    assert response.status_code == 200, response.text
    return response.json()


class TestSigned:
    def test_each_event_is_posted_as_signed_json(self, http, partner, clock, receiver, worker):
        hook = subscribe(http, partner, receiver)
        client_id = make_client(http, partner, "trial")
        worker.run_once()
        assert len(receiver.received) == 1
        got = receiver.received[0]
        body = got.json
        assert set(body) == {"id", "type", "created_at", "data"}
        assert body["type"] == "client.status_changed"
        assert body["data"]["client"]["id"] == client_id
        assert body["data"]["to"] == "trial"
        assert datetime.fromisoformat(body["created_at"]) == clock.now()
        assert got.headers["tenantry-event-id"] == body["id"]
        assert got.headers["content-type"] == "application/json"
        timestamp, v1 = (part.split("=", 1)[1] for part in got.headers["tenantry-signature"].split(","))
        assert int(timestamp) == int(clock.now().timestamp())
        expected = hmac.new(hook["secret"].encode(), f"{timestamp}.".encode() + got.raw, hashlib.sha256)
        assert hmac.compare_digest(v1, expected.hexdigest())
        log = deliveries(http, partner, hook["id"])
        assert log["total"] == 1
        assert log["items"][0]["status"] == "delivered"
        assert log["items"][0]["last_status_code"] == 200

    def test_a_status_change_sent_with_a_rename_carries_the_client_as_the_api_then_shows_it(
        self, http, partner, receiver, worker
    ):
        client_id = make_client(http, partner, "setup")
        worker.run_once()  # its creation's events, before the webhook exists
        subscribe(http, partner, receiver, events=["client.status_changed"])
        changed = http.patch(
            f"/api/1/clients/{client_id}",
            json={
                "name": "Renamed Ltd",
                "external_id": "ext-9",
                "status": "trial",
                "resources": ACTIVE_RESOURCES,
            },
            headers=partner.headers,
        )
        assert changed.status_code == 200, changed.text
        worker.run_once()
        (got,) = receiver.received
        client = got.json["data"]["client"]
        assert (client["status"], client["name"], client["external_id"]) == ("trial", "Renamed Ltd", "ext-9")
        assert client == {**changed.json(), "usage": client["usage"]}

    @pytest.mark.parametrize("target", ["active", "disabled"])
    def test_a_trial_that_ended_before_the_worker_noticed_still_sends_trial_ended_once(
        self, http, partner, clock, receiver, worker, target
    ):
        # SPEC §5: once at the end. The worker was down when the trial ended, and the partner acted first.
        client_id = make_client(http, partner, "trial")
        subscribe(http, partner, receiver, events=["client.trial_ended"])
        worker.run_once()
        clock.advance(timedelta(days=14, minutes=1))
        changed = http.patch(f"/api/1/clients/{client_id}", json={"status": target}, headers=partner.headers)
        assert changed.status_code == 200, changed.text
        worker.run_once()
        worker.run_once()  # the worker's own look at due trials writes it no second time
        (got,) = receiver.received
        assert got.json["type"] == "client.trial_ended"
        assert got.json["data"]["client"]["effective_status"] == "trial_expired"

    def test_a_trial_that_ended_before_the_worker_noticed_sends_trial_ended_when_its_client_is_deleted(
        self, http, partner, clock, receiver, worker
    ):
        # Once deleted, the client is never found by the worker's look at ended trials.
        client_id = make_client(http, partner, "trial")
        subscribe(http, partner, receiver, events=["client.trial_ended", "client.deleted"])
        worker.run_once()
        clock.advance(timedelta(days=14, minutes=1))
        assert http.delete(f"/api/1/clients/{client_id}", headers=partner.headers).status_code == 204
        worker.run_once()
        worker.run_once()
        assert sorted(r.json["type"] for r in receiver.received) == ["client.deleted", "client.trial_ended"]
        (ended,) = [r.json for r in receiver.received if r.json["type"] == "client.trial_ended"]
        assert ended["data"]["client"]["id"] == client_id

    def test_a_webhook_receives_only_the_types_it_asked_for(self, http, partner, clock, receiver, worker):
        subscribe(http, partner, receiver, events=["client.trial_ended"])
        make_client(http, partner, "trial")
        worker.run_once()
        assert receiver.received == []
        clock.advance(days=14)
        worker.run_once()
        assert [r.json["type"] for r in receiver.received] == ["client.trial_ended"]

    def test_another_partners_events_never_reach_a_webhook(
        self, http, partner, make_partner, receiver, worker
    ):
        subscribe(http, partner, receiver)
        other = make_partner()
        make_client(http, other, "trial")
        worker.run_once()
        assert receiver.received == []

    def test_every_transition_trial_event_and_deletion_is_delivered(
        self, http, partner, clock, receiver, worker
    ):
        subscribe(http, partner, receiver)
        client_id = make_client(http, partner, "trial")
        clock.advance(days=12)
        worker.run_once()
        # Events of one instant have no order among themselves: let time pass between changes.
        for change in (
            lambda: http.post(f"/api/1/clients/{client_id}/extend-trial", headers=partner.headers),
            lambda: set_status(http, partner, client_id, "active", resources=ACTIVE_RESOURCES),
            lambda: set_status(http, partner, client_id, "disabled"),
            lambda: http.delete(f"/api/1/clients/{client_id}", headers=partner.headers),
        ):
            clock.advance(seconds=1)
            change()
        while worker.run_once().busy:
            pass
        # Deliveries run concurrently and may arrive in any order: receivers order by created_at.
        received = sorted(receiver.received, key=lambda r: r.json["created_at"])
        assert [r.json["type"] for r in received] == [
            "client.status_changed",
            "client.trial_will_end",
            "client.trial_extended",
            "client.status_changed",
            "client.status_changed",
            "client.deleted",
        ]


class TestRetries:
    def test_a_failed_delivery_is_retried_with_backoff_under_the_same_event_id(
        self, http, partner, clock, receiver, worker
    ):
        hook = subscribe(http, partner, receiver)
        receiver.answers = [500, 503]
        make_client(http, partner, "trial")
        worker.run_once()
        worker.run_once()
        assert len(receiver.received) == 1
        clock.advance(seconds=30)
        worker.run_once()
        assert len(receiver.received) == 2
        clock.advance(seconds=59)
        worker.run_once()
        assert len(receiver.received) == 2
        clock.advance(seconds=1)
        worker.run_once()
        assert len(receiver.received) == 3
        assert len({r.headers["tenantry-event-id"] for r in receiver.received}) == 1
        item = deliveries(http, partner, hook["id"])["items"][0]
        assert (item["status"], item["attempts"], item["last_status_code"]) == ("delivered", 3, 200)

    def test_a_delivery_is_given_up_24_hours_after_the_event(
        self, http, partner, clock, receiver, worker, database
    ):
        hook = subscribe(http, partner, receiver)
        make_client(http, partner, "trial")
        receiver.answers = [500] * 1000
        start = clock.now()
        worker.run_once()
        while True:
            with database.session() as db:
                delivery = db.scalars(select(EventDelivery).where(EventDelivery.channel == "webhook")).one()
            if delivery.next_attempt_at is None:
                break
            clock.set(delivery.next_attempt_at)
            worker.run_once()
        assert delivery.status == "failed"
        assert delivery.last_attempt_at == start + timedelta(hours=24)
        attempts = len(receiver.received)
        assert 20 < attempts < 60
        clock.advance(days=2)
        worker.run_once()
        assert len(receiver.received) == attempts
        item = deliveries(http, partner, hook["id"])["items"][0]
        assert item["status"] == "failed" and "HTTP 500" in item["last_error"]

    def test_an_unreachable_receiver_is_retried_and_others_are_not_held_up(
        self, http, partner, receiver, worker
    ):
        broken = http.post(
            "/api/1/webhooks", json={"url": "http://127.0.0.1:1/nowhere"}, headers=partner.headers
        ).json()
        subscribe(http, partner, receiver)
        make_client(http, partner, "trial")
        worker.run_once()
        assert len(receiver.received) == 1
        item = deliveries(http, partner, broken["id"])["items"][0]
        assert (item["status"], item["last_error"]) == ("pending", "could not connect")

    def test_the_delivery_log_is_paginated_newest_first(self, http, partner, receiver, worker):
        hook = subscribe(http, partner, receiver)
        for _ in range(3):
            make_client(http, partner)
        worker.run_once()
        page = deliveries(http, partner, hook["id"], limit=2, offset=0)
        assert (page["total"], page["limit"], len(page["items"])) == (3, 2, 2)
        assert page["items"][0]["id"] > page["items"][1]["id"]
        assert len(deliveries(http, partner, hook["id"], limit=2, offset=2)["items"]) == 1


class TestSecrets:
    def test_a_claimed_delivery_shows_no_secret_where_a_traceback_would_print_it(
        self, http, partner, receiver, database, clock
    ):
        from tenantry.events.service import claim_delivery_jobs, dispatch_events

        hook = subscribe(http, partner, receiver)
        make_client(http, partner, "trial")
        with database.session(write=True) as db:
            dispatch_events(db, clock.now())
            jobs = claim_delivery_jobs(db, "w", clock.now(), timedelta(seconds=60), 5)
            db.rollback()
        (job,) = [j for j in jobs if j.channel == "webhook"]
        assert job.secret == hook["secret"]
        assert hook["secret"] not in repr(job)


class TestFanOut:
    def test_a_batch_of_events_is_marked_dispatched_in_one_statement_and_fanned_out_once(
        self, http, partner, receiver, database, clock
    ):
        subscribe(http, partner, receiver)
        for _ in range(3):
            make_client(http, partner)
        now = clock.now()
        with database.session(write=True) as db:
            with executions_sent(database.engine) as sent:
                fanned = dispatch_events(db, now)
            db.commit()
        # One statement run once, not once per event (an executemany runs on the server per row).
        marks = [times for statement, times in sent if statement.lstrip().upper().startswith("UPDATE EVENTS")]
        assert marks == [1], sent
        with database.session(write=True) as db:
            events = db.scalars(select(Event).where(Event.partner_id == partner.id)).all()
            assert fanned == len(events) >= 3
            assert {event.dispatched_at for event in events} == {now}
            assert dispatch_events(db, now) == 0  # each event is fanned out once
            hooked = db.scalars(
                select(EventDelivery.event_id).where(EventDelivery.channel == "webhook")
            ).all()
        assert sorted(hooked) == sorted(event.id for event in events)
