"""The dashboard builder (SPEC §13) in the portal and the console: the client's admins and editors
build klips from form fields (never JSON), see a live preview, lay the klips out on the grid and
set the dashboard's filters; members never see it; a refused form keeps nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.content import inline_source, portal_dashboard
from tests.factories import PASSWORD, add_partner_viewer, add_user, csrf_of, enter, new_client, sign_in

DAILY = [
    {"day": "2026-11-01", "region": "North", "sales": 120, "cost": 50},
    {"day": "2026-11-02", "region": "South", "sales": 80, "cost": 30},
    {"day": "2026-11-15", "region": "North", "sales": 150, "cost": 70},
]


def builder_of(http, partner, role: str = "editor") -> tuple[int, int, int, str]:
    """An Active client with a dashboard and a daily source, and its user of `role` signed in to
    the portal. Returns (client_id, dashboard_id, source_id, the builder's path)."""
    client_id = new_client(http, partner, "active", dashboards=3)
    add_user(http, partner, client_id, f"{role}@client.test", role=role)
    dashboard_id, _ = portal_dashboard(http, partner, client_id, "Board")
    source_id = inline_source(http, partner, client_id, DAILY)
    assert sign_in(http, f"{role}@client.test", PASSWORD).status_code == 303
    return client_id, dashboard_id, source_id, f"/app/dashboards/{dashboard_id}/builder"


def klips_of(http, partner, dashboard_id: int) -> list[dict[str, Any]]:
    response = http.get(f"/api/1/dashboards/{dashboard_id}", headers=partner.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["klips"])


def send(http, path: str, page: str, **form: Any) -> Any:
    """A builder form as the browser sends it: the page's CSRF token and the fields (lists for
    repeated fields)."""
    return http.post(path, data={"csrf_token": csrf_of(http.get(page).text), **form}, follow_redirects=False)


A_VALUE_KLIP = {
    "title": "Total sales",
    "kind": "value",
    "w": "4",
    "h": "1",
    "value": "total",
    "agg_fn": ["sum", ""],
    "agg_column": ["sales", ""],
    "agg_as": ["total", ""],
    "fmt_style": "currency",
    "fmt_decimals": "0",
    "compare": "target",
    "compare_target": "400",
}


class TestTheBuilderPage:
    def test_an_editor_sees_every_kind_and_the_chosen_sources_columns_with_their_types(self, http, partner):
        _, _, source_id, path = builder_of(http, partner, "editor")
        page = http.get(path)
        assert page.status_code == 200, page.text
        for kind in ("value", "bar", "line", "area", "pie", "donut", "table", "gauge", "text"):
            assert f'<option value="{kind}"' in page.text
        again = send(http, path + "/form", path, kind="bar", datasource_id=str(source_id))
        assert again.status_code == 200
        assert 'name="x"' in again.text and 'name="series"' in again.text
        assert "day (date)" in again.text and "sales (number)" in again.text

    def test_a_member_is_refused_the_builder_and_its_forms(self, http, partner):
        _, dashboard_id, _, path = builder_of(http, partner, "member")
        page = http.get(path)
        assert page.status_code == 403
        assert "can look at dashboards but not build them" in page.text
        portal = http.get(f"/app/dashboards/{dashboard_id}")
        csrf = csrf_of(portal.text) if portal.status_code == 200 else ""
        answer = http.post(
            path + "/klips", data={"csrf_token": csrf, "title": "Sneaky", "kind": "text", "text": "Hi"}
        )
        assert answer.status_code in (303, 403)
        assert [k["title"] for k in klips_of(http, partner, dashboard_id)] == ["Revenue"]

    def test_another_clients_dashboard_is_not_found(self, http, partner):
        other = new_client(http, partner, "active")
        theirs, _ = portal_dashboard(http, partner, other, "Theirs")
        builder_of(http, partner, "admin")
        assert http.get(f"/app/dashboards/{theirs}/builder").status_code == 404

    @pytest.mark.usefixtures("partner_session")
    def test_a_partner_admin_builds_a_clients_dashboard_in_the_console(self, http, partner):
        client_id = new_client(http, partner, "setup")
        dashboard_id, source_id = portal_dashboard(http, partner, client_id, "Console board")
        path = f"/partner/dashboards/{dashboard_id}/builder"
        assert f'href="{path}"' in http.get(f"/partner/clients/{client_id}").text
        form = {**A_VALUE_KLIP, "datasource_id": str(source_id), "value": "sales", "agg_fn": ""}
        answer = send(http, path + "/klips", path, **{**form, "agg_column": "", "agg_as": ""})
        assert answer.status_code == 303 and answer.headers["location"] == path
        assert "Klip Total sales added." in http.get(path).text
        assert [k["title"] for k in klips_of(http, partner, dashboard_id)] == ["Revenue", "Total sales"]


class TestAddingAKlip:
    def test_an_editor_adds_a_klip_from_fields_and_it_is_stored_as_its_definition(self, http, partner):
        _, dashboard_id, source_id, path = builder_of(http, partner, "editor")
        answer = send(http, path + "/klips", path, datasource_id=str(source_id), **A_VALUE_KLIP)
        assert answer.status_code == 303, answer.text
        klip = klips_of(http, partner, dashboard_id)[-1]
        assert klip["title"] == "Total sales"
        assert klip["size"] == {"w": 4, "h": 1}
        assert klip["columns"] == {"value": "total"}
        assert klip["query"] == {"aggregate": [{"fn": "sum", "column": "sales", "as": "total"}]}
        assert klip["format"] == {"style": "currency", "decimals": 0}
        assert klip["compare"] == {"target": 400.0}

    def test_a_bar_with_two_series_stacked_by_month_and_a_sorted_table(self, http, partner):
        _, dashboard_id, source_id, path = builder_of(http, partner, "admin")
        bar = {
            "title": "By month",
            "kind": "bar",
            "datasource_id": str(source_id),
            "x": "day",
            "series": ["sales", "cost"],
            "stacked": "1",
            "group_by": "day",
            "bucket": "month",
            "agg_fn": ["sum", "sum"],
            "agg_column": ["sales", "cost"],
            "agg_as": ["sales", "cost"],
        }
        assert send(http, path + "/klips", path, **bar).status_code == 303
        table = {
            "title": "Rows",
            "kind": "table",
            "datasource_id": str(source_id),
            "fields": ["day", "sales"],
            "sort_column": "sales",
            "sort_desc": "1",
            "limit": "10",
            "where_column": ["region"],
            "where_op": ["eq"],
            "where_value": ["North"],
        }
        assert send(http, path + "/klips", path, **table).status_code == 303
        _, made_bar, made_table = klips_of(http, partner, dashboard_id)
        assert made_bar["series"] == [{"column": "sales"}, {"column": "cost"}] and made_bar["stacked"] is True
        assert made_bar["query"]["group_by"] == [{"column": "day", "bucket": "month"}]
        assert made_table["columns"] == {"fields": ["day", "sales"]}
        assert made_table["query"] == {
            "filter": [{"column": "region", "op": "eq", "value": "North"}],
            "sort": [{"column": "sales", "desc": True}],
            "limit": 10,
        }

    def test_a_text_klip_needs_no_source(self, http, partner):
        _, dashboard_id, _, path = builder_of(http, partner, "editor")
        answer = send(http, path + "/klips", path, title="Notes", kind="text", text="**Read** me")
        assert answer.status_code == 303
        assert klips_of(http, partner, dashboard_id)[-1]["text"] == "**Read** me"

    def test_a_column_the_source_lacks_is_refused_on_the_builder_with_its_sentence_and_nothing_is_kept(
        self, http, partner
    ):
        _, dashboard_id, source_id, path = builder_of(http, partner, "editor")
        form = {**A_VALUE_KLIP, "datasource_id": str(source_id), "agg_column": ["salez", ""]}
        answer = send(http, path + "/klips", path, **form)
        assert answer.status_code == 303 and answer.headers["location"] == path
        page = http.get(path).text
        assert "salez" in page and 'role="alert"' in page
        assert [k["title"] for k in klips_of(http, partner, dashboard_id)] == ["Revenue"]

    def test_a_form_without_its_csrf_token_is_refused_and_nothing_is_kept(self, http, partner):
        _, dashboard_id, source_id, path = builder_of(http, partner, "editor")
        answer = http.post(path + "/klips", data={**A_VALUE_KLIP, "datasource_id": str(source_id)})
        assert answer.status_code == 403 and "Form expired" in answer.text
        other = http.post(path + "/klips", data={**A_VALUE_KLIP, "csrf_token": "forged"})
        assert other.status_code == 403
        assert [k["title"] for k in klips_of(http, partner, dashboard_id)] == ["Revenue"]

    def test_malformed_query_json_is_refused_in_words(self, http, partner):
        _, dashboard_id, source_id, path = builder_of(http, partner, "editor")
        form = {**A_VALUE_KLIP, "datasource_id": str(source_id), "query_json": "{not json"}
        send(http, path + "/klips", path, **form)
        assert "Query (JSON): not valid JSON" in http.get(path).text
        assert len(klips_of(http, partner, dashboard_id)) == 1

    @pytest.mark.parametrize(
        "query_json",
        [
            '{"limit": 1' + "0" * 5000 + "}",  # past Python's 4,300 digits of int-from-text
            "[" * 5000 + "]" * 5000,  # past the interpreter's recursion limit
        ],
        ids=["a 5,000-digit number", "arrays 5,000 deep"],
    )
    @pytest.mark.parametrize("action", ["/klips", "/preview"])
    def test_query_json_the_parser_cannot_read_is_refused_in_words_never_a_500(
        self, http, partner, query_json, action
    ):
        _, dashboard_id, source_id, path = builder_of(http, partner, "editor")
        form = {**A_VALUE_KLIP, "datasource_id": str(source_id), "query_json": query_json}
        answer = send(http, path + action, path, **form)
        assert answer.status_code < 500
        shown = answer.text if action == "/preview" else http.get(path).text
        assert "Query (JSON): not a query this builder can read." in shown
        assert len(klips_of(http, partner, dashboard_id)) == 1


class TestThePreview:
    def test_the_preview_draws_the_klip_as_the_fields_describe_it_and_saves_nothing(self, http, partner):
        _, dashboard_id, source_id, path = builder_of(http, partner, "editor")
        preview = send(http, path + "/preview", path, datasource_id=str(source_id), **A_VALUE_KLIP)
        assert preview.status_code == 200, preview.text
        assert "<svg" in preview.text and "1 row after the query" in preview.text
        assert len(klips_of(http, partner, dashboard_id)) == 1

    def test_a_bad_column_answers_422_with_the_sentence_in_place_of_the_preview(self, http, partner):
        _, _, source_id, path = builder_of(http, partner, "editor")
        form = {**A_VALUE_KLIP, "datasource_id": str(source_id), "value": "nothing_here"}
        preview = send(http, path + "/preview", path, **form)
        assert preview.status_code == 422
        assert preview.text.startswith('<p class="error" role="alert">') and "nothing_here" in preview.text


class TestEditingAndLayout:
    def test_editing_a_klip_fills_the_form_and_saving_replaces_it_whole(self, http, partner):
        _, dashboard_id, source_id, path = builder_of(http, partner, "editor")
        send(http, path + "/klips", path, datasource_id=str(source_id), **A_VALUE_KLIP)
        klip_id = klips_of(http, partner, dashboard_id)[-1]["id"]
        form_page = http.get(path, params={"klip": klip_id}).text
        assert 'value="Total sales"' in form_page and "Save klip" in form_page
        assert '<option value="target" selected>' in form_page
        changed = {**A_VALUE_KLIP, "title": "Sales", "compare": "", "compare_target": ""}
        answer = send(http, f"{path}/klips/{klip_id}", path, datasource_id=str(source_id), **changed)
        assert answer.status_code == 303
        klip = klips_of(http, partner, dashboard_id)[-1]
        assert klip["title"] == "Sales" and klip["compare"] is None

    def test_a_klip_is_resized_moved_and_removed(self, http, partner):
        _, dashboard_id, source_id, path = builder_of(http, partner, "editor")
        send(http, path + "/klips", path, datasource_id=str(source_id), **A_VALUE_KLIP)
        first, second = (k["id"] for k in klips_of(http, partner, dashboard_id))
        assert send(http, path + "/layout", path, klip_id=str(first), w="12", h="3").status_code == 303
        assert send(http, path + "/layout", path, klip_id=str(second), move="up").status_code == 303
        klips = klips_of(http, partner, dashboard_id)
        assert [k["id"] for k in klips] == [second, first]
        assert klips[1]["size"] == {"w": 12, "h": 3}
        refused = send(http, path + "/layout", path, klip_id=str(first), w="13", h="3")
        assert refused.status_code == 303 and "12" in http.get(path).text
        assert klips_of(http, partner, dashboard_id)[1]["size"] == {"w": 12, "h": 3}
        assert send(http, f"{path}/klips/{second}/remove", path).status_code == 303
        assert [k["id"] for k in klips_of(http, partner, dashboard_id)] == [first]


class TestFilters:
    def test_a_filter_is_added_and_removed(self, http, partner):
        _, dashboard_id, _, path = builder_of(http, partner, "editor")
        form = {
            "filter_id": "period",
            "filter_kind": "date_range",
            "filter_column": "day",
            "filter_label": "Period",
            "filter_default": "last_90_days",
        }
        assert send(http, path + "/filters", path, **form).status_code == 303
        dashboard = http.get(f"/api/1/dashboards/{dashboard_id}", headers=partner.headers).json()
        assert dashboard["filters"] == [
            {
                "id": "period",
                "kind": "date_range",
                "column": "day",
                "label": "Period",
                "default": "last_90_days",
            }
        ]
        assert send(http, path + "/filters/remove", path, filter_id="period").status_code == 303
        assert http.get(f"/api/1/dashboards/{dashboard_id}", headers=partner.headers).json()["filters"] == []

    def test_a_filter_with_a_bad_id_is_refused_in_words(self, http, partner):
        _, dashboard_id, _, path = builder_of(http, partner, "editor")
        form = {"filter_id": "Bad Id", "filter_kind": "select", "filter_column": "region"}
        send(http, path + "/filters", path, **form)
        assert "Id:" in http.get(path).text
        assert http.get(f"/api/1/dashboards/{dashboard_id}", headers=partner.headers).json()["filters"] == []


class TestWhoBuilds:
    def test_a_partner_viewer_is_refused_the_console_builder(self, http, partner, database, clock):
        client_id = new_client(http, partner, "active")
        dashboard_id, _ = portal_dashboard(http, partner, client_id, "Board")
        add_partner_viewer(database, partner, clock)
        assert sign_in(http, "viewer@partner.test", PASSWORD).status_code == 303
        page = http.get(f"/partner/dashboards/{dashboard_id}/builder")
        assert page.status_code == 403 and "not build them" in page.text

    @pytest.mark.usefixtures("partner_session")
    def test_a_partner_signed_in_as_the_client_builds_in_admin_mode_but_not_in_view_only(self, http, partner):
        client_id = new_client(http, partner, "active")
        dashboard_id, _ = portal_dashboard(http, partner, client_id, "Board")
        path = f"/app/dashboards/{dashboard_id}/builder"
        assert enter(http, client_id, "admin").status_code == 303
        assert http.get(path).status_code == 200
        csrf = csrf_of(http.get("/app").text)
        assert http.post("/partner/return", data={"csrf_token": csrf}).status_code in (200, 303)
        assert enter(http, client_id, "view_only").status_code == 303
        page = http.get(path)
        assert page.status_code == 403 and "view-only" in page.text
        assert "Builder" not in http.get("/app").text


class TestMalformedFields:
    @pytest.mark.parametrize(
        ("path_tail", "fields"),
        [
            ("/klips", {"title": "Total\u2028sales"}),
            ("/klips", {"datasource_id": "not-a-number"}),
            ("/klips", {"limit": "ten"}),
            ("/klips", {"w": "0"}),
            ("/klips", {"fmt_currency": "dollars"}),
            ("/klips", {"where_column": ["sales"], "where_op": ["between"], "where_value": ["1"]}),
            ("/layout", {"klip_id": "abc"}),
            (
                "/filters",
                {
                    "filter_id": "period",
                    "filter_kind": "date_range",
                    "filter_column": "day",
                    "filter_default": "soon",
                },
            ),
        ],
    )
    def test_a_malformed_field_is_refused_in_words_never_a_500_and_nothing_is_kept(
        self, http, partner, path_tail, fields
    ):
        _, dashboard_id, source_id, path = builder_of(http, partner, "editor")
        before = http.get(f"/api/1/dashboards/{dashboard_id}", headers=partner.headers).json()
        form = {**A_VALUE_KLIP, "datasource_id": str(source_id), **fields}
        answer = send(http, path + path_tail, path, **form)
        assert answer.status_code in (303, 422), answer.text
        if answer.status_code == 303:
            assert 'class="error" role="alert"' in http.get(path).text
        after = http.get(f"/api/1/dashboards/{dashboard_id}", headers=partner.headers).json()
        assert after["klips"] == before["klips"] and after["filters"] == before["filters"]
