"""SPEC §17: "At each slot the policy table decides". A run that comes after its slot (the worker
busy or down) follows the client's status at the slot, read from its status history and its trial
clock, and does no more than the status the run finds allows either."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.content import ACTIVE_RESOURCES, WATERMARK, dashboard_in, pdf_text
from tests.factories import set_status
from tests.reports.conftest import create

SLOT = datetime(2026, 3, 11, 9, 0, tzinfo=UTC)  # the first 09:00 after the clock's start


@pytest.fixture
def smtp_worker(make_worker, smtp_server, settings):
    return make_worker(smtp_server.mailer, settings=settings)


def runs(http, partner, schedule_id):
    response = http.get(f"/api/1/schedules/{schedule_id}/runs", headers=partner.headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def trial_end(http, partner, client_id) -> datetime:
    response = http.get(f"/api/1/clients/{client_id}", headers=partner.headers)
    assert response.status_code == 200, response.text
    return datetime.fromisoformat(response.json()["trial"]["ends_at"].replace("Z", "+00:00"))


def nine_the_day_after(instant: datetime) -> datetime:
    return datetime.combine(instant.date() + timedelta(days=1), SLOT.timetz())


class TestALateRunFollowsTheStatusAtItsSlot:
    def test_a_slot_at_which_the_client_was_disabled_is_skipped_when_run_after_its_reactivation(
        self, http, partner, clock, smtp_server, smtp_worker
    ):
        client_id, _, dashboard_id = dashboard_in(http, partner, "disabled", clock)
        schedule_id = create(http, partner.headers, dashboard_id, timezone="UTC").json()["id"]
        clock.set(SLOT + timedelta(minutes=30))
        set_status(http, partner, client_id, "active")
        clock.set(SLOT + timedelta(minutes=40))
        smtp_worker.run_reports()
        (run,) = runs(http, partner, schedule_id)
        assert (run["slot"], run["status"], run["late"]) == ("2026-03-11T09:00:00Z", "skipped", True)
        assert run["reason"] == "Dashboards cannot be downloaded or e-mailed while the client is disabled."
        assert run["recipients"] == [] and smtp_server.messages == []

    def test_a_setup_slot_run_after_the_client_became_active_is_sent_with_the_watermark_of_its_slots_status(
        self, http, partner, clock, smtp_server, smtp_worker
    ):
        client_id, _, dashboard_id = dashboard_in(http, partner, "setup", clock)
        schedule_id = create(http, partner.headers, dashboard_id, timezone="UTC").json()["id"]
        clock.set(SLOT + timedelta(minutes=30))
        set_status(http, partner, client_id, "active", resources=ACTIVE_RESOURCES)
        clock.set(SLOT + timedelta(minutes=40))
        smtp_worker.run_reports()
        (run,) = runs(http, partner, schedule_id)
        assert (run["slot"], run["status"], run["watermark"]) == ("2026-03-11T09:00:00Z", "sent", True)
        (message,) = smtp_server.messages
        (attachment,) = list(message.iter_attachments())
        assert WATERMARK in pdf_text(attachment.get_content())

    def test_a_slot_at_which_the_client_was_active_is_not_sent_when_run_after_it_was_disabled(
        self, http, partner, clock, smtp_server, smtp_worker
    ):
        # The slot decides, and a late run does no more than the status now allows either.
        client_id, _, dashboard_id = dashboard_in(http, partner, "active", clock)
        schedule_id = create(http, partner.headers, dashboard_id, timezone="UTC").json()["id"]
        clock.set(SLOT + timedelta(minutes=30))
        set_status(http, partner, client_id, "disabled")
        clock.set(SLOT + timedelta(minutes=40))
        smtp_worker.run_reports()
        (run,) = runs(http, partner, schedule_id)
        assert (run["status"], run["recipients"]) == ("skipped", [])
        assert run["reason"] == "Dashboards cannot be downloaded or e-mailed while the client is disabled."
        assert smtp_server.messages == []

    def test_a_run_on_time_after_a_reactivation_before_its_slot_is_sent(
        self, http, partner, clock, smtp_server, smtp_worker
    ):
        client_id, _, dashboard_id = dashboard_in(http, partner, "disabled", clock)
        schedule_id = create(http, partner.headers, dashboard_id, timezone="UTC").json()["id"]
        clock.set(SLOT - timedelta(minutes=30))
        set_status(http, partner, client_id, "active")
        clock.set(SLOT)
        smtp_worker.run_reports()
        (run,) = runs(http, partner, schedule_id)
        assert (run["status"], run["late"]) == ("sent", False)


class TestALateRunFollowsTheTrialClockAtItsSlot:
    def test_a_slot_after_the_trial_ended_is_skipped_when_run_after_the_client_became_active(
        self, http, partner, clock, smtp_server, smtp_worker
    ):
        client_id, _, dashboard_id = dashboard_in(http, partner, "trial", clock)
        schedule_id = create(http, partner.headers, dashboard_id, timezone="UTC").json()["id"]
        slot = nine_the_day_after(trial_end(http, partner, client_id))
        clock.set(slot + timedelta(minutes=30))
        set_status(http, partner, client_id, "active")
        clock.set(slot + timedelta(minutes=40))
        smtp_worker.run_reports()
        (run,) = runs(http, partner, schedule_id)
        assert (run["slot"], run["status"]) == (slot.isoformat().replace("+00:00", "Z"), "skipped")
        assert run["reason"] == (
            "Dashboards cannot be downloaded or e-mailed while the client is in an expired trial."
        )
        assert smtp_server.messages == []

    def test_a_slot_inside_the_trial_is_not_sent_when_run_after_the_trial_ended(
        self, http, partner, clock, smtp_server, smtp_worker
    ):
        client_id, _, dashboard_id = dashboard_in(http, partner, "trial", clock)
        ends_at = trial_end(http, partner, client_id)
        slot = nine_the_day_after(ends_at) - timedelta(days=1)
        assert slot < ends_at
        schedule_id = create(http, partner.headers, dashboard_id, timezone="UTC").json()["id"]
        clock.set(ends_at + timedelta(minutes=10))
        smtp_worker.run_reports()
        (run,) = runs(http, partner, schedule_id)
        assert (run["slot"], run["status"], run["late"]) == (
            slot.isoformat().replace("+00:00", "Z"),
            "skipped",
            True,
        )
        assert run["reason"] == (
            "Dashboards cannot be downloaded or e-mailed while the client is in an expired trial."
        )
        assert smtp_server.messages == []
