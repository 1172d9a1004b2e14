"""Published links asked for while their dashboard is deleted or their client disabled (PostgreSQL,
where requests run at once): a link is made only for a dashboard that still exists, of a client
whose status allows it when the link is made (SPEC §4), and never answers 500."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from sqlalchemy import text

from tenantry.db.models import Client
from tenantry.partners import repository as partners_repo
from tests.concurrently import at_once
from tests.content import create_dashboard, dashboard_in, inline_source
from tests.factories import new_client


def test_a_link_asked_for_while_the_client_is_disabled_is_not_created(http, partner, clock, database):
    if database.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's write transactions are alone: the race needs PostgreSQL")
    client_id, _, dashboard_id = dashboard_in(http, partner, "active", clock)
    answers: list[int] = []
    with database.session(write=True) as disabling:
        # What PATCH /clients/{id} {"status": "disabled"} does: the partner locked, then the status.
        partners_repo.lock_partner(disabling, partner.id)
        client = disabling.get(Client, client_id)
        assert client is not None
        client.status = "disabled"
        disabling.flush()
        asking = threading.Thread(
            target=lambda: answers.append(
                http.post(
                    f"/api/1/dashboards/{dashboard_id}/published-links",
                    json={"name": "Board room"},
                    headers=partner.headers,
                ).status_code
            )
        )
        asking.start()
        # Wait until the link request is waiting for the partner's lock.
        with database.engine.connect() as watch:
            for _ in range(600):
                waiting = watch.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                ).scalar()
                watch.rollback()  # a transaction keeps one snapshot of pg_stat_activity
                if waiting:
                    break
                time.sleep(0.05)
        disabling.commit()
    asking.join(60)
    assert answers == [409]
    assert (
        http.get(f"/api/1/clients/{client_id}", headers=partner.headers).json()["usage"]["published_links"]
        == 0
    )


def test_publishing_a_dashboard_while_it_is_deleted_never_answers_500_nor_leaks_a_place(
    server_url, make_partner
):
    # Six rounds of one deletion and five links at once.
    partner = make_partner(dashboards=-1, users=-1, published_links=-1, api_calls_per_day=-1)
    seen = []
    for _r in range(6):
        with httpx.Client(base_url=server_url, headers=partner.headers, timeout=60) as http:
            client_id = new_client(http, partner, "trial", dashboards=2, users=0, published_links=5)
            source_id = inline_source(http, partner, client_id)
            board = create_dashboard(http, partner, client_id, source_id, name="D").json()["id"]

        def call(h: httpx.Client, rr: int, i: int, board: int = board) -> httpx.Response:
            if i == 0:
                return h.delete(f"/api/1/dashboards/{board}")
            return h.post(f"/api/1/dashboards/{board}/published-links", json={"name": f"L{i}"})

        answers = at_once(server_url, lambda i: partner.headers, call, threads=6, rounds=1)
        with httpx.Client(base_url=server_url, headers=partner.headers, timeout=60) as http:
            usage = http.get(f"/api/1/clients/{client_id}").json()["usage"]["published_links"]
        seen.append((sorted(a.status_code for a in answers), usage))
    assert all(500 not in codes and 503 not in codes and usage == 0 for codes, usage in seen), seen
