"""Klips of the second edition (SPEC §13): adding, changing, removing and laying out klips one by
one, previews, dashboard filters on published pages and exports, comparisons with the previous
period, klips whose source changed under them, and who may build what."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tenantry.errors import NotFound
from tests.content import client_key, inline_source, make_client

DAILY = [
    {"day": "2026-02-24", "region": "North", "sales": 10},
    {"day": "2026-02-26", "region": "South", "sales": 30},
    {"day": "2026-03-01", "region": "North", "sales": 20},
    {"day": "2026-03-03", "region": "South", "sales": 40},
    {"day": "2026-03-09", "region": "North", "sales": 100},
]
TOTAL = {
    "title": "Sales",
    "kind": "value",
    "columns": {"value": "total"},
    "query": {"aggregate": [{"fn": "sum", "column": "sales", "as": "total"}]},
    "compare": "previous_period",
}
BY_REGION = {
    "title": "By region",
    "kind": "bar",
    "columns": {"x": "region", "y": "total"},
    "query": {"group_by": ["region"], "aggregate": [{"fn": "sum", "column": "sales", "as": "total"}]},
    "size": {"w": 12, "h": 3},
}
NOTE = {
    "title": "Read me",
    "kind": "text",
    "text": "Numbers are **net** of refunds.",
    "size": {"w": 4, "h": 1},
}
FILTERS = [
    {"id": "period", "kind": "date_range", "column": "day", "label": "Period"},
    {"id": "region", "kind": "select", "column": "region"},
]


def board(http, partner, client_id: int | None = None, klips=(TOTAL,), filters=FILTERS, rows=DAILY):
    """A dashboard over the daily rows: (source_id, dashboard body)."""
    source_id = inline_source(http, partner, client_id, rows)
    path = f"/api/1/clients/{client_id}/dashboards" if client_id else "/api/1/partner/dashboards"
    body = {
        "name": "Daily",
        "filters": filters,
        "klips": [k if k["kind"] == "text" else {**k, "datasource_id": source_id} for k in klips],
    }
    response = http.post(path, json=body, headers=partner.headers)
    assert response.status_code == 201, response.text
    return source_id, response.json()


def get(http, partner, dashboard_id: int) -> dict[str, Any]:
    response = http.get(f"/api/1/dashboards/{dashboard_id}", headers=partner.headers)
    assert response.status_code == 200
    return dict(response.json())


def published(http, partner, dashboard_id: int) -> str:
    response = http.post(
        f"/api/1/dashboards/{dashboard_id}/published-links", json={"name": "Wall"}, headers=partner.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["url"]).removeprefix("http://127.0.0.1:8000")


def said(page: str, title: str) -> str:
    """What the klip titled `title` says in words (its drawing's text alternative)."""
    found = re.search(rf'role="img" aria-label="{re.escape(title)}"><desc>([^<]*)</desc>', page)
    assert found is not None, f"no klip {title!r} drawn"
    return found[1]


def shows(page: str, title: str) -> str:
    """The number a value klip shows (its text alternative before any comparison)."""
    return said(page, title).split(",")[0]


def named(problem: dict[str, Any], field: str) -> bool:
    """Whether a 422 problem names `field` in its detail (`query.compute[0].expr`) and in its
    errors' locations (as pydantic gives them: `["body", "query", "compute", 0, "expr"]`)."""
    locations = [".".join(str(p) for p in e["loc"] if p != "body") for e in problem.get("errors", [])]
    dotted = re.sub(r"\[(\d+)\]", r".\1", field)
    return problem["detail"].startswith(field) and any(loc.startswith(dotted) for loc in locations)


class TestKlipEndpoints:
    def test_a_klip_is_added_at_the_end_with_its_size_and_whole_definition(self, http, partner):
        source_id, dashboard = board(http, partner)
        response = http.post(
            f"/api/1/dashboards/{dashboard['id']}/klips",
            json={**BY_REGION, "datasource_id": source_id},
            headers=partner.headers,
        )
        assert response.status_code == 201, response.text
        klip = response.json()
        assert klip["position"] == 1
        assert klip["size"] == {"w": 12, "h": 3}
        assert klip["query"]["aggregate"] == [{"fn": "sum", "column": "sales", "as": "total"}]
        assert (klip["stacked"], klip["orientation"], klip["compare"]) == (False, "vertical", None)
        assert [k["id"] for k in get(http, partner, dashboard["id"])["klips"]][-1] == klip["id"]

    def test_a_first_edition_klip_body_still_saves_and_reads_back(self, http, partner):
        source_id, dashboard = board(http, partner)
        old = {
            "title": "Old",
            "kind": "bar",
            "datasource_id": source_id,
            "columns": {"x": "day", "y": "sales"},
        }
        response = http.post(f"/api/1/dashboards/{dashboard['id']}/klips", json=old, headers=partner.headers)
        assert response.status_code == 201, response.text
        assert response.json()["columns"] == {"x": "day", "y": "sales"}
        assert response.json()["size"] == {"w": 6, "h": 2}

    def test_a_text_klip_needs_no_source(self, http, partner):
        _, dashboard = board(http, partner)
        response = http.post(f"/api/1/dashboards/{dashboard['id']}/klips", json=NOTE, headers=partner.headers)
        assert response.status_code == 201, response.text
        assert (response.json()["datasource_id"], response.json()["text"]) == (None, NOTE["text"])

    def test_patching_a_klip_replaces_only_the_fields_given(self, http, partner):
        _, dashboard = board(http, partner)
        klip_id = dashboard["klips"][0]["id"]
        response = http.patch(
            f"/api/1/dashboards/{dashboard['id']}/klips/{klip_id}",
            json={"title": "Revenue", "format": {"style": "currency"}, "size": {"w": 3, "h": 1}},
            headers=partner.headers,
        )
        assert response.status_code == 200, response.text
        klip = response.json()
        assert (klip["title"], klip["format"], klip["size"]) == (
            "Revenue",
            {"style": "currency"},
            {"w": 3, "h": 1},
        )
        assert (klip["compare"], klip["query"]) == ("previous_period", TOTAL["query"])

    def test_deleting_a_klip_keeps_the_others_in_order(self, http, partner):
        _, dashboard = board(http, partner, klips=(TOTAL, BY_REGION, NOTE))
        first, second, third = (k["id"] for k in dashboard["klips"])
        path = f"/api/1/dashboards/{dashboard['id']}/klips/{second}"
        assert http.delete(path, headers=partner.headers).status_code == 204
        klips = get(http, partner, dashboard["id"])["klips"]
        assert [(k["id"], k["position"]) for k in klips] == [(first, 0), (third, 1)]
        assert http.delete(path, headers=partner.headers).status_code == 404

    def test_a_layout_orders_and_sizes_every_klip(self, http, partner):
        _, dashboard = board(http, partner, klips=(TOTAL, BY_REGION, NOTE))
        first, second, third = (k["id"] for k in dashboard["klips"])
        layout = [
            {"id": third, "size": {"w": 12, "h": 1}},
            {"id": first, "size": {"w": 4, "h": 2}},
            {"id": second, "size": {"w": 8, "h": 2}},
        ]
        response = http.put(
            f"/api/1/dashboards/{dashboard['id']}/layout", json={"klips": layout}, headers=partner.headers
        )
        assert response.status_code == 200, response.text
        klips = get(http, partner, dashboard["id"])["klips"]
        assert [{"id": k["id"], "size": k["size"]} for k in klips] == layout
        assert [k["position"] for k in klips] == [0, 1, 2]

    def test_filters_are_set_on_create_patch_and_put(self, http, partner):
        _, dashboard = board(http, partner)
        assert dashboard["filters"] == [
            {"id": "period", "kind": "date_range", "column": "day", "label": "Period", "default": None},
            {"id": "region", "kind": "select", "column": "region", "label": None, "default": None},
        ]
        one = [{"id": "period", "kind": "date_range", "column": "day", "default": "last_30_days"}]
        patched = http.patch(
            f"/api/1/dashboards/{dashboard['id']}", json={"filters": one}, headers=partner.headers
        )
        assert patched.status_code == 200
        assert [f["default"] for f in patched.json()["filters"]] == ["last_30_days"]
        put = http.put(
            f"/api/1/dashboards/{dashboard['id']}/filters", json={"filters": []}, headers=partner.headers
        )
        assert put.status_code == 200
        assert get(http, partner, dashboard["id"])["filters"] == []

    def test_a_preview_answers_the_querys_rows_and_a_drawing_and_saves_nothing(self, http, partner):
        source_id, dashboard = board(http, partner)
        response = http.post(
            "/api/1/klips/preview", json={**BY_REGION, "datasource_id": source_id}, headers=partner.headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["columns"] == ["region", "total"]
        assert sorted((r["region"], r["total"]) for r in body["rows"]) == [("North", 130), ("South", 70)]
        assert body["svg"].startswith("<svg")
        assert get(http, partner, dashboard["id"]) == dashboard

    def test_a_preview_buckets_timestamps_on_the_partners_days(self, http, partner):
        rows = [{"at": "2026-02-28T23:30:00Z", "sales": 5}, {"at": "2026-03-05T10:00:00Z", "sales": 7}]
        source_id = inline_source(http, partner, None, rows)
        body = {
            "datasource_id": source_id,
            "kind": "table",
            "query": {
                "group_by": [{"column": "at", "bucket": "month"}],
                "aggregate": [{"fn": "sum", "column": "sales", "as": "total"}],
            },
        }
        utc = http.post("/api/1/klips/preview", json=body, headers=partner.headers)
        assert utc.status_code == 200, utc.text
        assert utc.json()["rows"] == [{"at": "2026-02-01", "total": 5}, {"at": "2026-03-01", "total": 7}]
        moved = http.patch("/api/1/partner", json={"timezone": "Europe/Paris"}, headers=partner.headers)
        assert moved.status_code == 200
        paris = http.post("/api/1/klips/preview", json=body, headers=partner.headers)
        assert paris.json()["rows"] == [{"at": "2026-03-01", "total": 12}]

    def test_a_preview_shows_at_most_200_rows(self, http, partner):
        rows = [{"n": i} for i in range(250)]
        source_id = inline_source(http, partner, None, rows)
        response = http.post(
            "/api/1/klips/preview",
            json={"kind": "table", "datasource_id": source_id},
            headers=partner.headers,
        )
        assert response.status_code == 200, response.text
        assert (len(response.json()["rows"]), response.json()["truncated"]) == (200, True)


def _klip_with(**changes: Any) -> dict[str, Any]:
    return {**TOTAL, **changes}


BAD_KLIPS = [
    pytest.param(_klip_with(kind="sparkle"), "kind", id="an unknown kind"),
    pytest.param(
        _klip_with(columns={"value": "profit"}, query=None, compare=None),
        "columns.value",
        id="a column the source lacks",
    ),
    pytest.param(
        _klip_with(query={"aggregate": [{"fn": "sum", "column": "region", "as": "total"}]}),
        "query.aggregate[0].column",
        id="a sum of a text column",
    ),
    pytest.param(_klip_with(size={"w": 13, "h": 2}), "size.w", id="a width of 13"),
    pytest.param(
        _klip_with(
            kind="table",
            columns={},
            compare=None,
            query={"compute": [{"as": "x", "expr": "__import__('os')"}]},
        ),
        "query.compute[0].expr",
        id="an expression calling anything but round, abs and coalesce",
    ),
]


class TestBadKlipsAreRefusedAndChangeNothing:
    @pytest.mark.parametrize(("klip", "field"), BAD_KLIPS)
    def test_adding_it(self, http, partner, klip, field):
        source_id, dashboard = board(http, partner)
        response = http.post(
            f"/api/1/dashboards/{dashboard['id']}/klips",
            json={**klip, "datasource_id": source_id},
            headers=partner.headers,
        )
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "validation_error"
        assert named(response.json(), field), response.json()
        assert get(http, partner, dashboard["id"]) == dashboard

    @pytest.mark.parametrize(("klip", "field"), BAD_KLIPS)
    def test_patching_a_klip_into_it(self, http, partner, klip, field):
        _, dashboard = board(http, partner)
        changes = {k: v for k, v in klip.items() if k != "title"}
        response = http.patch(
            f"/api/1/dashboards/{dashboard['id']}/klips/{dashboard['klips'][0]['id']}",
            json=changes,
            headers=partner.headers,
        )
        assert response.status_code == 422, response.text
        assert named(response.json(), field), response.json()
        assert get(http, partner, dashboard["id"]) == dashboard

    @pytest.mark.parametrize(("klip", "field"), BAD_KLIPS)
    def test_previewing_it(self, http, partner, klip, field):
        source_id = inline_source(http, partner, None, DAILY)
        response = http.post(
            "/api/1/klips/preview", json={**klip, "datasource_id": source_id}, headers=partner.headers
        )
        assert response.status_code == 422, response.text
        assert named(response.json(), field), response.json()

    def test_creating_a_dashboard_names_the_klip_at_fault(self, http, partner):
        source_id = inline_source(http, partner, None, DAILY)
        klips = [
            {**TOTAL, "datasource_id": source_id},
            {
                **TOTAL,
                "columns": {"value": "profit"},
                "query": None,
                "compare": None,
                "datasource_id": source_id,
            },
        ]
        response = http.post(
            "/api/1/partner/dashboards", json={"name": "D", "klips": klips}, headers=partner.headers
        )
        assert response.status_code == 422
        assert named(response.json(), "klips[1].columns.value"), response.json()
        assert http.get("/api/1/partner/dashboards", headers=partner.headers).json()["total"] == 0

    def test_the_expression_refusal_says_where_in_the_expression(self, http, partner):
        (klip, _field) = BAD_KLIPS[4].values
        source_id = inline_source(http, partner, None, DAILY)
        response = http.post(
            "/api/1/klips/preview", json={**klip, "datasource_id": source_id}, headers=partner.headers
        )
        assert "position 0" in response.json()["detail"]

    @pytest.mark.parametrize(
        "layout",
        [
            pytest.param(lambda a, b: [a], id="a klip missing"),
            pytest.param(lambda a, b: [a, b, a], id="a klip twice"),
            pytest.param(
                lambda a, b: [a, b, {"id": 999_999, "size": {"w": 6, "h": 2}}], id="an unknown klip"
            ),
        ],
    )
    def test_a_layout_that_does_not_list_every_klip_exactly_once(self, http, partner, layout):
        _, dashboard = board(http, partner, klips=(TOTAL, BY_REGION))
        a, b = ({"id": k["id"], "size": {"w": 2, "h": 1}} for k in dashboard["klips"])
        response = http.put(
            f"/api/1/dashboards/{dashboard['id']}/layout",
            json={"klips": layout(a, b)},
            headers=partner.headers,
        )
        assert response.status_code == 422
        assert named(response.json(), "klips"), response.json()
        assert get(http, partner, dashboard["id"]) == dashboard

    @pytest.mark.parametrize(
        ("filters", "field"),
        [
            pytest.param(
                [{**FILTERS[0], "default": "last_fortnight"}],
                "filters[0].default",
                id="a default that is no range",
            ),
            pytest.param([FILTERS[0], FILTERS[0]], "filters", id="two filters with one id"),
            pytest.param([{**FILTERS[0], "kind": "slider"}], "filters.0.kind", id="an unknown kind"),
        ],
    )
    def test_bad_filters(self, http, partner, filters, field):
        _, dashboard = board(http, partner)
        response = http.put(
            f"/api/1/dashboards/{dashboard['id']}/filters", json={"filters": filters}, headers=partner.headers
        )
        assert response.status_code == 422
        assert field in response.json()["detail"], response.json()
        assert get(http, partner, dashboard["id"]) == dashboard


HUGE = 10**400  # a JSON integer no float holds
JSON = {"Content-Type": "application/json"}


def sent(http, method: str, path: str, body: Any, headers: dict[str, str]):
    """The body as JSON text, as any client's script sends it: `"@@"` becomes a lone surrogate's
    escape (`"\\ud800"`), and the texts `"1e400"` and `"NaN"` the bare numbers (Python's JSON
    parser reads them as infinity and NaN)."""
    text = json.dumps(body).replace("@@", "\\ud800")
    text = text.replace('"<1e400>"', "1e400").replace('"<NaN>"', "NaN")
    return http.request(method, path, content=text.encode(), headers={**headers, **JSON})


def filtered(*conditions: dict[str, Any]) -> dict[str, Any]:
    """A table klip of the daily rows with these filter conditions (its source is added)."""
    return {"title": "Rows", "kind": "table", "columns": {}, "query": {"filter": list(conditions)}}


TOO_LARGE = [
    pytest.param({"column": "sales", "op": "eq", "value": HUGE}, id="eq"),
    pytest.param({"column": "sales", "op": "gt", "value": -HUGE}, id="gt, below zero"),
    pytest.param({"column": "sales", "op": "in", "value": [1, HUGE]}, id="in"),
    pytest.param({"column": "sales", "op": "between", "value": [1, HUGE]}, id="between"),
    pytest.param({"column": "sales", "op": "eq", "value": "<1e400>"}, id="1e400, read as infinity"),
    pytest.param({"column": "sales", "op": "ne", "value": "<NaN>"}, id="NaN"),
]
UNSPEAKABLE = [
    pytest.param({"column": "region", "op": "eq", "value": "North@@"}, id="a lone surrogate"),
    pytest.param({"column": "region", "op": "contains", "value": "@@"}, id="a lone surrogate to contain"),
    pytest.param(
        {"column": "region", "op": "in", "value": ["North", "S@@"]}, id="a lone surrogate in a list"
    ),
    pytest.param(
        {"column": "day", "op": "between", "value": "2026-03-01..@@"}, id="a lone surrogate in a..b"
    ),
    pytest.param({"column": "region", "op": "eq", "value": "North\x00"}, id="a NUL"),
    pytest.param({"column": "region", "op": "eq", "value": "North\u2028"}, id="a line separator"),
]


class TestFilterValuesAKlipCannotTakeAreRefused:
    """SPEC §12 "Text": a filter value no query can compare with is a 422 naming it, the refused
    request keeps nothing, and no value that is kept makes a later listing or drawing fail."""

    @pytest.mark.parametrize("condition", TOO_LARGE)
    def test_a_filter_value_too_large_for_a_number_is_refused_with_422(self, http, partner, condition):
        source_id = inline_source(http, partner, None, DAILY)
        body = {**filtered(condition), "datasource_id": source_id}

        preview = sent(http, "POST", "/api/1/klips/preview", body, partner.headers)
        created = sent(
            http, "POST", "/api/1/partner/dashboards", {"name": "D", "klips": [body]}, partner.headers
        )

        assert preview.status_code == 422, preview.text
        assert preview.json()["code"] == "validation_error"
        assert named(preview.json(), "query.filter.0.value"), preview.json()
        assert "must be a finite number" in preview.json()["detail"]
        assert created.status_code == 422, created.text
        assert named(created.json(), "klips.0.query.filter.0.value"), created.json()
        assert http.get("/api/1/partner/dashboards", headers=partner.headers).json()["total"] == 0

    @pytest.mark.parametrize("condition", UNSPEAKABLE)
    def test_a_filter_value_with_a_lone_surrogate_or_control_character_is_refused_with_422(
        self, http, partner, condition
    ):
        source_id = inline_source(http, partner, None, DAILY)
        body = {**filtered(condition), "datasource_id": source_id}

        preview = sent(http, "POST", "/api/1/klips/preview", body, partner.headers)
        created = sent(
            http, "POST", "/api/1/partner/dashboards", {"name": "D", "klips": [body]}, partner.headers
        )
        listed = http.get("/api/1/partner/dashboards", headers=partner.headers)

        assert preview.status_code == 422, preview.text
        assert preview.json()["detail"].startswith(
            "query.filter.0.value: must not contain control characters"
        )
        assert created.status_code == 422, created.text
        assert named(created.json(), "klips.0.query.filter.0.value"), created.json()
        assert listed.status_code == 200, listed.text
        assert listed.json()["total"] == 0

    def test_the_refusal_says_which_item_of_a_list_is_wrong(self, http, partner):
        source_id = inline_source(http, partner, None, DAILY)
        body = {
            **filtered({"column": "sales", "op": "in", "value": [1, 2, HUGE]}),
            "datasource_id": source_id,
        }

        response = sent(http, "POST", "/api/1/klips/preview", body, partner.headers)

        assert response.status_code == 422, response.text
        assert "(item 3 of the list)" in response.json()["detail"]

    @pytest.mark.parametrize("condition", [TOO_LARGE[0], UNSPEAKABLE[0]])
    def test_adding_or_patching_a_klip_to_such_a_value_is_refused_and_changes_nothing(
        self, http, partner, condition
    ):
        source_id, dashboard = board(http, partner)
        klip = {**filtered(condition), "datasource_id": source_id}
        added = sent(http, "POST", f"/api/1/dashboards/{dashboard['id']}/klips", klip, partner.headers)
        patched = sent(
            http,
            "PATCH",
            f"/api/1/dashboards/{dashboard['id']}/klips/{dashboard['klips'][0]['id']}",
            {"query": klip["query"]},
            partner.headers,
        )

        assert added.status_code == 422, added.text
        assert named(added.json(), "query.filter.0.value"), added.json()
        assert patched.status_code == 422, patched.text
        assert named(patched.json(), "query.filter.0.value"), patched.json()
        assert get(http, partner, dashboard["id"]) == dashboard

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            pytest.param({"max": "<1e400>"}, "max", id="a maximum of 1e400"),
            pytest.param({"min": "<NaN>"}, "min", id="a minimum of NaN"),
            pytest.param({"target": "<1e400>"}, "target", id="a target of 1e400"),
        ],
    )
    def test_a_gauge_number_that_is_not_finite_is_refused_not_kept_as_null(
        self, http, partner, changes, field
    ):
        source_id = inline_source(http, partner, None, DAILY)
        gauge = {"title": "G", "kind": "gauge", "datasource_id": source_id, "columns": {"value": "sales"}}

        created = sent(
            http,
            "POST",
            "/api/1/partner/dashboards",
            {"name": "D", "klips": [{**gauge, **changes}]},
            partner.headers,
        )

        assert created.status_code == 422, created.text
        assert named(created.json(), f"klips.0.{field}"), created.json()
        assert http.get("/api/1/partner/dashboards", headers=partner.headers).json()["total"] == 0

    def test_the_largest_numbers_a_float_holds_are_still_welcome_and_drawn(self, http, partner):
        source_id = inline_source(http, partner, None, DAILY)
        klip = filtered(
            {"column": "sales", "op": "lt", "value": 10**300},
            {"column": "sales", "op": "between", "value": [-1.7e308, 1.7e308]},
        )

        created = sent(
            http,
            "POST",
            "/api/1/partner/dashboards",
            {"name": "D", "klips": [{**klip, "datasource_id": source_id}]},
            partner.headers,
        )

        assert created.status_code == 201, created.text
        page = http.get(published(http, partner, created.json()["id"]))
        assert page.status_code == 200
        assert "Needs attention" not in page.text
        assert "could not be drawn" not in page.text


class TestFiltersOnPublishedPages:
    def test_filter_values_change_the_numbers(self, http, partner):
        _, dashboard = board(http, partner)
        url = published(http, partner, dashboard["id"])
        everything = http.get(url)
        assert everything.status_code == 200
        assert shows(everything.text, "Sales") == "200"
        assert shows(http.get(url, params={"f.region": "North"}).text, "Sales") == "130"
        assert shows(http.get(url, params={"f.period": "2026-03-01..2026-03-05"}).text, "Sales") == "60"
        both = http.get(url, params={"f.period": "2026-03-01..2026-03-05", "f.region": "South"})
        assert shows(both.text, "Sales") == "40"

    def test_a_date_preset_counts_from_today_in_the_partners_timezone(self, http, partner):
        # The tests' clock says 2026-03-10: the last 7 days are 03-04 to 03-10.
        _, dashboard = board(http, partner)
        url = published(http, partner, dashboard["id"])
        assert shows(http.get(url, params={"f.period": "last_7_days"}).text, "Sales") == "100"

    def test_today_is_the_partners_today(self, http, partner, clock):
        # At 12:00 UTC on 03-10 it is already 03-11 on Kiritimati (UTC+14).
        rows = [*DAILY, {"day": "2026-03-11", "region": "East", "sales": 7}]
        _, dashboard = board(http, partner, rows=rows)
        url = published(http, partner, dashboard["id"])
        assert shows(http.get(url, params={"f.period": "today"}).text, "Sales") != "7"
        moved = http.patch("/api/1/partner", json={"timezone": "Pacific/Kiritimati"}, headers=partner.headers)
        assert moved.status_code == 200
        assert shows(http.get(url, params={"f.period": "today"}).text, "Sales") == "7"

    def test_a_timestamp_with_an_offset_falls_on_its_day_in_the_partners_timezone(self, http, partner):
        # SPEC §13: dates count in the client's timezone. The source sends instants in UTC; in
        # Paris the first is 1 March 00:30 and the last 1 April 00:30 (summer time from 29 March).
        rows = [
            {"day": "2026-02-28T23:30:00Z", "region": "North", "sales": 5},
            {"day": "2026-03-05T10:00:00Z", "region": "North", "sales": 7},
            {"day": "2026-03-31T22:30:00Z", "region": "North", "sales": 1000},
        ]
        _, dashboard = board(http, partner, rows=rows)
        url = published(http, partner, dashboard["id"])
        assert said(http.get(url, params={"f.period": "this_month"}).text, "Sales").startswith("1,007")
        moved = http.patch("/api/1/partner", json={"timezone": "Europe/Paris"}, headers=partner.headers)
        assert moved.status_code == 200
        assert shows(http.get(url, params={"f.period": "this_month"}).text, "Sales") == "12"

    def test_filters_work_behind_a_links_password(self, http, partner):
        _, dashboard = board(http, partner)
        response = http.post(
            f"/api/1/dashboards/{dashboard['id']}/published-links",
            json={"name": "Locked", "password": "open sesame"},
            headers=partner.headers,
        )
        url = str(response.json()["url"]).removeprefix("http://127.0.0.1:8000")
        asked = http.get(url, params={"f.region": "North"})
        assert asked.status_code == 401 and "Sales" not in asked.text
        assert http.post(url, data={"password": "open sesame"}, follow_redirects=False).status_code == 303
        assert shows(http.get(url, params={"f.region": "North"}).text, "Sales") == "130"

    def test_the_previous_period_is_the_same_length_just_before(self, http, partner):
        _, dashboard = board(http, partner)
        url = published(http, partner, dashboard["id"])
        # 03-01..03-05 holds 20 + 40; 02-24..02-28 holds 10 + 30: up 50%.
        page = http.get(url, params={"f.period": "2026-03-01..2026-03-05"}).text
        assert said(page, "Sales") == "60, +50.0% vs previous period"
        north = http.get(url, params={"f.period": "2026-03-01..2026-03-05", "f.region": "North"}).text
        assert said(north, "Sales") == "20, +100.0% vs previous period"

    def test_a_filter_on_a_column_a_source_lacks_leaves_its_klips_alone(self, http, partner):
        other = inline_source(http, partner, None, [{"team": "A", "sales": 5}, {"team": "B", "sales": 7}])
        _, dashboard = board(http, partner)
        added = http.post(
            f"/api/1/dashboards/{dashboard['id']}/klips",
            json={**TOTAL, "title": "Teams", "compare": None, "datasource_id": other},
            headers=partner.headers,
        )
        assert added.status_code == 201
        page = http.get(published(http, partner, dashboard["id"]), params={"f.region": "North"}).text
        assert (shows(page, "Sales"), shows(page, "Teams")) == ("130", "12")

    def test_the_filter_bar_offers_presets_and_the_columns_values(self, http, partner):
        _, dashboard = board(http, partner)
        page = http.get(published(http, partner, dashboard["id"]), params={"f.region": "South"}).text
        assert 'name="f.period"' in page and 'value="last_30_days"' in page
        assert '<option value="South" selected>South</option>' in page
        assert '<option value="North">North</option>' in page

    def test_each_choice_of_values_is_its_own_cached_page(self, http, partner):
        _, dashboard = board(http, partner)
        url = published(http, partner, dashboard["id"])
        assert shows(http.get(url, params={"f.region": "North"}).text, "Sales") == "130"
        assert shows(http.get(url, params={"f.region": "South"}).text, "Sales") == "70"
        assert shows(http.get(url, params={"f.region": "North"}).text, "Sales") == "130"

    def test_the_poll_answers_the_filtered_version(self, http, partner):
        _, dashboard = board(http, partner)
        url = published(http, partner, dashboard["id"])
        north = http.get(f"{url}/live", params={"f.region": "North"}).json()
        south = http.get(f"{url}/live", params={"f.region": "South"}).json()
        assert north["version"] != south["version"]
        assert (shows(north["html"], "Sales"), shows(south["html"], "Sales")) == ("130", "70")

    @pytest.mark.parametrize("value", ["garbage", "2026-02-30..2026-03-01", "2026-03-05..2026-03-01"])
    def test_a_date_value_that_means_nothing_is_a_422_naming_it(self, http, partner, value):
        _, dashboard = board(http, partner)
        url = published(http, partner, dashboard["id"])
        page = http.get(url, params={"f.period": value})
        assert page.status_code == 422
        assert "f.period" in page.text
        poll = http.get(f"{url}/live", params={"f.period": value})
        assert poll.status_code == 422
        assert poll.json()["field"] == "f.period"

    @pytest.mark.parametrize("value", ["Nor\x85th", "Nor\u2028th", "Nor\tth", "Nor\x9bth"])
    def test_a_select_value_with_a_control_character_is_a_422_naming_it_not_a_500(self, http, partner, value):
        _, dashboard = board(http, partner)
        url = published(http, partner, dashboard["id"])
        page = http.get(url, params={"f.region": value})
        assert page.status_code == 422
        poll = http.get(f"{url}/live", params={"f.region": value})
        assert poll.status_code == 422
        assert poll.json()["field"] == "f.region"

    @pytest.mark.parametrize("value", ["1e400", "nan", "-inf"])
    def test_a_number_no_float_holds_chosen_in_a_select_matches_no_row(self, http, partner, value):
        filters = [{"id": "sales", "kind": "select", "column": "sales"}]
        _, dashboard = board(http, partner, klips=(BY_REGION,), filters=filters)
        page = http.get(published(http, partner, dashboard["id"]), params={"f.sales": value})
        assert page.status_code == 200
        assert "Needs attention" not in page.text
        assert "could not be drawn" not in page.text
        assert "North" not in said(page.text, "By region")

    def test_unknown_filter_ids_are_ignored(self, http, partner):
        _, dashboard = board(http, partner)
        page = http.get(published(http, partner, dashboard["id"]), params={"f.nope": "x"})
        assert page.status_code == 200 and shows(page.text, "Sales") == "200"

    def test_a_text_klip_is_markdown_on_the_page(self, http, partner):
        _, dashboard = board(http, partner, klips=(TOTAL, NOTE))
        page = http.get(published(http, partner, dashboard["id"])).text
        assert "<strong>net</strong>" in page
        assert 'class="klip klip-text w-4 h-1"' in page


class TestFiltersOnExports:
    def test_an_export_takes_the_filter_values(self, http, partner):
        _, dashboard = board(http, partner)
        path = f"/api/1/dashboards/{dashboard['id']}/export"
        assert (
            http.get(path, params={"format": "png", "f.region": "North"}, headers=partner.headers).status_code
            == 200
        )
        refused = http.get(path, params={"format": "pdf", "f.period": "garbage"}, headers=partner.headers)
        assert refused.status_code == 422
        assert refused.json()["field"] == "f.period"

    def test_an_email_takes_the_filter_values(self, http, partner):
        _, dashboard = board(http, partner)
        path = f"/api/1/dashboards/{dashboard['id']}/email"
        body = {"to": ["boss@partner.test"], "filters": {"period": "last_month"}}
        assert http.post(path, json=body, headers=partner.headers).status_code == 202
        body["filters"] = {"period": "garbage"}
        refused = http.post(path, json=body, headers=partner.headers)
        assert refused.status_code == 422
        assert refused.json()["field"] == "f.period"


class TestASourceChangingUnderItsKlips:
    def test_the_klip_that_no_longer_fits_needs_attention_and_the_others_render(self, http, partner):
        source_id, dashboard = board(http, partner, klips=(TOTAL, BY_REGION, NOTE))
        url = published(http, partner, dashboard["id"])
        renamed = [{"day": r["day"], "area": r["region"], "sales": r["sales"]} for r in DAILY]
        changed = http.patch(
            f"/api/1/datasources/{source_id}", json={"rows": renamed}, headers=partner.headers
        )
        assert changed.status_code == 200, changed.text
        page = http.get(url)
        assert page.status_code == 200
        assert "Needs attention: Its data source changed: there is no column &#x27;region&#x27;" in page.text
        assert page.text.count("Needs attention:") == 1
        assert shows(page.text, "Sales") == "200"
        assert "<strong>net</strong>" in page.text
        export = http.get(f"/api/1/dashboards/{dashboard['id']}/export?format=pdf", headers=partner.headers)
        assert export.status_code == 200


class TestIsolation:
    def test_a_client_admin_cannot_add_a_klip_to_another_clients_dashboard(self, http, partner, clock, db):
        mine, theirs = make_client(http, partner, "active"), make_client(http, partner, "active")
        _, their_board = board(http, partner, theirs)
        my_source = inline_source(http, partner, mine, DAILY)
        _, headers = client_key(db, clock, partner, mine, "admin")
        response = http.post(
            f"/api/1/dashboards/{their_board['id']}/klips",
            json={**TOTAL, "datasource_id": my_source},
            headers=headers,
        )
        assert response.status_code == 404
        assert get(http, partner, their_board["id"]) == their_board

    def test_a_klip_cannot_show_another_clients_source(self, http, partner, clock, db):
        mine, theirs = make_client(http, partner, "active"), make_client(http, partner, "active")
        _, my_board = board(http, partner, mine)
        their_source = inline_source(http, partner, theirs, DAILY)
        _, headers = client_key(db, clock, partner, mine, "admin")
        response = http.post(
            f"/api/1/dashboards/{my_board['id']}/klips",
            json={**TOTAL, "datasource_id": their_source},
            headers=headers,
        )
        assert response.status_code == 404
        assert get(http, partner, my_board["id"]) == my_board

    def test_a_client_admin_cannot_preview_another_clients_source(self, http, partner, clock, db):
        mine, theirs = make_client(http, partner, "active"), make_client(http, partner, "active")
        their_source = inline_source(http, partner, theirs, DAILY)
        _, headers = client_key(db, clock, partner, mine, "admin")
        response = http.post(
            "/api/1/klips/preview", json={**TOTAL, "datasource_id": their_source}, headers=headers
        )
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"

    def test_a_layout_cannot_name_another_dashboards_klips(self, http, partner, clock, db):
        mine = make_client(http, partner, "active")
        _, first = board(http, partner, mine)
        _, second = board(http, partner, mine)
        _, headers = client_key(db, clock, partner, mine, "admin")
        layout = [
            {"id": first["klips"][0]["id"], "size": {"w": 6, "h": 2}},
            {"id": second["klips"][0]["id"], "size": {"w": 6, "h": 2}},
        ]
        response = http.put(
            f"/api/1/dashboards/{first['id']}/layout", json={"klips": layout}, headers=headers
        )
        assert response.status_code == 422
        assert named(response.json(), "klips")
        assert get(http, partner, first["id"]) == first
        assert get(http, partner, second["id"]) == second


class TestRoles:
    def test_an_editor_builds_and_shares(self, http, partner, clock, db):
        client_id = make_client(http, partner, "active")
        member_id, _ = client_key(db, clock, partner, client_id, "member")
        _, headers = client_key(db, clock, partner, client_id, "editor")
        source = http.post(
            f"/api/1/clients/{client_id}/datasources",
            json={"name": "Mine", "kind": "inline", "rows": DAILY},
            headers=headers,
        )
        assert source.status_code == 201
        source_id = source.json()["id"]
        dashboard = http.post(
            f"/api/1/clients/{client_id}/dashboards", json={"name": "Mine"}, headers=headers
        )
        assert dashboard.status_code == 201
        dashboard_id = dashboard.json()["id"]
        klip = http.post(
            f"/api/1/dashboards/{dashboard_id}/klips",
            json={**TOTAL, "datasource_id": source_id},
            headers=headers,
        )
        assert klip.status_code == 201
        assert (
            http.post(
                "/api/1/klips/preview", json={**TOTAL, "datasource_id": source_id}, headers=headers
            ).status_code
            == 200
        )
        layout = {"klips": [{"id": klip.json()["id"], "size": {"w": 12, "h": 2}}]}
        assert (
            http.put(f"/api/1/dashboards/{dashboard_id}/layout", json=layout, headers=headers).status_code
            == 200
        )
        shares = {"user_ids": [member_id]}
        assert (
            http.put(f"/api/1/dashboards/{dashboard_id}/shares", json=shares, headers=headers).status_code
            == 200
        )

    def test_an_editor_neither_invites_users_nor_publishes_links(self, http, partner, clock, db):
        client_id = make_client(http, partner, "active")
        _, dashboard = board(http, partner, client_id)
        _, headers = client_key(db, clock, partner, client_id, "editor")
        invited = http.post(
            f"/api/1/clients/{client_id}/users",
            json={"email": "new@client.test", "name": "New", "role": "member"},
            headers=headers,
        )
        assert invited.status_code == 403
        link = http.post(
            f"/api/1/dashboards/{dashboard['id']}/published-links", json={"name": "x"}, headers=headers
        )
        assert link.status_code == 403
        assert (
            http.get(f"/api/1/dashboards/{dashboard['id']}/published-links", headers=headers).status_code
            == 403
        )
        assert (
            http.get(f"/api/1/clients/{client_id}", headers=partner.headers).json()["usage"][
                "published_links"
            ]
            == 0
        )

    def test_a_partner_may_make_a_client_user_an_editor(self, http, partner):
        client_id = make_client(http, partner, "active")
        response = http.post(
            f"/api/1/clients/{client_id}/users",
            json={"email": "ed@client.test", "name": "Ed", "role": "editor", "password": "a long secret 1"},
            headers=partner.headers,
        )
        assert response.status_code == 201, response.text
        assert response.json()["role"] == "editor"

    def test_a_member_builds_nothing(self, http, partner, clock, db):
        client_id = make_client(http, partner, "active")
        source_id, dashboard = board(http, partner, client_id)
        member_id, headers = client_key(db, clock, partner, client_id, "member")
        shared = http.put(
            f"/api/1/dashboards/{dashboard['id']}/shares",
            json={"user_ids": [member_id]},
            headers=partner.headers,
        )
        assert shared.status_code == 200
        base = f"/api/1/dashboards/{dashboard['id']}"
        klip_id = dashboard["klips"][0]["id"]
        attempts = [
            http.post(f"{base}/klips", json={**TOTAL, "datasource_id": source_id}, headers=headers),
            http.patch(f"{base}/klips/{klip_id}", json={"title": "Mine"}, headers=headers),
            http.delete(f"{base}/klips/{klip_id}", headers=headers),
            http.put(
                f"{base}/layout", json={"klips": [{"id": klip_id, "size": {"w": 1, "h": 1}}]}, headers=headers
            ),
            http.put(f"{base}/filters", json={"filters": []}, headers=headers),
            http.post("/api/1/klips/preview", json={**TOTAL, "datasource_id": source_id}, headers=headers),
            http.post(f"/api/1/clients/{client_id}/dashboards", json={"name": "Mine"}, headers=headers),
        ]
        assert [a.status_code for a in attempts] == [403] * len(attempts)
        after = get(http, partner, dashboard["id"])
        assert (after["klips"], after["filters"]) == (dashboard["klips"], dashboard["filters"])
        assert (
            http.get(f"/api/1/clients/{client_id}/dashboards", headers=partner.headers).json()["total"] == 1
        )


class TestLimitsAndPickers:
    def test_the_51st_klip_is_refused(self, http, partner):
        source_id = inline_source(http, partner, None, DAILY)
        klips = [{**TOTAL, "datasource_id": source_id}] * 50
        created = http.post(
            "/api/1/partner/dashboards", json={"name": "Full", "klips": klips}, headers=partner.headers
        )
        assert created.status_code == 201
        response = http.post(
            f"/api/1/dashboards/{created.json()['id']}/klips",
            json={**TOTAL, "datasource_id": source_id},
            headers=partner.headers,
        )
        assert response.status_code == 409
        assert response.json()["code"] == "limit_reached"
        assert len(get(http, partner, created.json()["id"])["klips"]) == 50

    def test_a_patch_that_leaves_no_whole_klip_names_what_is_missing(self, http, partner):
        _, dashboard = board(http, partner)
        response = http.patch(
            f"/api/1/dashboards/{dashboard['id']}/klips/{dashboard['klips'][0]['id']}",
            json={"kind": "pie"},
            headers=partner.headers,
        )
        assert response.status_code == 422
        assert "a pie klip needs columns.label" in response.json()["detail"]
        assert get(http, partner, dashboard["id"]) == dashboard

    def test_the_builders_column_pickers_read_a_sources_column_types(self, http, partner, session):
        from tenantry.auth.principal import Principal
        from tenantry.dashboards import service

        source_id = inline_source(http, partner, None, DAILY)
        caller = Principal("partner_user", partner.id, partner.admin_user_id, "admin")
        assert service.source_columns(session, caller, source_id) == {
            "day": "date",
            "region": "text",
            "sales": "number",
        }
        stranger = Principal("partner_user", partner.id + 1000, 1, "admin")
        with pytest.raises(NotFound):
            service.source_columns(session, stranger, source_id)
