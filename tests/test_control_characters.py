"""SPEC §12 "Text": names, titles, e-mail addresses and every other one-line field refuse control
characters (C0, DEL, C1, U+2028/2029, and lone surrogates) with 422 `validation_error` naming the
field, and the refused request changes nothing. Multi-line fields (descriptions, reasons) accept
tab and line breaks and refuse the rest.

Bodies are sent as JSON with escapes (`"\\u0000"`, `"\\ud800"`), as an attacker's script would."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.content import ROWS, create_dashboard, inline_source
from tests.factories import add_user, key_for, new_client

# One of each kind the rule names.
FORBIDDEN = {
    "NUL": "\x00",
    "CR LF": "\r\n",
    "LF": "\n",
    "tab": "\t",
    "ESC": "\x1b",
    "DEL": "\x7f",
    "C1 NEL": "\x85",
    "C1 CSI": "\x9b",
    "line separator": "\u2028",
    "paragraph separator": "\u2029",
    "lone surrogate": "\ud800",
}
# Every field gets a few; the client's name gets them all.
SAMPLE = {k: FORBIDDEN[k] for k in ("NUL", "CR LF", "C1 NEL", "lone surrogate")}


def send(http, method: str, path: str, body: Any, headers: dict[str, str]):
    """JSON with \\u escapes: lone surrogates travel as they would from any client."""
    return http.request(
        method, path, content=json.dumps(body), headers={**headers, "Content-Type": "application/json"}
    )


def assert_refused(response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert problem["detail"].startswith(f"{field}: must not contain control characters"), problem["detail"]


@dataclass
class World:
    http: Any
    partner: Any
    client_id: int  # in Trial, with a user, a data source and a dashboard
    user_id: int
    source_id: int
    dashboard_id: int

    def get(self, path: str) -> Any:
        response = self.http.get(path, headers=self.partner.headers)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def world(http, partner) -> World:
    client_id = new_client(http, partner, "trial", dashboards=3, published_links=3)
    user = add_user(http, partner, client_id, "admin@client.test")
    source_id = inline_source(http, partner, client_id)
    dashboard = create_dashboard(http, partner, client_id, source_id, klips=[], name="Sales")
    assert dashboard.status_code == 201, dashboard.text
    return World(http, partner, client_id, user["id"], source_id, dashboard.json()["id"])


@dataclass(frozen=True)
class Case:
    """One field of one request, a way to send a value in it, and what must stay unchanged."""

    field: str
    method: str
    path: Callable[[World], str]
    body: Callable[[str], dict[str, Any]]
    state: Callable[[World], Any]


def clients(w: World) -> Any:
    return [(c["name"], c["description"], c["external_id"]) for c in w.get("/api/1/clients")["items"]]


def users(w: World) -> Any:
    return [(u["email"], u["name"]) for u in w.get(f"/api/1/clients/{w.client_id}/users")["items"]]


def partner_users(w: World) -> Any:
    return [(u["email"], u["name"]) for u in w.get("/api/1/partner/users")["items"]]


def keys(w: World) -> Any:
    return w.get("/api/1/me/api-keys")["total"]


def sources(w: World) -> Any:
    return [s["name"] for s in w.get(f"/api/1/clients/{w.client_id}/datasources")["items"]]


def dashboards(w: World) -> Any:
    return [(d["name"], d["klips"]) for d in w.get(f"/api/1/clients/{w.client_id}/dashboards")["items"]]


def links(w: World) -> Any:
    return w.get(f"/api/1/dashboards/{w.dashboard_id}/published-links")["total"]


def partner_row(w: World) -> Any:
    body = w.get("/api/1/partner")
    return body["name"], body.get("timezone")


def klip(**change: Any) -> dict[str, Any]:
    base = {"title": "Total", "kind": "bar", "datasource_id": 0, "columns": {"x": "month", "y": "sales"}}
    return {**base, **change}


CASES = [
    Case("name", "POST", lambda w: "/api/1/clients", lambda v: {"name": f"Acme{v}Bcc: x@evil.test"}, clients),
    Case(
        "external_id",
        "POST",
        lambda w: "/api/1/clients",
        lambda v: {"name": "A", "external_id": f"A{v}1"},
        clients,
    ),
    Case("name", "PATCH", lambda w: f"/api/1/clients/{w.client_id}", lambda v: {"name": f"Acme{v}"}, clients),
    Case(
        "external_id",
        "PATCH",
        lambda w: f"/api/1/clients/{w.client_id}",
        lambda v: {"external_id": f"{v}x"},
        clients,
    ),
    Case(
        "email",
        "POST",
        lambda w: f"/api/1/clients/{w.client_id}/users",
        lambda v: {"email": f"a{v}@client.test", "name": "A"},
        users,
    ),
    Case(
        "name",
        "POST",
        lambda w: f"/api/1/clients/{w.client_id}/users",
        lambda v: {"email": "b@client.test", "name": f"B{v}"},
        users,
    ),
    Case(
        "email",
        "POST",
        lambda w: "/api/1/partner/users",
        lambda v: {"email": f"p{v}@partner.test", "name": "P", "role": "viewer"},
        partner_users,
    ),
    Case("name", "POST", lambda w: "/api/1/me/api-keys", lambda v: {"name": f"k{v}"}, keys),
    Case(
        "name",
        "POST",
        lambda w: f"/api/1/clients/{w.client_id}/users/{w.user_id}/api-keys",
        lambda v: {"name": f"k{v}"},
        keys,
    ),
    Case(
        "inline.name",
        "POST",
        lambda w: f"/api/1/clients/{w.client_id}/datasources",
        lambda v: {"name": f"S{v}", "kind": "inline", "rows": ROWS},
        sources,
    ),
    Case(
        "name", "PATCH", lambda w: f"/api/1/datasources/{w.source_id}", lambda v: {"name": f"S{v}"}, sources
    ),
    Case(
        "name",
        "POST",
        lambda w: f"/api/1/clients/{w.client_id}/dashboards",
        lambda v: {"name": f"Report{v}Bcc: x@evil.test"},
        dashboards,
    ),
    Case(
        "klips.0.title",
        "PATCH",
        lambda w: f"/api/1/dashboards/{w.dashboard_id}",
        lambda v: {"klips": [klip(title=f"T{v}")]},
        dashboards,
    ),
    Case(
        "klips.0.columns.x",
        "PATCH",
        lambda w: f"/api/1/dashboards/{w.dashboard_id}",
        lambda v: {"klips": [klip(columns={"x": f"m{v}", "y": "sales"})]},
        dashboards,
    ),
    Case(
        "name",
        "PATCH",
        lambda w: f"/api/1/dashboards/{w.dashboard_id}",
        lambda v: {"name": f"R{v}"},
        dashboards,
    ),
    Case(
        "name",
        "POST",
        lambda w: f"/api/1/dashboards/{w.dashboard_id}/published-links",
        lambda v: {"name": f"L{v}"},
        links,
    ),
    Case("name", "PATCH", lambda w: "/api/1/partner", lambda v: {"name": f"P{v}"}, partner_row),
    Case("timezone", "PATCH", lambda w: "/api/1/partner", lambda v: {"timezone": f"UTC{v}"}, partner_row),
]


def _with_datasource(body: dict[str, Any], w: World) -> dict[str, Any]:
    for k in body.get("klips", []):
        k["datasource_id"] = w.source_id
    return body


@pytest.mark.parametrize("case", CASES, ids=[f"{c.method} {c.field} {i}" for i, c in enumerate(CASES)])
def test_a_one_line_field_with_a_control_character_is_refused_and_changes_nothing(world, case):
    before = case.state(world)
    for char in SAMPLE.values():
        body = _with_datasource(case.body(char), world)
        response = send(world.http, case.method, case.path(world), body, world.partner.headers)
        assert_refused(response, case.field)
        assert case.state(world) == before


@pytest.mark.parametrize("char", FORBIDDEN.values(), ids=FORBIDDEN.keys())
def test_a_client_name_refuses_every_kind_of_control_character(http, partner, char):
    response = send(http, "POST", "/api/1/clients", {"name": f"Acme{char}Bcc: x"}, partner.headers)
    assert_refused(response, "name")
    assert http.get("/api/1/clients", headers=partner.headers).json()["total"] == 0


def test_the_refusal_names_the_character_and_where_it_is(http, partner):
    response = send(http, "POST", "/api/1/clients", {"name": "Acme\r\nBcc: x@evil.test"}, partner.headers)
    assert (
        response.json()["detail"] == "name: must not contain control characters (found U+000D at position 5)"
    )


def test_a_line_break_at_either_end_is_refused_too_not_trimmed_away(http, partner):
    response = send(http, "POST", "/api/1/clients", {"name": "Acme\n"}, partner.headers)
    assert_refused(response, "name")


def test_an_e_mail_recipient_with_a_line_break_is_refused(world):
    path = f"/api/1/dashboards/{world.dashboard_id}/email"
    response = send(
        world.http, "POST", path, {"to": ["boss@client.test\r\nBcc: x@evil.test"]}, world.partner.headers
    )
    assert_refused(response, "to.0")


@pytest.mark.parametrize("param", ["q", "external_id"])
@pytest.mark.parametrize("char", ["\x00", "\n", "\x85"], ids=["NUL", "LF", "NEL"])
def test_a_search_with_a_control_character_is_a_422_not_a_500(http, partner, param, char):
    response = http.get("/api/1/clients", params={param: f"a{char}b"}, headers=partner.headers)
    assert_refused(response, f"query.{param}")


class TestMultiLineFields:
    @pytest.mark.parametrize("field", ["description", "reason"])
    def test_tabs_and_line_breaks_are_kept(self, http, partner, field):
        text = "First line\r\nsecond\tline\n"
        response = send(http, "POST", "/api/1/clients", {"name": "Acme", field: text}, partner.headers)
        assert response.status_code == 201, response.text
        if field == "description":
            assert response.json()["description"] == text
        else:
            history = http.get(f"/api/1/clients/{response.json()['id']}/history", headers=partner.headers)
            assert history.json()["items"][0]["reason"] == text

    @pytest.mark.parametrize("char", ["\x00", "\x0b", "\x1b", "\x7f", "\x85", "\u2028", "\udfff"])
    @pytest.mark.parametrize("field", ["description", "reason"])
    def test_other_control_characters_are_refused(self, http, partner, field, char):
        body = {"name": "Acme", field: f"one{char}two"}
        response = send(http, "POST", "/api/1/clients", body, partner.headers)
        assert_refused(response, field)
        assert http.get("/api/1/clients", headers=partner.headers).json()["total"] == 0

    def test_a_nul_in_a_description_change_is_refused_and_the_old_one_kept(self, http, partner):
        created = send(
            http, "POST", "/api/1/clients", {"name": "Acme", "description": "old"}, partner.headers
        )
        client_id = created.json()["id"]
        response = send(
            http, "PATCH", f"/api/1/clients/{client_id}", {"description": "a\x00b"}, partner.headers
        )
        assert_refused(response, "description")
        assert http.get(f"/api/1/clients/{client_id}", headers=partner.headers).json()["description"] == "old"


def test_names_in_other_scripts_and_with_emoji_are_still_welcome(http, partner):
    for name in ("Ünïcødé GmbH", "株式会社", "شركة", "Acme 🚀", "O'Brien & Sons <b>"):
        response = send(http, "POST", "/api/1/clients", {"name": name}, partner.headers)
        assert response.status_code == 201, response.text
        assert response.json()["name"] == name


def test_a_client_key_and_a_partner_key_are_held_to_the_same_rule(world):
    headers = key_for(world.http, world.partner, world.client_id, world.user_id)
    response = send(world.http, "POST", "/api/1/me/api-keys", {"name": "k\x00"}, headers)
    assert_refused(response, "name")


@pytest.mark.parametrize(
    ("name", "email", "reason"),
    [
        (
            "Acme\nAgency",
            "boss@acme.test",
            "The partner's name must not contain control characters (found U+000A at position 5).",
        ),
        ("Acme", "boss@acme.test\r\nBcc: x@evil.test", "e-mail address must not contain control characters"),
    ],
)
def test_the_command_line_refuses_a_partner_with_a_control_character_in_one_line(
    database_url, database, tmp_path, db, name, email, reason
):
    from sqlalchemy import select

    from tenantry.db.models import Partner
    from tests.servers import tenantry

    result = tenantry("partner", "create", name, "--admin-email", email, url=database_url, cwd=tmp_path)
    assert result.returncode != 0
    assert reason in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert db.scalars(select(Partner)).all() == []
