"""At most 50 klips a dashboard (SPEC §12), however the requests that change its klips meet: on
PostgreSQL (READ COMMITTED) the answers must be those SQLite gives, where each write is alone."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from tenantry.db.dashboard_models import Klip
from tests.concurrently import at_once
from tests.content import inline_source

KLIP = {"title": "Total", "kind": "value", "columns": {"value": "sales"}}


def klip_count(db, dashboard_id: int) -> int:
    db.rollback()  # a fresh read: what the server committed since
    return db.scalar(select(func.count()).select_from(Klip).where(Klip.dashboard_id == dashboard_id))


class TestAddingAKlipWhileTheKlipsAreReplaced:
    def test_never_leaves_more_than_50_klips(self, server_url, partner, db):
        with httpx.Client(base_url=server_url, headers=partner.headers, timeout=60) as http:
            small = inline_source(http, partner, None, [{"sales": 1}])
            # Checking a klip against a larger source takes longer: the add's count is read well
            # before its insert.
            big = inline_source(http, partner, None, [{"sales": n, "n": str(n)} for n in range(20_000)])
            made = http.post("/api/1/partner/dashboards", json={"name": "Full", "klips": []})
            assert made.status_code == 201, made.text
        dashboard_id = made.json()["id"]
        counts: list[int] = []

        def to_49() -> None:
            with httpx.Client(base_url=server_url, headers=partner.headers, timeout=60) as http:
                klips = [{**KLIP, "datasource_id": small}] * 49
                reset = http.patch(f"/api/1/dashboards/{dashboard_id}", json={"klips": klips})
                assert reset.status_code == 200, reset.text

        def add_or_replace(http: httpx.Client, _round: int, i: int) -> httpx.Response:
            if i == 0:
                return http.post(
                    f"/api/1/dashboards/{dashboard_id}/klips", json={**KLIP, "datasource_id": big}
                )
            klips = [{**KLIP, "datasource_id": small}] * 50
            return http.patch(f"/api/1/dashboards/{dashboard_id}", json={"klips": klips})

        answers = at_once(
            server_url,
            lambda _: partner.headers,
            add_or_replace,
            threads=2,
            before=to_49,
            after=lambda: counts.append(klip_count(db, dashboard_id)),
        )

        assert max(counts) == 50, counts
        # Whichever came second saw the first's klips: an add after the replacement is refused.
        for round_, count in enumerate(counts):
            added, replaced = answers[2 * round_], answers[2 * round_ + 1]
            assert replaced.status_code == 200, replaced.text
            assert added.status_code in (201, 409), added.text
            assert count == 50
