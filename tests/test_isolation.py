"""Tenant isolation and who reads what: every endpoint × every kind of caller.

SPEC §8: another tenant's object is 404. SPEC §12: a client member sees the dashboards shared with
them and nothing else of the client (not its data sources, their rows or settings, its published
links or its users: 403 `forbidden`), whether it calls with an API key or from its browser session.

The world: partner A with clients A1 (the target) and A2, partner B. A1 has an admin and a member,
an inline source whose rows hold a column no dashboard shows, a url source whose address holds a
token, a dashboard shared with the member, one that is not, and a published link. Everything of
A1 is named "alpha", so any answer to another tenant can be searched for a leak; what a member must
never see carries its own marker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.factories import PASSWORD, add_user, csrf_of, key_for, sign_in

OWN_PARTNER, OTHER_PARTNER, OWN_CLIENT, OWN_MEMBER, OTHER_CLIENT, NO_KEY = (
    "own partner key",
    "other partner's key",
    "own client admin's key",
    "own client member's key",
    "other client's key",
    "no key",
)
# The member's browser session calling the API (with the CSRF header) is answered like its key.
MEMBER_SESSION = "own client member's session"
CALLERS = (OWN_PARTNER, OTHER_PARTNER, OWN_CLIENT, OWN_MEMBER, OTHER_CLIENT, NO_KEY, MEMBER_SESSION)

# method, path, body, then the status for: own partner, other partner, own client admin, own client
# member, other client. (No key is 401 everywhere; the member's session answers as its key.)
# 403 for a client key is "partner keys only", decided before any lookup; for a member it is
# "not for members", decided once the object is found in its own client.
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, int, int, int, int, int]] = [
    ("GET", "/api/1/partner", None, 200, 200, 403, 403, 403),
    ("GET", "/api/1/clients", None, 200, 200, 403, 403, 403),
    ("POST", "/api/1/clients", {"name": "New"}, 201, 201, 403, 403, 403),
    ("GET", "/api/1/clients/{a1}", None, 200, 404, 200, 200, 404),
    ("PATCH", "/api/1/clients/{a1}", {"name": "Renamed"}, 200, 404, 403, 403, 404),
    ("DELETE", "/api/1/clients/{a1}", None, 204, 404, 403, 403, 404),
    ("GET", "/api/1/clients/{a1}/activation-check", None, 200, 404, 403, 403, 404),
    ("POST", "/api/1/clients/{a1}/extend-trial", None, 200, 404, 200, 403, 404),
    ("GET", "/api/1/clients/{a1}/history", None, 200, 404, 403, 403, 404),
    ("GET", "/api/1/clients/{a1}/audit", None, 200, 404, 403, 403, 404),
    ("GET", "/api/1/clients/{a1}/users", None, 200, 404, 200, 403, 404),
    ("POST", "/api/1/clients/{a1}/users", {"email": "new@c.test", "name": "New"}, 201, 404, 201, 403, 404),
    ("DELETE", "/api/1/clients/{a1}/users/{member}", None, 204, 404, 204, 403, 404),
    ("POST", "/api/1/clients/{a1}/users/{member}/api-keys", {"name": "k"}, 201, 404, 403, 403, 404),
    ("GET", "/api/1/partner/users", None, 200, 200, 403, 403, 403),
    ("POST", "/api/1/partner/users", {"email": "pu-{n}@new.test", "name": "New"}, 201, 201, 403, 403, 403),
    ("DELETE", "/api/1/partner/users/{partner_user}", None, 204, 404, 403, 403, 403),
    ("GET", "/api/1/me", None, 200, 200, 200, 200, 200),
    ("GET", "/api/1/me/api-keys", None, 200, 200, 200, 200, 200),
    ("POST", "/api/1/me/api-keys", {"name": "k"}, 201, 201, 201, 201, 201),
    ("DELETE", "/api/1/me/api-keys/{key}", None, 204, 404, 404, 404, 404),
    # Data sources: their rows and settings are for builders and readers, never for members.
    ("GET", "/api/1/clients/{a1}/datasources", None, 200, 404, 200, 403, 404),
    (
        "POST",
        "/api/1/clients/{a1}/datasources",
        {"name": "N", "kind": "inline", "rows": []},
        201,
        404,
        201,
        403,
        404,
    ),
    ("GET", "/api/1/datasources/{source}", None, 200, 404, 200, 403, 404),
    ("PATCH", "/api/1/datasources/{source}", {"name": "Renamed"}, 200, 404, 200, 403, 404),
    ("GET", "/api/1/datasources/{source}/rows", None, 200, 404, 200, 403, 404),
    ("GET", "/api/1/datasources/{feed}", None, 200, 404, 200, 403, 404),
    ("POST", "/api/1/datasources/{feed}/refresh", None, 202, 404, 202, 403, 404),
    ("DELETE", "/api/1/datasources/{feed}", None, 204, 404, 204, 403, 404),
    ("GET", "/api/1/partner/datasources", None, 200, 200, 403, 403, 403),
    # Dashboards: a member sees those shared with them; the others are not found.
    ("GET", "/api/1/clients/{a1}/dashboards", None, 200, 404, 200, 200, 404),
    ("POST", "/api/1/clients/{a1}/dashboards", {"name": "New"}, 201, 404, 201, 403, 404),
    ("GET", "/api/1/dashboards/{shared}", None, 200, 404, 200, 200, 404),
    ("GET", "/api/1/dashboards/{private}", None, 200, 404, 200, 404, 404),
    ("PATCH", "/api/1/dashboards/{shared}", {"name": "Renamed"}, 200, 404, 200, 403, 404),
    ("DELETE", "/api/1/dashboards/{private}", None, 204, 404, 204, 404, 404),
    ("PUT", "/api/1/dashboards/{shared}/shares", {"user_ids": []}, 200, 404, 200, 403, 404),
    ("GET", "/api/1/dashboards/{shared}/export?format=png", None, 200, 404, 200, 200, 404),
    ("GET", "/api/1/dashboards/{private}/export?format=png", None, 200, 404, 200, 404, 404),
    ("POST", "/api/1/dashboards/{shared}/email", {"to": ["{member_email}"]}, 202, 404, 202, 202, 404),
    ("GET", "/api/1/partner/dashboards", None, 200, 200, 403, 403, 403),
    # Klips (SPEC §13): built by partner users and client admins and editors, never by members.
    (
        "POST",
        "/api/1/dashboards/{shared}/klips",
        {"title": "N", "kind": "text", "text": "hi"},
        201,
        404,
        201,
        403,
        404,
    ),
    ("PATCH", "/api/1/dashboards/{shared}/klips/{shared_klip}", {"title": "R"}, 200, 404, 200, 403, 404),
    ("DELETE", "/api/1/dashboards/{private}/klips/{private_klip}", None, 204, 404, 204, 404, 404),
    # An empty layout leaves out the dashboard's klip: 422 once the caller may build there at all.
    ("PUT", "/api/1/dashboards/{shared}/layout", {"klips": []}, 422, 404, 422, 403, 404),
    ("PUT", "/api/1/dashboards/{shared}/filters", {"filters": []}, 200, 404, 200, 403, 404),
    ("POST", "/api/1/klips/preview", {"kind": "text", "text": "hi"}, 200, 200, 200, 403, 200),
    # Published links: managed by builders; a member sees the dashboard, not its links.
    ("GET", "/api/1/dashboards/{shared}/published-links", None, 200, 404, 200, 403, 404),
    ("POST", "/api/1/dashboards/{shared}/published-links", {"name": "N"}, 201, 404, 201, 403, 404),
    ("DELETE", "/api/1/published-links/{link}", None, 204, 404, 204, 403, 404),
    ("GET", "/api/1/partner/statements/2026-03", None, 200, 200, 403, 403, 403),
    ("GET", "/api/1/webhooks", None, 200, 200, 403, 403, 403),
]

# What a member must never read: a column of the rows that no shared dashboard shows, a token in
# a source's address, a dashboard not shared with them, and the other users of its client.
NOT_FOR_MEMBERS = ("alpha-hidden-value", "alpha-secret-token", "alpha private", "alpha-admin-")


def expected_answers(statuses: tuple[int, ...]) -> dict[str, int]:
    own_partner, other_partner, own_client, own_member, other_client = statuses
    return {
        OWN_PARTNER: own_partner,
        OTHER_PARTNER: other_partner,
        OWN_CLIENT: own_client,
        OWN_MEMBER: own_member,
        OTHER_CLIENT: other_client,
        NO_KEY: 401,
        MEMBER_SESSION: own_member,
    }


@dataclass
class World:
    ids: dict[str, int | str]
    headers: dict[str, dict[str, str]]

    def fill(self, value: Any) -> Any:
        """A path or body with this world's ids and addresses in place of `{name}`."""
        if isinstance(value, str):
            return value.format(**self.ids)
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        return value


def build_world(http, make_partner, n: int) -> World:  # type: ignore[no-untyped-def]
    """World number `n`: its e-mail addresses are its own, since several may exist at once."""
    plan = {"users": 20, "dashboards": 20, "published_links": 10, "api_calls_per_day": 10_000}
    a = make_partner("alpha partner", **plan)
    b = make_partner("beta partner", **plan)
    resources = {"users": 5, "dashboards": 5, "published_links": 5, "api_calls_per_day": 500}

    def client(partner, name: str) -> int:  # type: ignore[no-untyped-def]
        body = {"name": name, "status": "trial", "resources": resources}
        return int(http.post("/api/1/clients", json=body, headers=partner.headers).json()["id"])

    def made(response) -> int:  # type: ignore[no-untyped-def]
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    a1, a2 = client(a, "alpha client"), client(a, "gamma client")
    a1_admin = add_user(http, a, a1, f"alpha-admin-{n}@a1.test", password=None)
    member = add_user(http, a, a1, f"alpha-member-{n}@a1.test", role="member")
    a2_admin = add_user(http, a, a2, f"gamma-admin-{n}@a2.test", password=None)
    rows = [{"month": m, "sales": s, "note": "alpha-hidden-value"} for m, s in (("Jan", 1), ("Feb", 2))]
    source = made(
        http.post(
            f"/api/1/clients/{a1}/datasources",
            json={"name": "alpha source", "kind": "inline", "rows": rows},
            headers=a.headers,
        )
    )
    feed = made(
        http.post(
            f"/api/1/clients/{a1}/datasources",
            json={
                "name": "alpha feed",
                "kind": "url",
                "url": "https://alpha.example.test/feed.csv?token=alpha-secret-token",
                "format": "csv",
            },
            headers=a.headers,
        )
    )

    def dashboard(name: str, klip: dict[str, Any]) -> int:
        body = {"name": name, "klips": [{**klip, "datasource_id": source}]}
        return made(http.post(f"/api/1/clients/{a1}/dashboards", json=body, headers=a.headers))

    shared = dashboard("alpha shared", {"title": "Sales", "kind": "value", "columns": {"value": "sales"}})
    private = dashboard("alpha private", {"title": "Everything", "kind": "table", "columns": {}})
    assert (
        http.put(
            f"/api/1/dashboards/{shared}/shares", json={"user_ids": [member["id"]]}, headers=a.headers
        ).status_code
        == 200
    )
    shared_klip, private_klip = (
        http.get(f"/api/1/dashboards/{d}", headers=a.headers).json()["klips"][0]["id"]
        for d in (shared, private)
    )
    link = made(
        http.post(
            f"/api/1/dashboards/{shared}/published-links", json={"name": "alpha link"}, headers=a.headers
        )
    )
    partner_user = http.post(
        "/api/1/partner/users",
        json={"email": f"alpha-editor-{n}@a.test", "name": "alpha editor"},
        headers=a.headers,
    ).json()
    key = http.post("/api/1/me/api-keys", json={"name": "alpha key"}, headers=a.headers).json()
    return World(
        ids={
            "a1": a1,
            "member": member["id"],
            "partner_user": partner_user["id"],
            "key": key["id"],
            "source": source,
            "feed": feed,
            "shared": shared,
            "private": private,
            "shared_klip": shared_klip,
            "private_klip": private_klip,
            "link": link,
            "member_email": member["email"],
            "n": n,
        },
        headers={
            OWN_PARTNER: a.headers,
            OTHER_PARTNER: b.headers,
            OWN_CLIENT: key_for(http, a, a1, a1_admin["id"]),
            OWN_MEMBER: key_for(http, a, a1, member["id"]),
            OTHER_CLIENT: key_for(http, a, a2, a2_admin["id"]),
            NO_KEY: {},
        },
    )


def call(http, world: World, caller: str, method: str, path: str, body: Any):  # type: ignore[no-untyped-def]
    url, body = world.fill(path), world.fill(body)
    if caller != MEMBER_SESSION:
        return http.request(method, url, json=body, headers=world.headers[caller])
    assert sign_in(http, str(world.ids["member_email"]), PASSWORD).status_code == 303
    try:
        csrf = csrf_of(http.get("/app").text)
        return http.request(method, url, json=body, headers={"X-CSRF-Token": csrf})
    finally:
        http.cookies.clear()


def changes_something(method: str, status: int) -> bool:
    return method != "GET" and status < 400


@pytest.mark.parametrize(
    ("method", "path", "body", "statuses"),
    [
        pytest.param(method, path, body, statuses, id=f"{method} {path}")
        for method, path, body, *statuses in ENDPOINTS
    ],
)
def test_every_endpoint_answers_each_caller_as_the_table_says(
    http, make_partner, method, path, body, statuses
):
    expected = expected_answers(tuple(statuses))
    # Callers that change nothing (reads, refusals) share one world, which a refusal leaves as it
    # was; a caller whose request succeeds in changing something gets a fresh world of its own.
    worlds = iter(range(len(CALLERS) + 1))
    shared_world = build_world(http, make_partner, next(worlds))
    answers: dict[str, int] = {}
    for caller in sorted(CALLERS, key=lambda c: changes_something(method, expected[c])):
        changing = changes_something(method, expected[caller])
        world = build_world(http, make_partner, next(worlds)) if changing else shared_world
        response = call(http, world, caller, method, path, body)
        answers[caller] = response.status_code
        text = response.text.lower()
        if caller in (OTHER_PARTNER, OTHER_CLIENT):
            assert "alpha" not in text, (caller, response.text)
        if caller in (OWN_MEMBER, MEMBER_SESSION):
            assert not [marker for marker in NOT_FOR_MEMBERS if marker in text], (caller, response.text)
        if response.status_code == 403 and caller in (OWN_MEMBER, MEMBER_SESSION):
            assert response.json()["code"] == "forbidden"
    assert answers == expected
