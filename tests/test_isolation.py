"""Tenant isolation: every endpoint × every kind of caller (SPEC §8: another tenant's object is 404).

The world: partner A with clients A1 (the target) and A2, partner B. Callers: A's admin key, B's
admin key, a key of A1's admin, a key of A2's admin, and no key. Everything of A1 is named
"alpha", so any answer to another tenant can be searched for a leak.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.factories import add_user, key_for

OWN_PARTNER, OTHER_PARTNER, OWN_CLIENT, OTHER_CLIENT, NO_KEY = (
    "own partner key",
    "other partner's key",
    "own client key",
    "other client's key",
    "no key",
)
CALLERS = (OWN_PARTNER, OTHER_PARTNER, OWN_CLIENT, OTHER_CLIENT, NO_KEY)

# method, path, body, then the status for: own partner, other partner, own client, other client.
# (No key is 401 everywhere.) 403 for a client key is "partner keys only", decided before any lookup.
ENDPOINTS = [
    ("GET", "/api/1/partner", None, 200, 200, 403, 403),
    ("GET", "/api/1/clients", None, 200, 200, 403, 403),
    ("POST", "/api/1/clients", {"name": "New"}, 201, 201, 403, 403),
    ("GET", "/api/1/clients/{a1}", None, 200, 404, 200, 404),
    ("PATCH", "/api/1/clients/{a1}", {"name": "Renamed"}, 200, 404, 403, 404),
    ("DELETE", "/api/1/clients/{a1}", None, 204, 404, 403, 404),
    ("GET", "/api/1/clients/{a1}/activation-check", None, 200, 404, 403, 404),
    ("POST", "/api/1/clients/{a1}/extend-trial", None, 200, 404, 200, 404),
    ("GET", "/api/1/clients/{a1}/history", None, 200, 404, 403, 404),
    ("GET", "/api/1/clients/{a1}/users", None, 200, 404, 200, 404),
    ("POST", "/api/1/clients/{a1}/users", {"email": "new@c.test", "name": "New"}, 201, 404, 201, 404),
    ("DELETE", "/api/1/clients/{a1}/users/{member}", None, 204, 404, 204, 404),
    ("POST", "/api/1/clients/{a1}/users/{member}/api-keys", {"name": "k"}, 201, 404, 403, 404),
    ("GET", "/api/1/partner/users", None, 200, 200, 403, 403),
    ("POST", "/api/1/partner/users", {"email": "pu@new.test", "name": "New"}, 201, 201, 403, 403),
    ("DELETE", "/api/1/partner/users/{partner_user}", None, 204, 404, 403, 403),
    ("GET", "/api/1/me", None, 200, 200, 200, 200),
    ("GET", "/api/1/me/api-keys", None, 200, 200, 200, 200),
    ("POST", "/api/1/me/api-keys", {"name": "k"}, 201, 201, 201, 201),
    ("DELETE", "/api/1/me/api-keys/{key}", None, 204, 404, 404, 404),
]

CASES = [
    pytest.param(method, path, body, caller, expected, id=f"{method} {path} × {caller}")
    for method, path, body, *statuses in ENDPOINTS
    for caller, expected in zip(CALLERS, [*statuses, 401], strict=True)
]


@dataclass
class World:
    ids: dict[str, int]
    headers: dict[str, dict[str, str]]


@pytest.fixture
def world(http, make_partner) -> World:
    plan = {"users": 20, "dashboards": 10, "published_links": 10, "api_calls_per_day": 10_000}
    a = make_partner("alpha partner", **plan)
    b = make_partner("beta partner", **plan)
    resources = {"users": 5, "dashboards": 1, "api_calls_per_day": 500}

    def client(partner, name: str) -> int:
        body = {"name": name, "status": "trial", "resources": resources}
        return int(http.post("/api/1/clients", json=body, headers=partner.headers).json()["id"])

    a1, a2 = client(a, "alpha client"), client(a, "gamma client")
    a1_admin = add_user(http, a, a1, "alpha-admin@a1.test", password=None)
    member = add_user(http, a, a1, "alpha-member@a1.test", password=None, role="member")
    a2_admin = add_user(http, a, a2, "gamma-admin@a2.test", password=None)
    partner_user = http.post(
        "/api/1/partner/users",
        json={"email": "alpha-editor@a.test", "name": "alpha editor"},
        headers=a.headers,
    ).json()
    key = http.post("/api/1/me/api-keys", json={"name": "alpha key"}, headers=a.headers).json()
    return World(
        ids={"a1": a1, "member": member["id"], "partner_user": partner_user["id"], "key": key["id"]},
        headers={
            OWN_PARTNER: a.headers,
            OTHER_PARTNER: b.headers,
            OWN_CLIENT: key_for(http, a, a1, a1_admin["id"]),
            OTHER_CLIENT: key_for(http, a, a2, a2_admin["id"]),
            NO_KEY: {},
        },
    )


@pytest.mark.parametrize(("method", "path", "body", "caller", "expected"), CASES)
def test_every_endpoint_answers_each_caller_as_the_table_says(
    http, world, method, path, body, caller, expected
):
    url = path.format(**world.ids)
    response = http.request(method, url, json=body, headers=world.headers[caller])
    assert response.status_code == expected, response.text
    if caller in (OTHER_PARTNER, OTHER_CLIENT):
        assert "alpha" not in response.text.lower()
