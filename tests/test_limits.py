"""Per-owner limits (SPEC §12 "Limits"): at most 200 data sources and 200 dashboards per owner (a
client, or the partner's own account), 50 klips a dashboard and 20 webhooks a partner. Beyond, the
answer is 409 `limit_reached` naming the limit, and nothing changes, also under concurrency."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tenantry.app import create_app
from tenantry.db.dashboard_models import DataSource, Klip
from tenantry.db.models import Dashboard
from tenantry.db.session import Database
from tenantry.db.worker_models import Webhook
from tests.content import make_client
from tests.servers import live_server

ROWS = [{"month": "Jan", "sales": 1}]
VALUE_KLIP = {"title": "Sales", "kind": "value", "columns": {"value": "sales"}}


def fill(db, clock, model, count: int, **owner: Any) -> None:
    """`count` rows of `model` for an owner, straight into the database (the API is what is tested)."""
    now = clock.now()
    for n in range(count):
        if model is DataSource:
            row: Any = DataSource(
                name=f"S{n}",
                kind="inline",
                rows=[],
                row_count=0,
                version="",
                refresh_fail_count=0,
                created_at=now,
                updated_at=now,
                **owner,
            )
        elif model is Dashboard:
            row = Dashboard(name=f"D{n}", created_at=now, updated_at=now, **owner)
        else:
            row = Webhook(
                url="https://hooks.example.test/h",
                events=[],
                secret="s",
                created_by="test",
                created_at=now,
                **owner,
            )
        db.add(row)
    db.commit()


def count(db, model, **where: Any) -> int:
    db.rollback()  # a fresh read
    query = select(func.count()).select_from(model)
    for column, value in where.items():
        attribute = getattr(model, column)
        query = query.where(attribute.is_(None) if value is None else attribute == value)
    return db.scalar(query) or 0


def refused_by_limit(response, limit: str, maximum: int) -> None:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert (body["code"], body["limit"], body["maximum"]) == ("limit_reached", limit, maximum)
    assert str(maximum) in body["detail"]


@pytest.fixture(params=["client", "partner's own account"])
def owner(request, http, partner) -> dict[str, Any]:
    """Where content is made: a client in Setup (where the allocation does not count), or the
    partner's own account, with the path that creates it there."""
    if request.param == "client":
        client_id = make_client(http, partner, "setup")
        return {"client_id": client_id, "path": f"/api/1/clients/{client_id}"}
    return {"client_id": None, "path": "/api/1/partner"}


class TestDataSources:
    def test_an_owner_with_200_data_sources_is_refused_a_201st_and_keeps_200(
        self, http, partner, owner, db, clock
    ):
        fill(db, clock, DataSource, 199, partner_id=partner.id, client_id=owner["client_id"])
        url = f"{owner['path']}/datasources"
        body = {"name": "One more", "kind": "inline", "rows": ROWS}
        assert http.post(url, json=body, headers=partner.headers).status_code == 201

        refused_by_limit(http.post(url, json=body, headers=partner.headers), "data_sources_per_owner", 200)
        assert count(db, DataSource, partner_id=partner.id, client_id=owner["client_id"]) == 200

    def test_another_owner_of_the_same_partner_is_not_held_back(self, http, partner, db, clock):
        full, other = make_client(http, partner, "setup"), make_client(http, partner, "setup")
        fill(db, clock, DataSource, 200, partner_id=partner.id, client_id=full)
        body = {"name": "Mine", "kind": "inline", "rows": ROWS}
        assert (
            http.post(f"/api/1/clients/{other}/datasources", json=body, headers=partner.headers).status_code
            == 201
        )
        assert http.post("/api/1/partner/datasources", json=body, headers=partner.headers).status_code == 201


class TestDashboards:
    def test_an_owner_with_200_dashboards_is_refused_a_201st_and_keeps_200(
        self, http, make_partner, db, clock
    ):
        partner = make_partner()  # an unlimited plan: only the limit stands in the way
        client_id = make_client(http, partner, "setup")
        for client in (client_id, None):
            fill(db, clock, Dashboard, 200, partner_id=partner.id, client_id=client)
            path = f"/api/1/clients/{client}/dashboards" if client else "/api/1/partner/dashboards"
            response = http.post(path, json={"name": "One more"}, headers=partner.headers)
            refused_by_limit(response, "dashboards_per_owner", 200)
            assert count(db, Dashboard, partner_id=partner.id, client_id=client) == 200


class TestKlips:
    def test_a_dashboard_of_51_klips_is_refused_and_none_is_made(self, http, partner, owner):
        source = http.post(
            f"{owner['path']}/datasources",
            json={"name": "S", "kind": "inline", "rows": ROWS},
            headers=partner.headers,
        ).json()["id"]
        klips = [{**VALUE_KLIP, "datasource_id": source}] * 51
        response = http.post(
            f"{owner['path']}/dashboards", json={"name": "Big", "klips": klips}, headers=partner.headers
        )
        refused_by_limit(response, "klips_per_dashboard", 50)
        assert http.get(f"{owner['path']}/dashboards", headers=partner.headers).json()["total"] == 0

    def test_a_dashboard_takes_50_klips_but_not_51_and_keeps_what_it_had(self, http, partner, owner, db):
        source = http.post(
            f"{owner['path']}/datasources",
            json={"name": "S", "kind": "inline", "rows": ROWS},
            headers=partner.headers,
        ).json()["id"]
        klip = {**VALUE_KLIP, "datasource_id": source}
        created = http.post(
            f"{owner['path']}/dashboards",
            json={"name": "Full", "klips": [klip] * 50},
            headers=partner.headers,
        )
        assert created.status_code == 201, created.text
        dashboard_id = created.json()["id"]

        response = http.patch(
            f"/api/1/dashboards/{dashboard_id}", json={"klips": [klip] * 51}, headers=partner.headers
        )

        refused_by_limit(response, "klips_per_dashboard", 50)
        assert count(db, Klip, dashboard_id=dashboard_id) == 50


class TestWebhooks:
    def test_a_partner_with_20_webhooks_is_refused_a_21st_and_keeps_20(self, http, partner, db, clock):
        fill(db, clock, Webhook, 19, partner_id=partner.id)
        body = {"url": "https://hooks.example.test/one-more"}
        assert http.post("/api/1/webhooks", json=body, headers=partner.headers).status_code == 201

        refused_by_limit(
            http.post("/api/1/webhooks", json=body, headers=partner.headers), "webhooks_per_partner", 20
        )
        assert count(db, Webhook, partner_id=partner.id) == 20


@pytest.fixture
def two_servers(app, settings, clock, database_url) -> Iterator[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Two servers with their own connection pools and write queues, as two processes would be:
    only the database can keep their requests from both taking the last place."""
    other = Database(database_url)
    try:
        with (
            live_server(app) as first,
            live_server(create_app(settings, clock=clock, database=other)) as second,
        ):
            yield first, second
    finally:
        other.dispose()


@pytest.mark.parametrize(
    ("model", "held", "maximum", "path", "body"),
    [
        pytest.param(
            DataSource,
            190,
            200,
            "/api/1/partner/datasources",
            {"name": "S", "kind": "inline", "rows": ROWS},
            id="data sources",
        ),
        pytest.param(
            Webhook, 10, 20, "/api/1/webhooks", {"url": "https://hooks.example.test/h"}, id="webhooks"
        ),
    ],
)
def test_concurrent_creations_on_two_servers_never_pass_the_limit(
    two_servers, make_partner, db, clock, model, held, maximum, path, body
):
    """40 creations at once, half on each server, with room for 10: exactly 10 get in."""
    partner = make_partner()
    owner: dict[str, Any] = {"partner_id": partner.id}
    if model is DataSource:
        owner["client_id"] = None
    fill(db, clock, model, held - 2, **owner)
    # One creation on each server first: both apps share the routers, which FastAPI prepares on
    # their first request, and two event loops preparing the same route at once trip over each
    # other (something no single server meets).
    for url in two_servers:
        assert httpx.post(url + path, json=body, headers=partner.headers, timeout=60).status_code == 201

    def create(n: int) -> tuple[int, str | None]:
        with httpx.Client(base_url=two_servers[n % 2], headers=partner.headers, timeout=60) as own:
            response = own.post(path, json=body)
            return response.status_code, response.json().get("code") if response.status_code != 201 else None

    with ThreadPoolExecutor(max_workers=40) as pool:
        outcomes = Counter(pool.map(create, range(40)))

    room = maximum - held
    assert outcomes == {(201, None): room, (409, "limit_reached"): 40 - room}
    assert count(db, model, **owner) == maximum
