"""A number the database's 64-bit integers cannot hold is a 422 problem, never a 500 (SPEC §8).

Such an id names no row; sent to the driver it would overflow (SQLite) or fail (PostgreSQL).
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tenantry.db.models import Client
from tests.factories import new_client

HUGE = 2**63  # one past the largest 64-bit integer
TOO_SMALL = -(2**63) - 1

# (method, path, JSON body): `{client}` and `{dashboard}` are filled with real ids.
REQUESTS = [
    ("GET", f"/api/1/clients/{HUGE}", None),
    ("GET", f"/api/1/clients/{TOO_SMALL}", None),
    ("PATCH", f"/api/1/clients/{HUGE}", {"name": "B"}),
    ("DELETE", f"/api/1/clients/{HUGE}", None),
    ("GET", f"/api/1/clients/{HUGE}/history", None),
    ("GET", f"/api/1/clients?offset={HUGE}", None),
    ("GET", f"/api/1/clients/{{client}}/history?offset={HUGE}", None),
    ("DELETE", f"/api/1/clients/{{client}}/users/{HUGE}", None),
    ("GET", f"/api/1/datasources/{HUGE}", None),
    ("GET", f"/api/1/dashboards/{HUGE}", None),
    ("GET", f"/api/1/dashboards/{HUGE}/export?format=pdf", None),
    ("DELETE", f"/api/1/published-links/{HUGE}", None),
    ("DELETE", f"/api/1/webhooks/{HUGE}", None),
    (
        "POST",
        "/api/1/clients/{client}/dashboards",
        {"name": "D", "klips": [{"title": "T", "kind": "table", "datasource_id": HUGE}]},
    ),
    ("PUT", "/api/1/dashboards/{dashboard}/shares", {"user_ids": [HUGE]}),
]


@pytest.mark.parametrize(("method", "path", "body"), REQUESTS)
def test_an_id_or_offset_beyond_64_bits_is_a_422_problem_and_changes_nothing(
    http, partner, db, method, path, body
):
    client_id = new_client(http, partner, "trial")
    created = http.post(f"/api/1/clients/{client_id}/dashboards", json={"name": "D"}, headers=partner.headers)
    assert created.status_code == 201, created.text
    url = path.format(client=client_id, dashboard=created.json()["id"])

    response = http.request(method, url, json=body, headers=partner.headers)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "validation_error"
    assert db.scalar(select(func.count()).select_from(Client)) == 1
    assert http.get(f"/api/1/clients/{client_id}", headers=partner.headers).json()["name"] == "Client trial"


@pytest.mark.usefixtures("partner_session")
def test_a_console_page_for_an_id_beyond_64_bits_is_refused_not_a_500(http):
    assert http.get(f"/partner/clients/{HUGE}").status_code == 422


@pytest.mark.parametrize("offset", [2**63 - 2, 2**63 - 1])
def test_rows_from_an_offset_at_the_end_of_64_bits_are_an_empty_page(http, partner, offset):
    client_id = new_client(http, partner, "trial")
    source = http.post(
        f"/api/1/clients/{client_id}/datasources",
        json={"name": "S", "kind": "inline", "rows": [{"a": 1}]},
        headers=partner.headers,
    ).json()
    response = http.get(
        f"/api/1/datasources/{source['id']}/rows?limit=50&offset={offset}", headers=partner.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["items"] == []
    assert response.json()["total"] == 1
