"""The partner console: the clients list, a client's page, the plan, and forms that call the
same use cases as the API and bring refusals back as plain sentences."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.factories import (
    ADMIN_PASSWORD,
    add_user,
    admin_email,
    client_with_user,
    csrf_of,
    new_client,
    post_form,
    set_status,
    sign_in,
)
from tests.queries import statements_sent


@pytest.mark.usefixtures("partner_session")
class TestClientsList:
    def test_the_list_shows_status_days_left_usage_of_allocation_and_last_sign_in(self, http, partner, clock):
        trial = new_client(http, partner, "trial", dashboards=4, users=3)
        new_client(http, partner, "setup")
        page = http.get("/partner/clients").text
        assert f'href="/partner/clients/{trial}"' in page
        assert "14 days left" in page
        assert "0 of 4" in page and "0 of 3" in page
        assert "Never" in page
        assert "Showing 1–2 of 2 clients." in page

    def test_an_expired_trial_says_trial_ended_and_an_extended_one_says_extended(
        self, http, partner, clock, db
    ):
        extended = new_client(http, partner, "trial")
        assert (
            http.post(f"/api/1/clients/{extended}/extend-trial", headers=partner.headers).status_code == 200
        )
        clock.advance(timedelta(days=20))
        # Sessions last hours, not weeks: sign in again after moving the clock.
        sign_in(http, admin_email(db, partner), ADMIN_PASSWORD)
        rows = http.get("/partner/clients").text
        assert "8 days left" in rows and "extended" in rows
        clock.advance(timedelta(days=9))
        sign_in(http, admin_email(db, partner), ADMIN_PASSWORD)
        assert "Trial ended" in http.get("/partner/clients?status=trial_expired").text

    def test_the_clients_are_listed_once_and_the_account_page_points_to_that_list(self, http, partner):
        new_client(http, partner, "trial")
        account = http.get("/partner").text
        assert 'href="/partner/clients"' in account
        assert "Client trial" not in account
        assert "Client trial" in http.get("/partner/clients").text

    def test_filtering_by_status_and_searching_by_name_or_external_id(self, http, partner):
        http.post(
            "/api/1/clients", json={"name": "Acme Bakery", "external_id": "AC-1"}, headers=partner.headers
        )
        new_client(http, partner, "trial")
        assert "Acme Bakery" not in http.get("/partner/clients?status=trial").text
        assert "Client trial" in http.get("/partner/clients?status=trial").text
        assert "Acme Bakery" in http.get("/partner/clients?q=ac-1").text
        assert "Client trial" not in http.get("/partner/clients?q=bakery").text

    def test_pages_hold_fifty_clients_with_a_link_to_the_next(self, http, partner):
        for n in range(51):
            http.post("/api/1/clients", json={"name": f"C{n:02}"}, headers=partner.headers)
        first = http.get("/partner/clients").text
        assert "Showing 1–50 of 51 clients." in first and 'href="/partner/clients?page=2"' in first
        second = http.get("/partner/clients?page=2").text
        assert "C50" in second and "C00<" not in second and 'rel="next"' not in second
        assert "Showing 1–50 of 51" in http.get("/partner/clients?page=x").text

    def test_a_new_client_is_created_through_the_form_and_opens_its_page(self, http, partner):
        answer = post_form(http, "/partner/clients", "/partner/clients/new", name="Zed Zoo", status="setup")
        assert answer.status_code == 303 and answer.headers["location"].startswith("/partner/clients/")
        assert "Client Zed Zoo created." in http.get(answer.headers["location"]).text

    def test_a_refused_new_client_comes_back_as_a_sentence_and_creates_nothing(self, http, partner):
        answer = post_form(
            http, "/partner/clients", "/partner/clients/new", name="Eager", status="active", dashboards="1"
        )
        assert answer.headers["location"] == "/partner/clients/new"
        page = http.get("/partner/clients/new").text
        assert (
            "needs at least one user allocated" in page
            and "{" not in page.split("<main")[1].split("<form")[0]
        )
        assert http.get("/api/1/clients", headers=partner.headers).json()["total"] == 0


@pytest.mark.usefixtures("partner_session")
class TestClientPage:
    def test_the_usage_shows_the_api_calls_the_client_made_today(self, http, partner, clock):
        client_id, _, key = client_with_user(
            http, partner, clock, "active", "calls@client.test", api_calls_per_day=50
        )
        assert [http.get("/api/1/me", headers=key).status_code for _ in range(3)] == [200] * 3
        assert "3 today" in http.get(f"/partner/clients/{client_id}").text

    def test_only_the_allowed_next_statuses_are_offered(self, http, partner):
        active = new_client(http, partner, "active")
        page = http.get(f"/partner/clients/{active}").text
        assert 'value="disabled"' in page and 'value="trial"' not in page and 'value="setup"' not in page

    def test_activation_is_blocked_with_what_is_missing_until_the_allocation_allows_it(self, http, partner):
        setup = new_client(http, partner, "setup")
        page = http.get(f"/partner/clients/{setup}").text
        assert 'value="active" disabled' in page
        assert "Allocate at least one dashboard." in page and "Allocate at least one user." in page
        base = f"/partner/clients/{setup}"
        post_form(
            http,
            f"{base}/allocation",
            base,
            dashboards="1",
            users="1",
            published_links="0",
            api_calls_per_day="0",
        )
        page = http.get(base).text
        assert 'value="active" disabled' not in page and "Allocation saved." in page
        assert post_form(http, f"{base}/status", base, status="active").status_code == 303
        assert "is now Active" in http.get(base).text

    def test_an_allocation_beyond_the_pool_is_refused_in_words_and_changes_nothing(self, http, partner):
        trial = new_client(http, partner, "trial", dashboards=1)
        base = f"/partner/clients/{trial}"
        post_form(
            http,
            f"{base}/allocation",
            base,
            dashboards="11",
            users="1",
            published_links="1",
            api_calls_per_day="0",
        )
        page = http.get(base).text
        assert 'class="error"' in page and "problem" not in page
        assert (
            http.get(f"/api/1/clients/{trial}", headers=partner.headers).json()["resources"]["dashboards"]
            == 1
        )

    def test_extend_trial_is_offered_only_while_possible(self, http, partner):
        trial = new_client(http, partner, "trial")
        base = f"/partner/clients/{trial}"
        assert "Extend trial by 14 days" in http.get(base).text
        post_form(http, f"{base}/extend-trial", base)
        page = http.get(base).text
        assert "Trial extended until" in page and "Extend trial by" not in page

    def test_a_user_is_added_and_removed_and_refusals_in_setup_are_plain(self, http, partner):
        setup = new_client(http, partner, "setup")
        base = f"/partner/clients/{setup}"
        post_form(
            http, f"{base}/users", base, email="a@x.test", name="Ann", role="member", password="a long secret"
        )
        assert "Users cannot be added while the client is in Setup mode." in http.get(base).text
        trial = new_client(http, partner, "trial")
        base = f"/partner/clients/{trial}"
        post_form(
            http, f"{base}/users", base, email="a@x.test", name="Ann", role="member", password="a long secret"
        )
        page = http.get(base).text
        assert "Ann added." in page
        user_id = http.get(f"/api/1/clients/{trial}/users", headers=partner.headers).json()["items"][0]["id"]
        post_form(http, f"{base}/users/{user_id}/remove", base)
        assert http.get(f"/api/1/clients/{trial}/users", headers=partner.headers).json()["total"] == 0

    def test_a_dashboard_is_built_from_an_inline_source_shared_and_published(self, http, partner):
        trial = new_client(http, partner, "trial")
        user = add_user(http, partner, trial, "u@x.test")
        base = f"/partner/clients/{trial}"
        post_form(
            http,
            f"{base}/datasources",
            base,
            name="Sales",
            kind="inline",
            csv_text="month,sales\nJan,120\nFeb,80\n",
        )
        sources = http.get(f"/api/1/clients/{trial}/datasources", headers=partner.headers).json()["items"]
        assert sources[0]["row_count"] == 2
        post_form(
            http,
            f"{base}/dashboards",
            base,
            name="Board",
            title="Total",
            kind="value",
            datasource_id=str(sources[0]["id"]),
            value="sales",
        )
        board = http.get(f"/api/1/clients/{trial}/dashboards", headers=partner.headers).json()["items"][0]
        assert [k["title"] for k in board["klips"]] == ["Total"]
        post_form(
            http,
            f"{base}/dashboards/{board['id']}/klips",
            base,
            title="By month",
            kind="bar",
            datasource_id=str(sources[0]["id"]),
            x="month",
            y="sales",
        )
        post_form(http, f"{base}/dashboards/{board['id']}/shares", base, user_ids=str(user["id"]))
        post_form(http, f"{base}/dashboards/{board['id']}/links", base, name="Wall")
        page = http.get(base).text
        assert "/published/" in page and "shown only once" in page
        board = http.get(f"/api/1/dashboards/{board['id']}", headers=partner.headers).json()
        assert [k["title"] for k in board["klips"]] == ["Total", "By month"]
        assert board["shared_with"] == [user["id"]]

    def test_a_klip_missing_its_columns_is_refused_in_words(self, http, partner):
        setup = new_client(http, partner, "setup")
        base = f"/partner/clients/{setup}"
        post_form(http, f"{base}/datasources", base, name="S", kind="inline", csv_text="a\n1\n")
        source = http.get(f"/api/1/clients/{setup}/datasources", headers=partner.headers).json()["items"][0]
        post_form(
            http,
            f"{base}/dashboards",
            base,
            name="B",
            title="Bar",
            kind="bar",
            datasource_id=str(source["id"]),
        )
        assert "a bar klip needs columns.x" in http.get(base).text
        assert http.get(f"/api/1/clients/{setup}/dashboards", headers=partner.headers).json()["total"] == 0

    def test_refresh_now_queues_a_url_source_and_is_refused_when_disabled(self, http, partner):
        active = new_client(http, partner, "active")
        base = f"/partner/clients/{active}"
        post_form(
            http,
            f"{base}/datasources",
            base,
            name="Feed",
            kind="url",
            url="http://127.0.0.1:9/x.csv",
            format="csv",
        )
        source = http.get(f"/api/1/clients/{active}/datasources", headers=partner.headers).json()["items"][0]
        post_form(http, f"{base}/datasources/{source['id']}/refresh", base)
        assert "Feed is queued for a refresh." in http.get(base).text
        set_status(http, partner, active, "disabled")
        post_form(http, f"{base}/datasources/{source['id']}/refresh", base)
        page = http.get(base).text
        assert "Disabled" in page and 'class="error"' in page

    def test_the_history_and_audit_log_are_shown(self, http, partner):
        trial = new_client(http, partner, "trial")
        set_status(http, partner, trial, "disabled")
        page = http.get(f"/partner/clients/{trial}").text
        assert "(created)" in page and "client.updated" in page
        assert "latest of" not in page  # every record is shown

    def test_the_audit_log_shows_the_latest_records_and_says_where_the_others_are(self, http, partner):
        client_id = new_client(http, partner, "setup")
        for n in range(55):
            http.patch(f"/api/1/clients/{client_id}", json={"name": f"Name {n}"}, headers=partner.headers)
        page = http.get(f"/partner/clients/{client_id}").text
        assert f"The 50 latest of 56 records; <code>GET /api/1/clients/{client_id}/audit</code>" in page
        assert page.count('<td data-label="Action">client.updated</td>') == 50

    def test_another_partners_client_is_not_found(self, http, make_partner):
        other = make_partner()
        theirs = new_client(http, other, "setup")
        assert http.get(f"/partner/clients/{theirs}").status_code == 404

    def test_a_forged_form_changes_nothing(self, http, partner):
        trial = new_client(http, partner, "trial")
        answer = http.post(f"/partner/clients/{trial}/status", data={"status": "disabled", "csrf_token": "x"})
        assert answer.status_code == 403
        assert http.get(f"/api/1/clients/{trial}", headers=partner.headers).json()["status"] == "trial"


@pytest.mark.usefixtures("partner_session")
def test_the_plan_shows_each_resource_of_the_pool(http, partner):
    new_client(http, partner, "trial", dashboards=4)
    page = http.get("/partner/plan").text
    assert "Dashboards: 0 yours, 4 allocated, 6 remaining of 10" in page
    assert "API calls per day" in page


def test_the_console_needs_a_signed_in_partner_user(http):
    for path in ("/partner/clients", "/partner/plan", "/partner/clients/1", "/partner/clients/new"):
        assert http.get(path, follow_redirects=False).headers["location"] == "/login"


def test_a_viewer_sees_the_console_read_only_and_its_forms_are_refused(http, partner):
    body = {"email": "viewer@partner.test", "name": "Vi", "role": "viewer", "password": "viewer password"}
    assert http.post("/api/1/partner/users", json=body, headers=partner.headers).status_code == 201
    trial = new_client(http, partner, "trial")
    sign_in(http, "viewer@partner.test", "viewer password")
    base = f"/partner/clients/{trial}"
    page = http.get(base).text
    assert "Client trial" in page and f'action="{base}/status"' not in page and "Save allocation" not in page
    assert "New client" not in http.get("/partner/clients").text
    answer = http.post(f"{base}/status", data={"status": "disabled", "csrf_token": csrf_of(page)})
    assert answer.status_code == 200 and 'class="error"' in answer.text
    assert http.get(f"/api/1/clients/{trial}", headers=partner.headers).json()["status"] == "trial"


@pytest.mark.usefixtures("partner_session")
class TestDownloads:
    def board(self, http, partner, client_id):
        base = f"/partner/clients/{client_id}"
        post_form(http, f"{base}/datasources", base, name="S", kind="inline", csv_text="month,sales\nJan,1\n")
        source = http.get(f"/api/1/clients/{client_id}/datasources", headers=partner.headers).json()["items"][
            0
        ]
        post_form(
            http,
            f"{base}/dashboards",
            base,
            name="B",
            title="T",
            kind="value",
            datasource_id=str(source["id"]),
            value="sales",
        )
        return http.get(f"/api/1/clients/{client_id}/dashboards", headers=partner.headers).json()["items"][0][
            "id"
        ]

    def test_the_console_downloads_a_dashboard_as_a_file(self, http, partner):
        board = self.board(http, partner, new_client(http, partner, "setup"))
        page = http.get("/partner/clients/1").text
        assert f'href="/partner/dashboards/{board}/download?format=pdf"' in page
        answer = http.get(f"/partner/dashboards/{board}/download?format=png")
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
        assert answer.headers["content-disposition"].startswith("attachment;")

    def test_a_refused_download_is_a_sentence_not_json(self, http, partner):
        client_id = new_client(http, partner, "active")
        board = self.board(http, partner, client_id)
        set_status(http, partner, client_id, "disabled")
        answer = http.get(f"/partner/dashboards/{board}/download?format=pdf")
        assert answer.status_code == 409 and answer.headers["content-type"].startswith("text/html")
        assert "Dashboards cannot be downloaded or e-mailed while the client is disabled." in answer.text
        assert '"code"' not in answer.text


def test_a_clients_page_names_its_sources_columns_without_reading_their_snapshots(
    http, partner, database, db
):
    client_id = new_client(http, partner, "trial")
    big = [{"month": f"M{n}", "sales": n, "note": "x" * 50} for n in range(20_000)]
    created = http.post(
        f"/api/1/clients/{client_id}/datasources",
        json={"name": "Big", "kind": "inline", "rows": big},
        headers=partner.headers,
    )
    assert created.status_code == 201, created.text
    sign_in(http, admin_email(db, partner), ADMIN_PASSWORD)
    with statements_sent(database.engine) as statements:
        page = http.get(f"/partner/clients/{client_id}")
    assert page.status_code == 200
    assert "month, sales, note" in page.text
    assert not [s for s in statements if "data_sources.rows" in s]


def test_the_clients_page_shows_the_latest_status_changes_of_a_long_history(partner_session, partner, clock):
    http = partner_session
    created = http.post(
        "/api/1/clients",
        json={"name": "Flappy", "status": "active", "resources": {"dashboards": 1, "users": 1}},
        headers=partner.headers,
    )
    assert created.status_code == 201, created.text
    client_id = created.json()["id"]
    # 205 changes after the creation: disabled, active, disabled, ...
    for n in range(205):
        clock.advance(timedelta(minutes=1))
        set_status(
            http, partner, client_id, "disabled" if n % 2 == 0 else "active", reason=f"change-no-{n:03d}"
        )
    history = http.get(f"/api/1/clients/{client_id}/history?limit=200&offset=200", headers=partner.headers)
    assert history.json()["total"] == 206
    assert history.json()["items"][-1]["reason"] == "change-no-204"  # the API has it

    page = http.get(f"/partner/clients/{client_id}")
    assert page.status_code == 200
    assert "change-no-204" in page.text
    assert "change-no-005" in page.text and "change-no-004" not in page.text  # the 200 latest
    assert "The 200 latest of 206 changes" in page.text
