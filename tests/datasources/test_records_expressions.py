"""A url source's `records` expression only selects the rows of a JSON answer (SPEC §14); one that
builds values (a function call, a multi-select) could grow a 6-byte answer past any memory
(SPEC §12), so it is refused with a 422 naming `records`, and nothing is stored."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from tenantry.datasources.records import (
    MAX_DEPTH,
    RecordsTooCostly,
    check_records,
    search_records,
)
from tenantry.db.dashboard_models import DataSource
from tenantry.db.template_models import Template
from tests.content import make_client

# 389 characters: each stage JSON-encodes two copies of the last, about fourfold a stage.
BOMB = "[@] | " + " | ".join(["to_string([@,@])"] * 20) + " | [@]"

ACCEPTED = [
    "items",
    "data.items",
    "data.rows[*]",
    "results[?active]",
    "data.rows[?status == 'open' && amount > `100`]",
    'data[?tags == `["a"]`]',
    "pages[].items[]",
    "data.rows[10:20]",
    "data.rows[-1]",
    "*.rows[]",
    "data.rows || data.items",
    "data.rows[?!archived]",
    "response | data.items",
    "@",
    "items[].{id: id, n: meta.n}",
]

REFUSED = [
    (BOMB, "the function call to_string()"),
    ("to_string(@)", "the function call to_string()"),
    ("join(', ', names)", "the function call join()"),
    ("merge(a, b)", "the function call merge()"),
    ("sort_by(items, &name)", "the function call sort_by()"),
    ("items[?length(name) > `3`]", "the function call length()"),
    ("[@, @]", "a multi-select list ([a, b])"),
    ("items[].[id, name]", "a multi-select list ([a, b])"),
    ("&name", "an expression reference (&expr)"),
]
LITERAL = "a list or object literal is allowed only as one side of a comparison"
# A list literal, flattened and projected stage after stage, multiplies as a multi-select does.
REFUSED_LITERALS = [("`[1, 2, 3]`", LITERAL), ("items[*] || `[{}]`", LITERAL)]


def url_source(**extra):
    return {
        "name": "Remote",
        "kind": "url",
        "url": "https://data.example.test/x.json",
        "format": "json",
        **extra,
    }


def create(http, partner, client_id, body):
    return http.post(f"/api/1/clients/{client_id}/datasources", json=body, headers=partner.headers)


def assert_refused(answer, sentence: str) -> None:
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["code"] == "validation_error"
    assert [error["loc"][-1] for error in problem["errors"]] == ["records"], problem
    assert sentence in problem["errors"][0]["msg"], problem


class TestTheExpressionIsChecked:
    @pytest.mark.parametrize("expression", ACCEPTED)
    def test_an_expression_that_only_selects_is_allowed(self, expression):
        assert check_records(expression) is None

    @pytest.mark.parametrize(("expression", "part"), REFUSED)
    def test_an_expression_that_builds_is_refused_naming_the_part(self, expression, part):
        assert (
            check_records(expression)
            == f"The records expression may only select records: {part} is not allowed."
        )

    @pytest.mark.parametrize(("expression", "sentence"), REFUSED_LITERALS)
    def test_a_list_or_object_literal_is_refused_outside_a_comparison(self, expression, sentence):
        assert check_records(expression) == f"The records expression may only select records: {sentence}."

    def test_the_bomb_fits_the_length_the_schema_allows(self):
        assert len(BOMB) <= 500

    def test_an_invalid_expression_is_named_so(self):
        assert check_records("data[?") == "The records expression is not valid JMESPath."

    def test_an_expression_nested_deeper_than_the_interpreter_can_follow_is_refused(self):
        # 250 flattens (500 characters) exhaust the interpreter's stack at the first fetch.
        assert check_records("a" + "[]" * 250) == (
            f"The records expression is nested too deeply (at most {MAX_DEPTH} levels)."
        )
        assert check_records("a" + "[]" * 10) is None


class TestSearchingIsBounded:
    def test_an_allowed_expression_selects_as_jmespath_does(self):
        document = {"data": {"rows": [{"a": 1, "open": True}, {"a": 2, "open": False}]}}
        assert search_records("data.rows[?open]", document) == [{"a": 1, "open": True}]

    def test_a_hash_reshapes_each_record(self):
        document = {"items": [{"id": 1, "meta": {"n": 5}, "x": 0}]}
        assert search_records("items[].{id: id, n: meta.n}", document) == [{"id": 1, "n": 5}]

    def test_a_flatten_that_doubles_its_list_at_every_stage_is_stopped(self):
        # Each stage makes two of each value (a hash of two, its values, flattened): the nine
        # stages the depth allows would make 5 million values of 10,000.
        expression = "|".join(["[*].{a:@,b:@}|[*].*|[]"] * 9)
        assert check_records(expression) is None
        assert search_records(expression, [0]) == [0] * 512
        with pytest.raises(RecordsTooCostly):
            search_records(expression, list(range(10_000)))

    def test_an_expression_that_takes_too_long_stops_with_a_sentence(self):
        # 20 alternatives tested on each of 200,000 elements: 8 million steps.
        document = json.loads("[" + ",".join(["0"] * 200_000) + "]")
        expression = "[?" + " || ".join(["a"] * 20) + "]"
        assert check_records(expression) is None
        with pytest.raises(
            RecordsTooCostly, match=r"^The records expression takes too long over this answer\.$"
        ):
            search_records(expression, document)


class TestTheApiRefusesWhatBuilds:
    @pytest.mark.parametrize("expression", ["items", "data.rows[*]", "results[?active]", "data.items"])
    def test_a_selecting_expression_is_kept(self, http, partner, db, expression):
        client_id = make_client(http, partner)
        answer = create(http, partner, client_id, url_source(records=expression))
        assert answer.status_code == 201, answer.text
        assert db.scalars(select(DataSource)).one().config["records"] == expression

    @pytest.mark.parametrize(("expression", "part"), REFUSED + REFUSED_LITERALS)
    def test_a_building_expression_is_a_422_naming_records_and_creates_nothing(
        self, http, partner, db, expression, part
    ):
        client_id = make_client(http, partner)
        answer = create(http, partner, client_id, url_source(records=expression))
        assert_refused(answer, part)
        assert db.scalars(select(DataSource)).first() is None

    def test_an_update_to_a_building_expression_is_refused_and_changes_nothing(self, http, partner, db):
        client_id = make_client(http, partner)
        source_id = create(http, partner, client_id, url_source(records="items")).json()["id"]
        answer = http.patch(
            f"/api/1/datasources/{source_id}", json={"records": BOMB}, headers=partner.headers
        )
        assert_refused(answer, "the function call to_string()")
        db.expire_all()
        assert db.scalars(select(DataSource)).one().config["records"] == "items"

    def test_a_templates_url_source_is_checked_the_same(self, http, partner, db):
        template = {
            "name": "Starter",
            "datasources": [{"ref": "crm", **url_source(records=BOMB)}],
            "dashboards": [{"name": "Overview", "klips": []}],
        }
        answer = http.post("/api/1/templates", json=template, headers=partner.headers)
        assert_refused(answer, "the function call to_string()")
        assert db.scalars(select(Template)).first() is None
        template["datasources"][0]["records"] = "data.items"
        assert http.post("/api/1/templates", json=template, headers=partner.headers).status_code == 201
