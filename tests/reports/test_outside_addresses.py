"""SPEC §17: "`emails` outside the account's users are for partner admins and editors only", and
§12's 50 recipients a day of dashboard e-mails. A schedule's addresses outside the account are
sent at a slot only while the user who set them is a partner admin or editor of the partner, and
they count against that user's allowance, not the schedule's creator's."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text, update

from tenantry.dashboards.live import LiveCache
from tenantry.db.models import PartnerUser
from tenantry.exports.service import Renderer
from tenantry.exports.typeset import Typesetter
from tests.conftest import PG_URL
from tests.content import client_key, partner_user_headers
from tests.reports.conftest import create
from tests.servers import WAIT_SECONDS

SLOT = datetime(2026, 3, 11, 9, 0, tzinfo=UTC)  # the first 09:00 after the clock's start
STRANGER = "stranger@elsewhere.test"


@pytest.fixture
def smtp_worker(make_worker, smtp_server, settings):
    return make_worker(smtp_server.mailer, settings=settings)


def runs(http, partner, schedule_id):
    response = http.get(f"/api/1/schedules/{schedule_id}/runs", headers=partner.headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def user_id_of(http, headers) -> int:
    response = http.get("/api/1/me", headers=headers)
    assert response.status_code == 200, response.text
    return int(response.json()["user"]["id"])


def make_viewer(http, partner, user_id: int) -> None:
    response = http.patch(f"/api/1/partner/users/{user_id}", json={"role": "viewer"}, headers=partner.headers)
    assert response.status_code == 200, response.text


def remove(http, partner, user_id: int) -> None:
    response = http.delete(f"/api/1/partner/users/{user_id}", headers=partner.headers)
    assert response.status_code == 204, response.text


def recipients_of(smtp_server) -> list[str]:
    return [message["To"] for message in smtp_server.messages]


class TestOutsideAddressesFollowTheRoleOfWhoSetThem:
    @pytest.fixture
    def editors_schedule(self, http, partner, db, clock, active_dashboard):
        """A schedule a partner editor made to a client member and an address outside the
        account: (the editor's user id, the schedule's id)."""
        client_id, dashboard_id = active_dashboard
        member_id, _ = client_key(db, clock, partner, client_id, "member")
        editor = partner_user_headers(db, clock, partner, "editor")
        recipients = {"user_ids": [member_id], "emails": [STRANGER]}
        response = create(http, editor, dashboard_id, recipients=recipients)
        assert response.status_code == 201, response.text
        return user_id_of(http, editor), response.json()["id"]

    def test_a_report_to_an_outside_address_goes_there_while_its_editor_is_an_editor(
        self, http, partner, clock, smtp_server, smtp_worker, editors_schedule
    ):
        _, schedule_id = editors_schedule
        clock.set(SLOT)
        smtp_worker.run_reports()
        (run,) = runs(http, partner, schedule_id)
        assert (run["status"], run["recipients"], run["reason"]) == (
            "sent",
            ["member@client.test", STRANGER],
            None,
        )

    def test_a_report_to_an_outside_address_stops_going_there_when_its_editor_becomes_a_viewer(
        self, http, partner, clock, smtp_server, smtp_worker, editors_schedule
    ):
        editor_id, schedule_id = editors_schedule
        make_viewer(http, partner, editor_id)
        clock.set(SLOT)
        smtp_worker.run_reports()
        (run,) = runs(http, partner, schedule_id)
        assert (run["status"], run["recipients"]) == ("sent", ["member@client.test"])
        assert run["reason"] == (
            "Sent to the account's users only: the 1 address outside the account "
            f"({STRANGER}) was left out, as the user who set it is no longer a partner admin or editor."
        )
        assert recipients_of(smtp_server) == ["member@client.test"]

    def test_a_report_to_an_outside_address_stops_going_there_when_its_editor_is_removed(
        self, http, partner, clock, smtp_server, smtp_worker, editors_schedule
    ):
        editor_id, schedule_id = editors_schedule
        remove(http, partner, editor_id)
        clock.set(SLOT)
        smtp_worker.run_reports()
        (run,) = runs(http, partner, schedule_id)
        assert (run["status"], run["recipients"]) == ("sent", ["member@client.test"])
        assert STRANGER in run["reason"]
        assert recipients_of(smtp_server) == ["member@client.test"]

    def test_a_report_to_outside_addresses_only_is_skipped_with_the_reason_when_its_editor_becomes_a_viewer(
        self, http, partner, db, clock, smtp_server, smtp_worker, active_dashboard
    ):
        editor = partner_user_headers(db, clock, partner, "editor")
        outside = [STRANGER, "other@elsewhere.test"]
        schedule_id = create(http, editor, active_dashboard[1], recipients={"emails": outside}).json()["id"]
        make_viewer(http, partner, user_id_of(http, editor))
        clock.set(SLOT)
        smtp_worker.run_reports()
        (run,) = runs(http, partner, schedule_id)
        assert (run["status"], run["recipients"]) == ("skipped", [])
        assert run["reason"] == (
            "No recipient is left: the 2 addresses outside the account "
            f"({STRANGER}, other@elsewhere.test) were left out, as the user who set them is no longer "
            "a partner admin or editor."
        )
        assert smtp_server.messages == []

    def test_an_address_of_a_user_of_the_account_is_still_sent_when_its_editor_becomes_a_viewer(
        self, http, partner, db, clock, smtp_server, smtp_worker, active_dashboard
    ):
        client_key(db, clock, partner, active_dashboard[0], "member")
        editor = partner_user_headers(db, clock, partner, "editor")
        recipients = {"emails": ["MEMBER@client.test"]}
        schedule_id = create(http, editor, active_dashboard[1], recipients=recipients).json()["id"]
        make_viewer(http, partner, user_id_of(http, editor))
        clock.set(SLOT)
        smtp_worker.run_reports()
        (run,) = runs(http, partner, schedule_id)
        assert (run["status"], run["recipients"], run["reason"]) == ("sent", ["member@client.test"], None)


def send_by_hand(http, headers, dashboard_id: int, count: int) -> int:
    """E-mail the dashboard by hand to `count` addresses outside the account, 20 a request at
    most: the status code of the last answer."""
    sent = 0
    while True:
        to = [f"hand{i}@elsewhere.test" for i in range(sent, min(count, sent + 20))]
        answer = http.post(f"/api/1/dashboards/{dashboard_id}/email", json={"to": to}, headers=headers)
        sent += len(to)
        if sent == count or answer.status_code != 202:
            return int(answer.status_code)


class TestOutsideAddressesAnswerToWhoeverSetThemLast:
    """A partner editor adding addresses to a schedule someone else made: they count against the
    editor's 50 a day and follow the editor's role, not the creator's."""

    LIST = [f"list{i}@elsewhere.test" for i in range(20)]

    @pytest.fixture
    def admins_schedule(self, http, partner, db, clock, active_dashboard):
        """A schedule the partner's admin made to a client member only: (member id, schedule id)."""
        member_id, _ = client_key(db, clock, partner, active_dashboard[0], "member")
        response = create(http, partner.headers, active_dashboard[1], recipients={"user_ids": [member_id]})
        assert response.status_code == 201, response.text
        return member_id, response.json()["id"]

    def add_the_list(self, http, headers, admins_schedule) -> None:
        member_id, schedule_id = admins_schedule
        body = {"recipients": {"user_ids": [member_id], "emails": self.LIST}}
        response = http.patch(f"/api/1/schedules/{schedule_id}", json=body, headers=headers)
        assert response.status_code == 200, response.text

    def test_addresses_an_editor_past_its_daily_limit_adds_to_anothers_schedule_are_not_sent(
        self, http, partner, db, clock, smtp_server, smtp_worker, active_dashboard, admins_schedule
    ):
        editor = partner_user_headers(db, clock, partner, "editor")
        assert send_by_hand(http, editor, active_dashboard[1], 50) == 202
        assert send_by_hand(http, editor, active_dashboard[1], 1) == 429
        self.add_the_list(http, editor, admins_schedule)
        clock.set(SLOT)
        smtp_worker.run_reports()
        (run,) = runs(http, partner, admins_schedule[1])
        assert (run["status"], run["recipients"]) == ("skipped", [])
        assert run["reason"] == (
            "The report's 20 addresses outside the account would take the user who set them past 50 "
            "recipients of dashboard e-mails in 24 hours."
        )
        assert [m for m in smtp_server.messages if m["Subject"] == "Sales"] == []

    def test_addresses_an_editor_adds_to_anothers_schedule_count_against_the_editor_not_the_creator(
        self, http, partner, db, clock, smtp_server, smtp_worker, active_dashboard, admins_schedule
    ):
        editor = partner_user_headers(db, clock, partner, "editor")
        self.add_the_list(http, editor, admins_schedule)
        clock.set(SLOT)
        smtp_worker.run_reports()
        (run,) = runs(http, partner, admins_schedule[1])
        assert (run["status"], len(run["recipients"])) == ("sent", 21)
        assert send_by_hand(http, editor, active_dashboard[1], 30) == 202
        assert send_by_hand(http, editor, active_dashboard[1], 1) == 429
        assert send_by_hand(http, partner.headers, active_dashboard[1], 50) == 202

    def test_addresses_an_editor_adds_to_anothers_schedule_stop_when_the_editor_becomes_a_viewer(
        self, http, partner, db, clock, smtp_server, smtp_worker, admins_schedule
    ):
        editor = partner_user_headers(db, clock, partner, "editor")
        self.add_the_list(http, editor, admins_schedule)
        make_viewer(http, partner, user_id_of(http, editor))
        clock.set(SLOT)
        smtp_worker.run_reports()
        (run,) = runs(http, partner, admins_schedule[1])
        assert (run["status"], run["recipients"]) == ("sent", ["member@client.test"])
        assert "the 20 addresses outside the account" in run["reason"]

    def test_a_change_that_keeps_the_addresses_leaves_them_to_whoever_set_them(
        self, http, partner, db, clock, smtp_server, smtp_worker, active_dashboard, admins_schedule
    ):
        editor = partner_user_headers(db, clock, partner, "editor")
        self.add_the_list(http, editor, admins_schedule)
        self.add_the_list(http, partner.headers, admins_schedule)  # the same list again
        make_viewer(http, partner, user_id_of(http, editor))
        clock.set(SLOT)
        smtp_worker.run_reports()
        (run,) = runs(http, partner, admins_schedule[1])
        assert (run["status"], run["recipients"]) == ("sent", ["member@client.test"])


class _HeldTypesetter(Typesetter):
    """Typesets as usual, once the test has looked at the database while the report is drawn."""

    def __init__(self) -> None:
        super().__init__()
        self.drawing, self.go_on = threading.Event(), threading.Event()

    def typeset(self, *args: Any, **kwargs: Any) -> bytes:
        self.drawing.set()
        self.go_on.wait(WAIT_SECONDS)
        return super().typeset(*args, **kwargs)


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="needs TENANTRY_TEST_DATABASE_URL (PostgreSQL): row locks")
def test_while_a_report_to_outside_addresses_is_drawn_the_row_of_who_set_them_is_not_locked(
    http, partner, db, clock, database, make_worker, smtp_server, active_dashboard
):
    """Their sign-in (which writes their row) and a change of their role do not wait for the
    drawing, which takes most of a run: the row is locked for the run's writes only."""
    editor = partner_user_headers(db, clock, partner, "editor")
    editor_id = user_id_of(http, editor)
    schedule_id = create(http, editor, active_dashboard[1], recipients={"emails": [STRANGER]}).json()["id"]
    typesetter = _HeldTypesetter()
    worker = make_worker(smtp_server.mailer, renderer=Renderer(LiveCache(), typesetter))
    clock.set(SLOT)
    running = threading.Thread(target=worker.run_reports)
    running.start()
    try:
        assert typesetter.drawing.wait(WAIT_SECONDS)
        with database.engine.connect() as other:
            other.execute(text("SET LOCAL lock_timeout = '2s'"))
            renamed = other.execute(
                update(PartnerUser).where(PartnerUser.id == editor_id).values(name="Edith, signed in")
            )
            other.commit()
        assert renamed.rowcount == 1
    finally:
        typesetter.go_on.set()
        running.join(WAIT_SECONDS)
    (run,) = runs(http, partner, schedule_id)
    assert (run["status"], run["recipients"]) == ("sent", [STRANGER])
