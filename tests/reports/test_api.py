"""Scheduled reports' API (SPEC §17, §18): validation, who may schedule what to whom, isolation."""

from __future__ import annotations

import pytest

from tenantry.db.models import ClientUser, Partner
from tests.content import client_key, dashboard_in, make_client, partner_user_headers
from tests.reports.conftest import create


def schedules(http, headers, dashboard_id):
    return http.get(f"/api/1/dashboards/{dashboard_id}/schedules", headers=headers)


class TestCreating:
    def test_a_daily_schedule_is_created_with_its_next_run(self, http, partner, active_dashboard):
        _, dashboard_id = active_dashboard
        response = create(http, partner.headers, dashboard_id)  # the clock reads 2026-03-10 12:00 UTC
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["next_run_at"] == "2026-03-11T09:00:00Z"
        assert body["timezone"] == "UTC"
        assert body["recipients"] == {"user_ids": [], "emails": ["boss@client.test"]}
        assert [s["id"] for s in schedules(http, partner.headers, dashboard_id).json()["items"]] == [
            body["id"]
        ]

    def test_the_timezone_defaults_to_the_partners_and_places_the_slot_there(
        self, http, partner, db, active_dashboard
    ):
        db.get(Partner, partner.id).timezone = "America/New_York"
        db.commit()
        response = create(http, partner.headers, active_dashboard[1], time="08:30")
        assert response.json()["timezone"] == "America/New_York"
        assert response.json()["next_run_at"] == "2026-03-10T12:30:00Z"  # 08:30 EDT, half an hour from now

    def test_weekly_and_monthly_schedules_name_their_day(self, http, partner, active_dashboard):
        weekly = create(http, partner.headers, active_dashboard[1], frequency="weekly", weekday=0)
        monthly = create(http, partner.headers, active_dashboard[1], frequency="monthly", day_of_month=28)
        assert weekly.json()["next_run_at"] == "2026-03-16T09:00:00Z"  # the next Monday
        assert monthly.json()["next_run_at"] == "2026-03-28T09:00:00Z"

    @pytest.mark.parametrize("status", ["setup", "trial", "trial_expired", "active", "disabled"])
    def test_a_schedule_can_be_created_in_any_status(self, http, partner, clock, status):
        _, _, dashboard_id = dashboard_in(http, partner, status, clock)
        assert create(http, partner.headers, dashboard_id).status_code == 201

    def test_recipients_may_be_the_accounts_users(self, http, partner, db, clock, active_dashboard):
        client_id, dashboard_id = active_dashboard
        user_id, _ = client_key(db, clock, partner, client_id, "member")
        response = create(http, partner.headers, dashboard_id, recipients={"user_ids": [user_id]})
        assert response.status_code == 201
        assert response.json()["recipients"]["user_ids"] == [user_id]


BAD = [
    ({"time": "25:00"}, "time"),
    ({"time": "9:00"}, "time"),
    ({"time": "09:60"}, "time"),
    ({"time": "\u0660\u0669:\u0660\u0660"}, "time"),  # Arabic-Indic digits: 09:00 to int(), not HH:MM
    ({"time": "\u00b2\u00b3:00"}, "time"),  # superscripts are digits to str.isdigit()
    ({"frequency": "weekly", "weekday": 7}, "weekday"),
    ({"frequency": "weekly"}, "weekday"),
    ({"weekday": 2}, "weekday"),
    ({"frequency": "monthly", "day_of_month": 31}, "day_of_month"),
    ({"frequency": "monthly", "day_of_month": 0}, "day_of_month"),
    ({"frequency": "monthly"}, "day_of_month"),
    ({"day_of_month": 3}, "day_of_month"),
    ({"frequency": "hourly"}, "frequency"),
    ({"format": "gif"}, "format"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"timezone": "../../etc/passwd"}, "timezone"),
    ({"timezone": "localtime"}, "timezone"),  # the server's own zone, not a place
    ({"timezone": "Factory"}, "timezone"),
    ({"timezone": "right/UTC"}, "timezone"),
    ({"recipients": {}}, "recipients"),
    ({"recipients": {"user_ids": [], "emails": []}}, "recipients"),
    ({"recipients": {"emails": ["not an address"]}}, "recipients.emails"),
    ({"recipients": {"emails": ["a@b.test\r\nBcc: x@y.test"]}}, "recipients.emails"),
    ({"subject": "Hello\nBcc: x@y.test"}, "subject"),
    ({"filters": {"region": "North"}}, "filters.region"),
    ({"colour": "red"}, "colour"),
]


@pytest.mark.parametrize(("change", "field"), BAD, ids=[f"{f}-{i}" for i, (_, f) in enumerate(BAD)])
def test_bad_input_is_a_422_naming_the_field_and_stores_nothing(
    http, partner, active_dashboard, change, field
):
    _, dashboard_id = active_dashboard
    response = create(http, partner.headers, dashboard_id, **change)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "validation_error"
    named = [".".join(e["loc"][1:]) for e in problem.get("errors", [])] + [problem.get("field", "")]
    assert any(n == field or n.startswith(field + ".") for n in named), problem
    assert schedules(http, partner.headers, dashboard_id).json()["total"] == 0


def test_user_ids_outside_the_dashboards_account_are_a_422_naming_them(http, partner, db, clock):
    _, _, dashboard_id = dashboard_in(http, partner, "active", clock)
    other_client = make_client(http, partner, "active")
    stranger, _ = client_key(db, clock, partner, other_client, "admin")
    response = create(http, partner.headers, dashboard_id, recipients={"user_ids": [stranger]})
    assert response.status_code == 422
    assert response.json()["field"] == "recipients.user_ids"
    assert schedules(http, partner.headers, dashboard_id).json()["total"] == 0


class TestClientUsers:
    def test_a_client_admin_schedules_to_the_clients_users(self, http, partner, db, clock, active_dashboard):
        client_id, dashboard_id = active_dashboard
        admin_id, headers = client_key(db, clock, partner, client_id, "admin")
        response = create(
            http, headers, dashboard_id, recipients={"user_ids": [admin_id], "emails": ["ADMIN@client.test"]}
        )
        assert response.status_code == 201, response.text

    def test_an_address_a_client_admin_names_is_stored_as_its_users_id(
        self, http, partner, db, clock, active_dashboard
    ):
        """So the report follows the user, and stops when the user leaves the client."""
        client_id, dashboard_id = active_dashboard
        admin_id, headers = client_key(db, clock, partner, client_id, "admin")
        member_id, _ = client_key(db, clock, partner, client_id, "member")
        response = create(
            http, headers, dashboard_id, recipients={"user_ids": [admin_id], "emails": ["MEMBER@client.test"]}
        )
        assert response.status_code == 201, response.text
        assert response.json()["recipients"] == {"user_ids": [admin_id, member_id], "emails": []}

    def test_an_address_a_client_editor_names_in_a_change_is_stored_as_its_users_id(
        self, http, partner, db, clock, active_dashboard
    ):
        client_id, dashboard_id = active_dashboard
        editor_id, headers = client_key(db, clock, partner, client_id, "editor")
        schedule_id = create(http, headers, dashboard_id, recipients={"user_ids": [editor_id]}).json()["id"]
        response = http.patch(
            f"/api/1/schedules/{schedule_id}",
            json={"recipients": {"emails": ["editor@client.test"]}},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        assert response.json()["recipients"] == {"user_ids": [editor_id], "emails": []}

    def test_a_client_editor_schedules_too(self, http, partner, db, clock, active_dashboard):
        client_id, dashboard_id = active_dashboard
        editor_id, headers = client_key(db, clock, partner, client_id, "editor")
        assert create(http, headers, dashboard_id, recipients={"user_ids": [editor_id]}).status_code == 201

    def test_a_client_admin_may_not_send_to_outside_addresses(
        self, http, partner, db, clock, active_dashboard
    ):
        client_id, dashboard_id = active_dashboard
        _, headers = client_key(db, clock, partner, client_id, "admin")
        response = create(http, headers, dashboard_id, recipients={"emails": ["someone@elsewhere.test"]})
        assert response.status_code == 403
        assert response.json()["field"] == "recipients.emails"
        assert schedules(http, headers, dashboard_id).json()["total"] == 0

    def test_a_client_admin_may_not_change_recipients_to_outside_addresses(
        self, http, partner, db, clock, active_dashboard
    ):
        client_id, dashboard_id = active_dashboard
        admin_id, headers = client_key(db, clock, partner, client_id, "admin")
        schedule_id = create(http, headers, dashboard_id, recipients={"user_ids": [admin_id]}).json()["id"]
        before = schedules(http, headers, dashboard_id).json()
        response = http.patch(
            f"/api/1/schedules/{schedule_id}",
            json={"recipients": {"emails": ["someone@elsewhere.test"]}},
            headers=headers,
        )
        assert response.status_code == 403
        assert response.json()["field"] == "recipients.emails"
        assert schedules(http, headers, dashboard_id).json() == before

    def test_a_client_member_may_not_schedule_or_list(self, http, partner, db, clock, active_dashboard):
        client_id, dashboard_id = active_dashboard
        member_id, headers = client_key(db, clock, partner, client_id, "member")
        http.put(
            f"/api/1/dashboards/{dashboard_id}/shares",
            json={"user_ids": [member_id]},
            headers=partner.headers,
        )
        assert create(http, headers, dashboard_id, recipients={"user_ids": [member_id]}).status_code == 403
        assert schedules(http, headers, dashboard_id).status_code == 403

    def test_another_clients_dashboard_and_schedule_are_not_found(
        self, http, partner, db, clock, active_dashboard
    ):
        _, dashboard_id = active_dashboard
        schedule_id = create(http, partner.headers, dashboard_id).json()["id"]
        other_client, _, _ = dashboard_in(http, partner, "active", clock)
        db.add(
            ClientUser(
                client_id=other_client, email="x@other.test", name="x", role="admin", created_at=clock.now()
            )
        )
        _, headers = client_key(db, clock, partner, other_client, "admin")
        assert create(http, headers, dashboard_id).status_code == 404
        assert schedules(http, headers, dashboard_id).status_code == 404
        assert (
            http.patch(f"/api/1/schedules/{schedule_id}", json={"time": "10:00"}, headers=headers).status_code
            == 404
        )
        assert http.delete(f"/api/1/schedules/{schedule_id}", headers=headers).status_code == 404
        assert http.get(f"/api/1/schedules/{schedule_id}/runs", headers=headers).status_code == 404
        assert schedules(http, partner.headers, dashboard_id).json()["items"][0]["time"] == "09:00"


class TestPartners:
    def test_another_partners_dashboard_and_schedule_are_not_found(
        self, http, partner, make_partner, active_dashboard
    ):
        _, dashboard_id = active_dashboard
        schedule_id = create(http, partner.headers, dashboard_id).json()["id"]
        other = make_partner("Other")
        assert create(http, other.headers, dashboard_id).status_code == 404
        assert (
            http.patch(
                f"/api/1/schedules/{schedule_id}", json={"time": "10:00"}, headers=other.headers
            ).status_code
            == 404
        )
        assert http.delete(f"/api/1/schedules/{schedule_id}", headers=other.headers).status_code == 404
        assert http.get(f"/api/1/schedules/{schedule_id}/runs", headers=other.headers).status_code == 404
        assert http.get(f"/api/1/schedules/{schedule_id}/runs", headers=partner.headers).status_code == 200

    def test_a_partner_viewer_reads_schedules_but_does_not_make_them(
        self, http, partner, db, clock, active_dashboard
    ):
        _, dashboard_id = active_dashboard
        create(http, partner.headers, dashboard_id)
        viewer = partner_user_headers(db, clock, partner, "viewer")
        assert create(http, viewer, dashboard_id).status_code == 403
        assert schedules(http, viewer, dashboard_id).json()["total"] == 1

    def test_a_partner_editor_may_send_to_any_address(self, http, partner, db, clock, active_dashboard):
        editor = partner_user_headers(db, clock, partner, "editor")
        response = create(http, editor, active_dashboard[1], recipients={"emails": ["anyone@anywhere.test"]})
        assert response.status_code == 201
        assert response.json()["recipients"] == {"user_ids": [], "emails": ["anyone@anywhere.test"]}


# Who may do what with the schedules of a client's dashboard (SPEC §8, §17, §18): a caller of the
# tenant without the role is told 403; another partner's or another client's caller is told 404
# whatever its role, as it would be for an object that does not exist.
WHO = [
    # caller                          list  runs  change  create  delete
    ("partner admin",                 200,  200,  200,    201,    204),
    ("partner editor",                200,  200,  200,    201,    204),
    ("partner viewer",                200,  200,  403,    403,    403),
    ("client admin",                  200,  200,  200,    201,    204),
    ("client editor",                 200,  200,  200,    201,    204),
    ("client member shared with",     403,  403,  403,    403,    403),
    ("client member not shared with", 404,  404,  404,    404,    404),
    ("other partner's admin",         404,  404,  404,    404,    404),
    ("other partner's editor",        404,  404,  404,    404,    404),
    ("other partner's viewer",        404,  404,  404,    404,    404),
    ("other client's admin",          404,  404,  404,    404,    404),
    ("other client's editor",         404,  404,  404,    404,    404),
    ("other client's member",         404,  404,  404,    404,    404),
]  # fmt: skip
ACTIONS = ("list", "runs", "change", "create", "delete")


def caller_headers(who, http, partner, make_partner, db, clock, client_id, dashboard_id):
    """The headers of an API key of the caller a row of WHO names."""
    role = who.split()[-1] if not who.startswith("client member") else "member"
    if who == "partner admin":
        return partner.headers
    if who.startswith("partner"):
        return partner_user_headers(db, clock, partner, role)
    if who.startswith("client"):
        user_id, headers = client_key(db, clock, partner, client_id, role)
        if who == "client member shared with":
            shared = http.put(
                f"/api/1/dashboards/{dashboard_id}/shares",
                json={"user_ids": [user_id]},
                headers=partner.headers,
            )
            assert shared.status_code == 200, shared.text
        return headers
    if who.startswith("other partner's"):
        other = make_partner("Other")
        return other.headers if role == "admin" else partner_user_headers(db, clock, other, role)
    other_client, _, other_dashboard = dashboard_in(http, partner, "active", clock)
    user_id, headers = client_key(db, clock, partner, other_client, role)
    if role == "member":  # a dashboard of its own client is shared with it, only not this one
        shared = http.put(
            f"/api/1/dashboards/{other_dashboard}/shares",
            json={"user_ids": [user_id]},
            headers=partner.headers,
        )
        assert shared.status_code == 200, shared.text
    return headers


@pytest.mark.parametrize(
    ("who", "codes"),
    [(row[0], dict(zip(ACTIONS, row[1:], strict=True))) for row in WHO],
    ids=[r[0] for r in WHO],
)
def test_who_may_do_what_with_a_clients_schedules_and_a_refusal_changes_nothing(
    http, partner, make_partner, db, clock, active_dashboard, who, codes
):
    client_id, dashboard_id = active_dashboard
    # A user of the client, so that every caller allowed to schedule may name them.
    db.add(
        ClientUser(
            client_id=client_id, email="boss@client.test", name="boss", role="member", created_at=clock.now()
        )
    )
    db.commit()
    schedule_id = create(http, partner.headers, dashboard_id).json()["id"]
    headers = caller_headers(who, http, partner, make_partner, db, clock, client_id, dashboard_id)
    db.commit()
    before = schedules(http, partner.headers, dashboard_id).json()
    path = f"/api/1/schedules/{schedule_id}"
    answers = {
        "list": schedules(http, headers, dashboard_id).status_code,
        "runs": http.get(f"{path}/runs", headers=headers).status_code,
        "change": http.patch(path, json={"time": "10:00"}, headers=headers).status_code,
        "create": create(http, headers, dashboard_id).status_code,
        "delete": http.delete(path, headers=headers).status_code,
    }
    assert answers == codes
    after = schedules(http, partner.headers, dashboard_id).json()
    if codes["change"] == 200:  # changed, then another made, then the first deleted
        assert after["total"] == 1 and after["items"][0]["id"] != schedule_id
    else:
        assert after == before


class TestChanging:
    def test_a_change_moves_the_next_run(self, http, partner, active_dashboard):
        schedule_id = create(http, partner.headers, active_dashboard[1]).json()["id"]
        response = http.patch(
            f"/api/1/schedules/{schedule_id}", json={"time": "13:15"}, headers=partner.headers
        )
        assert response.status_code == 200
        assert response.json()["next_run_at"] == "2026-03-10T13:15:00Z"

    def test_turning_weekly_needs_a_weekday(self, http, partner, active_dashboard):
        schedule_id = create(http, partner.headers, active_dashboard[1]).json()["id"]
        response = http.patch(
            f"/api/1/schedules/{schedule_id}", json={"frequency": "weekly"}, headers=partner.headers
        )
        assert response.status_code == 422
        assert response.json()["field"] == "weekday"
        fine = http.patch(
            f"/api/1/schedules/{schedule_id}",
            json={"frequency": "weekly", "weekday": 4},
            headers=partner.headers,
        )
        assert fine.json()["next_run_at"] == "2026-03-13T09:00:00Z"

    def test_a_deleted_schedule_is_gone(self, http, partner, active_dashboard):
        schedule_id = create(http, partner.headers, active_dashboard[1]).json()["id"]
        assert http.delete(f"/api/1/schedules/{schedule_id}", headers=partner.headers).status_code == 204
        assert http.get(f"/api/1/schedules/{schedule_id}/runs", headers=partner.headers).status_code == 404
        assert schedules(http, partner.headers, active_dashboard[1]).json()["total"] == 0


class TestPartnerDashboards:
    def test_a_partners_own_dashboard_is_scheduled_to_its_partner_users(self, http, partner, db):
        from tests.content import create_dashboard, inline_source

        source_id = inline_source(http, partner, None)
        dashboard_id = create_dashboard(http, partner, None, source_id).json()["id"]
        response = create(
            http, partner.headers, dashboard_id, recipients={"user_ids": [partner.admin_user_id]}
        )
        assert response.status_code == 201, response.text
        assert response.json()["client_id"] is None

    def test_a_client_user_is_not_among_a_partner_dashboards_recipients(self, http, partner, db, clock):
        from tests.content import create_dashboard, inline_source

        client_id, _, _ = dashboard_in(http, partner, "active", clock)
        client_key(db, clock, partner, client_id, "admin")
        user_id, _ = client_key(db, clock, partner, client_id, "editor")  # an id no partner user has
        source_id = inline_source(http, partner, None)
        dashboard_id = create_dashboard(http, partner, None, source_id).json()["id"]
        response = create(http, partner.headers, dashboard_id, recipients={"user_ids": [user_id]})
        assert response.status_code == 422
        assert response.json()["field"] == "recipients.user_ids"

    def test_a_client_key_does_not_reach_a_partner_dashboard(self, http, partner, db, clock):
        from tests.content import create_dashboard, inline_source

        client_id, _, _ = dashboard_in(http, partner, "active", clock)
        _, headers = client_key(db, clock, partner, client_id, "admin")
        source_id = inline_source(http, partner, None)
        dashboard_id = create_dashboard(http, partner, None, source_id).json()["id"]
        assert create(http, headers, dashboard_id).status_code == 404
        assert schedules(http, headers, dashboard_id).status_code == 404


def test_a_dashboard_holds_at_most_20_schedules(http, partner, active_dashboard):
    _, dashboard_id = active_dashboard
    for _ in range(20):
        assert create(http, partner.headers, dashboard_id).status_code == 201
    refused = create(http, partner.headers, dashboard_id)
    assert refused.status_code == 409
    assert refused.json()["code"] == "limit_reached"
    assert refused.json()["limit"] == "schedules_per_dashboard"
    assert schedules(http, partner.headers, dashboard_id).json()["total"] == 20
