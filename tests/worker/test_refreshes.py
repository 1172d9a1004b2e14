"""Scheduled and queued data-source refreshes by the worker (SPEC §4 rows on refreshing)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tenantry.db.dashboard_models import DataSource
from tenantry.worker.repository import claim
from tests.content import make_client, move_to
from tests.factories import set_status

CSV = "month,sales\nJan,1\n"


def url_source(http, partner, client_id, data_server, path, interval=60):
    url = data_server.serve(path, CSV)
    base = f"/api/1/clients/{client_id}/datasources" if client_id else "/api/1/partner/datasources"
    body = {"name": path, "kind": "url", "url": url, "format": "csv", "refresh_interval": interval}
    response = http.post(base, json=body, headers=partner.headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def forget_queued(database):
    with database.session(write=True) as db:
        db.execute(update(DataSource).values(refresh_requested_at=None))
        db.commit()


def source(database, source_id) -> DataSource:
    with database.session() as db:
        return db.scalars(select(DataSource).where(DataSource.id == source_id)).one()


STATUSES = [
    # status           scheduled  queued    (SPEC §4: "refresh automatically", "queue ... by hand")
    ("setup", False, True),
    ("trial", True, True),
    ("trial_expired", False, False),
    ("active", True, True),
    ("disabled", False, False),
]


class TestWhoRefreshes:
    @pytest.mark.parametrize(("status", "scheduled", "_"), STATUSES)
    def test_a_scheduled_refresh_runs_only_while_the_client_is_in_trial_or_active(
        self, http, partner, clock, database, data_server, worker, status, scheduled, _
    ):
        client_id = make_client(http, partner)
        url_source(http, partner, client_id, data_server, "/s.csv")
        forget_queued(database)
        move_to(http, partner, client_id, status, clock)
        clock.advance(seconds=61)
        worker.run_once()
        assert data_server.hits.count("/s.csv") == (1 if scheduled else 0)

    @pytest.mark.parametrize(("status", "_", "queued"), STATUSES)
    def test_a_queued_refresh_runs_in_setup_trial_and_active_only(
        self, http, partner, clock, database, data_server, worker, status, _, queued
    ):
        client_id = make_client(http, partner)
        source_id = url_source(http, partner, client_id, data_server, "/q.csv", interval=None)
        forget_queued(database)
        move_to(http, partner, client_id, status, clock)
        with database.session(write=True) as db:
            db.execute(update(DataSource).values(refresh_requested_at=clock.now()))
            db.commit()
        worker.run_once()
        assert data_server.hits.count("/q.csv") == (1 if queued else 0)
        assert (source(database, source_id).last_refreshed_at is not None) is queued

    def test_the_partners_own_sources_always_refresh(self, http, partner, clock, data_server, worker):
        url_source(http, partner, None, data_server, "/own.csv")
        for _ in range(3):
            worker.run_once()
            clock.advance(seconds=60)
        assert data_server.hits.count("/own.csv") == 3

    def test_a_new_source_is_loaded_once_and_then_every_interval(
        self, http, partner, clock, database, data_server, worker
    ):
        client_id = make_client(http, partner, "active")
        source_id = url_source(http, partner, client_id, data_server, "/n.csv", interval=120)
        worker.run_once()
        worker.run_once()
        assert data_server.hits.count("/n.csv") == 1
        loaded = source(database, source_id)
        assert loaded.row_count == 1
        assert loaded.next_refresh_at == clock.now() + timedelta(seconds=120)
        clock.advance(seconds=119)
        worker.run_once()
        assert data_server.hits.count("/n.csv") == 1
        clock.advance(seconds=1)
        worker.run_once()
        assert data_server.hits.count("/n.csv") == 2


class TestARefreshAskedForWhileOneFetches:
    def test_runs_again_after_it_even_when_the_one_fetching_was_asked_for_too(
        self, http, partner, clock, database, data_server, make_worker
    ):
        # The first fetch is the new source's initial load, itself a queued refresh.
        client_id = make_client(http, partner, "active")
        source_id = url_source(http, partner, client_id, data_server, "/twice.csv", interval=None)
        fetches = []

        def fetch(request, timeout):
            fetches.append(clock.now())
            if len(fetches) == 1:
                clock.advance(seconds=1)
                queued = http.post(f"/api/1/datasources/{source_id}/refresh", headers=partner.headers)
                assert queued.status_code == 202, queued.text
            return [{"month": "Jan", "sales": len(fetches)}]

        worker = make_worker(fetch=fetch)
        for _ in range(3):
            clock.advance(seconds=1)
            worker.run_once()
        assert len(fetches) == 2, fetches
        assert source(database, source_id).refresh_requested_at is None
        assert source(database, source_id).rows == [{"month": "Jan", "sales": 2}]


class TestStatusChanges:
    def test_disabling_stops_refreshes_at_once_and_reactivating_resumes_without_a_burst(
        self, http, partner, clock, database, data_server, worker
    ):
        client_id = make_client(http, partner, "active")
        source_id = url_source(http, partner, client_id, data_server, "/d.csv")
        worker.run_once()
        assert data_server.hits.count("/d.csv") == 1
        set_status(http, partner, client_id, "disabled")
        for _ in range(10):
            clock.advance(seconds=60)
            worker.run_once()
        assert data_server.hits.count("/d.csv") == 1

        set_status(http, partner, client_id, "active")
        for _ in range(3):
            worker.run_once()
        # Ten missed slots are not replayed: one refresh now, the next an interval from now.
        assert data_server.hits.count("/d.csv") == 2
        assert source(database, source_id).next_refresh_at == clock.now() + timedelta(seconds=60)

    def test_the_lag_of_a_reactivated_source_counts_from_its_reactivation(
        self, http, partner, clock, database, data_server, worker
    ):
        client_id = make_client(http, partner, "active")
        url_source(http, partner, client_id, data_server, "/lag.csv")
        worker.run_once()
        set_status(http, partner, client_id, "disabled")
        clock.advance(days=1)
        set_status(http, partner, client_id, "active")
        reactivated = clock.now()
        clock.advance(seconds=5)
        with database.session(write=True) as db:
            (job,) = claim(db, "w", clock.now(), clock.now() + timedelta(seconds=60), 10)
        assert job.claimed_at - job.due_at == timedelta(seconds=5)
        assert job.due_at == reactivated

    def test_a_trial_that_expires_stops_refreshing_at_its_end(
        self, http, partner, clock, data_server, worker
    ):
        client_id = make_client(http, partner, "trial")
        url_source(http, partner, client_id, data_server, "/t.csv", interval=3600)
        worker.run_once()
        clock.advance(days=14, seconds=-1)
        worker.run_once()
        hits = data_server.hits.count("/t.csv")
        clock.advance(seconds=3601)
        worker.run_once()
        assert data_server.hits.count("/t.csv") == hits


class TestFailures:
    def test_failures_back_off_exponentially_and_show_on_the_source(
        self, http, partner, clock, database, data_server, worker
    ):
        client_id = make_client(http, partner, "active")
        source_id = url_source(http, partner, client_id, data_server, "/bad.csv")
        data_server.serve("/bad.csv", "oops", status=500)
        waits = []
        for _ in range(4):
            before = len(data_server.hits)
            while len(data_server.hits) == before:
                clock.advance(seconds=10)
                worker.run_once()
            failed = source(database, source_id)
            waits.append(failed.next_refresh_at - clock.now())
        assert waits == [timedelta(seconds=s) for s in (60, 120, 240, 480)]
        assert failed.refresh_fail_count == 4
        assert "HTTP 500" in failed.last_error

        data_server.serve("/bad.csv", CSV)
        clock.advance(seconds=480)
        worker.run_once()
        healed = source(database, source_id)
        assert (healed.refresh_fail_count, healed.last_error, healed.row_count) == (0, None, 1)

    def test_the_backoff_is_capped(self, http, partner, clock, database, data_server, worker):
        client_id = make_client(http, partner, "active")
        source_id = url_source(http, partner, client_id, data_server, "/cap.csv")
        data_server.serve("/cap.csv", "oops", status=500)
        with database.session(write=True) as db:
            db.execute(update(DataSource).values(refresh_fail_count=50))
            db.commit()
        worker.run_once()
        assert source(database, source_id).next_refresh_at == clock.now() + timedelta(hours=6)

    def test_a_failing_source_does_not_hold_up_the_others(
        self, http, partner, clock, data_server, make_worker
    ):
        client_id = make_client(http, partner, "active")
        url_source(http, partner, client_id, data_server, "/missing-entirely.csv")
        data_server.routes.pop("/missing-entirely.csv")
        for n in range(4):
            url_source(http, partner, client_id, data_server, f"/ok{n}.csv")
        make_worker(batch=2).run_once()
        make_worker(batch=2).run_once()
        make_worker(batch=2).run_once()
        assert all(data_server.hits.count(f"/ok{n}.csv") == 1 for n in range(4))


class TestLeases:
    def test_a_source_leased_by_another_worker_waits_until_the_lease_expires(
        self, http, partner, clock, database, data_server, worker
    ):
        client_id = make_client(http, partner, "active")
        url_source(http, partner, client_id, data_server, "/l.csv")
        with database.session(write=True) as db:
            db.execute(
                update(DataSource).values(
                    lease_owner="another", lease_expires_at=clock.now() + timedelta(seconds=30)
                )
            )
            db.commit()
        worker.run_once()
        assert data_server.hits.count("/l.csv") == 0
        clock.advance(seconds=30)
        worker.run_once()
        assert data_server.hits.count("/l.csv") == 1

    def test_the_fetch_runs_outside_any_transaction(self, http, partner, database, data_server, make_worker):
        client_id = make_client(http, partner, "active")
        source_id = url_source(http, partner, client_id, data_server, "/tx.csv")
        seen = []

        def fetch_while_writing(request, timeout):
            # A write that would wait for (SQLite) or be refused by (PostgreSQL NOWAIT) a worker
            # holding a transaction or the row's lock.
            with database.session(write=True) as db:
                seen.append(
                    db.scalars(
                        select(DataSource.id).where(DataSource.id == source_id).with_for_update(nowait=True)
                    ).one()
                )
                db.commit()
            return [{"month": "Jan", "sales": 1}]

        make_worker(fetch=fetch_while_writing).run_once()
        assert seen == [source_id]
        assert source(database, source_id).row_count == 1

    @pytest.mark.parametrize("interruption", ["the worker stops", "half the lease passes"])
    def test_the_job_in_hand_is_finished_and_the_rest_of_the_batch_released_when(
        self, http, partner, clock, database, data_server, make_worker, interruption
    ):
        client_id = make_client(http, partner, "active")
        ids = [url_source(http, partner, client_id, data_server, f"/b{n}.csv") for n in range(3)]
        # One job at a time: the second of the batch starts only once the first has finished.
        worker = make_worker(batch=3, lease=timedelta(seconds=60), concurrency=1)

        def fetch(request, timeout):
            if interruption == "the worker stops":
                worker.stop()
            else:
                clock.advance(seconds=31)
            return [{"a": 1}]

        worker.fetch = fetch
        assert worker.run_refreshes() == 1
        sources = [source(database, i) for i in ids]
        assert sum(s.last_refreshed_at is not None for s in sources) == 1
        assert all(s.lease_owner is None for s in sources)
        assert make_worker().run_refreshes() == 2
