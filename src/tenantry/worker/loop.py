"""The worker loop. See the package docstring for how claiming and leases work."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from tenantry.backoff import backoff
from tenantry.clock import Clock, SystemClock
from tenantry.datasources.fetch import TIMEOUT_SECONDS as FETCH_DEADLINE
from tenantry.datasources.fetch import FetchError, fetch_rows
from tenantry.datasources.service import refresh_source
from tenantry.db.session import Database
from tenantry.events import service as events
from tenantry.events.service import DeliveryJob
from tenantry.mail import LogMailer, Mailer, mailer_from_settings
from tenantry.metrics import EVENTS_DELIVERED, REFRESH_LAG, REFRESHES, TRIAL_EVENTS
from tenantry.outbound import Guard
from tenantry.policy import Capability
from tenantry.settings import Settings
from tenantry.webhooks import sending
from tenantry.webhooks.sending import TIMEOUT_SECONDS as POST_DEADLINE
from tenantry.worker import repository as repo
from tenantry.worker.repository import RefreshJob

log = structlog.get_logger("tenantry.worker")

DEFAULT_LEASE = timedelta(seconds=120)
# A failing source backs off from its own interval up to this (or its interval, if longer).
REFRESH_BACKOFF_CAP = timedelta(hours=6)


class Fetch(Protocol):
    def __call__(self, url: str, fmt: str, timeout: float) -> list[dict[str, Any]]: ...


class Post(Protocol):
    def __call__(
        self, url: str, raw_body: bytes, headers: dict[str, str], timeout: float
    ) -> sending.PostResult: ...


@dataclass
class Step:
    """What one `run_once()` did."""

    trial_events: int = 0
    dispatched: int = 0
    refreshes: int = 0
    deliveries: int = 0

    @property
    def busy(self) -> bool:
        return any((self.trial_events, self.dispatched, self.refreshes, self.deliveries))


def _replay(rows: list[dict[str, Any]] | None, error: FetchError | None) -> Callable[[str, str], Any]:
    """A `fetch` that hands `refresh_source` what was already fetched outside the transaction."""

    def fetch(_url: str, _format: str) -> list[dict[str, Any]]:
        if error is not None:
            raise error
        assert rows is not None
        return rows

    return fetch


class Worker:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        mailer: Mailer,
        *,
        worker_id: str | None = None,
        lease: timedelta = DEFAULT_LEASE,
        batch: int = 5,
        poll_seconds: float = 1.0,
        guard: Guard | None = None,
        fetch: Fetch | None = None,
        post: Post | None = None,
    ) -> None:
        self.database, self.clock, self.mailer = database, clock, mailer
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        # A batch is leased together; its jobs start only in the first half of the lease.
        self.lease, self.batch, self.poll_seconds = lease, batch, poll_seconds
        self.guard = guard or Guard()
        self.fetch: Fetch = fetch or self._fetch
        self.post: Post = post or self._post
        self._stop = threading.Event()
        self.log = log.bind(worker=self.worker_id)

    def _fetch(self, url: str, fmt: str, timeout: float) -> list[dict[str, Any]]:
        return fetch_rows(url, fmt, guard=self.guard, timeout=timeout)

    def _post(self, url: str, raw_body: bytes, headers: dict[str, str], timeout: float) -> sending.PostResult:
        return sending.post(self.guard, url, raw_body, headers, timeout)

    # -- the loop ---------------------------------------------------------------------------

    def run_once(self) -> Step:
        return Step(
            trial_events=self.write_trial_events(),
            dispatched=self.dispatch_events(),
            refreshes=self.run_refreshes(),
            deliveries=self.run_deliveries(),
        )

    def run(self) -> None:
        self.log.info("worker started", lease_seconds=self.lease.total_seconds(), batch=self.batch)
        while not self._stop.is_set():
            try:
                step = self.run_once()
            except Exception:  # a database outage must not end the loop: log and try again
                self.log.exception("worker step failed")
                step = Step()
            if not step.busy:
                self._stop.wait(self.poll_seconds)
        self.log.info("worker stopped")

    def check_database(self) -> None:
        """Raise unless the database answers and has been migrated (read one job table)."""
        with self.database.session() as db:
            repo.queue_depth(db, self.clock.now())

    def stop(self) -> None:
        """Finish the job in hand, release the rest of the batch, and leave `run()`."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _may_start(self, claimed_at: datetime) -> bool:
        """Start the next job of a batch only while half its lease is left: a job must never
        outlive its lease, or another worker would take it over while it still runs."""
        return not self.stopping and self.clock.now() < claimed_at + self.lease / 2

    # -- trial events and the outbox ------------------------------------------------------

    def write_trial_events(self) -> int:
        now = self.clock.now()
        with self.database.session(write=True) as db:
            written = events.emit_trial_events(db, now)
            db.commit()
        for event_type in written:
            TRIAL_EVENTS.labels(event_type).inc()
            self.log.info("trial event written", type=event_type)
        return len(written)

    def dispatch_events(self) -> int:
        now = self.clock.now()
        with self.database.session(write=True) as db:
            count = events.dispatch_events(db, now)
            db.commit()
        if count:
            self.log.info("events dispatched", count=count)
        return count

    # -- data-source refreshes --------------------------------------------------------------

    def run_refreshes(self) -> int:
        now = self.clock.now()
        with self.database.session(write=True) as db:
            jobs = repo.claim(db, self.worker_id, now, now + self.lease, self.batch)
            db.commit()
        for job in jobs:
            REFRESH_LAG.observe(max(0.0, (job.claimed_at - job.due_at).total_seconds()))
        for done, job in enumerate(jobs):
            if not self._may_start(job.claimed_at):
                self._release_refreshes(jobs[done:])
                return done
            try:
                self.refresh(job)
            except Exception:  # the lease expires and another attempt follows; others go on
                self.log.exception("refresh crashed", source_id=job.source_id)
        return len(jobs)

    def _release_refreshes(self, jobs: list[RefreshJob]) -> None:
        with self.database.session(write=True) as db:
            repo.release(db, [j.source_id for j in jobs], self.worker_id)
            db.commit()
        self.log.info("refreshes released", source_ids=[j.source_id for j in jobs])

    def refresh(self, job: RefreshJob) -> None:
        started = time.monotonic()
        rows, error = None, None
        try:
            rows = self.fetch(job.url, job.format, FETCH_DEADLINE)
        except FetchError as exc:
            error = exc
        now = self.clock.now()
        with self.database.session(write=True) as db:
            capability = Capability.QUEUE_REFRESH if job.queued else Capability.AUTO_REFRESH
            found = repo.leased(db, job.source_id, self.worker_id, capability, now)
            if found is None:
                self.log.warning("refresh lease lost", source_id=job.source_id)
                return
            source, allowed = found
            source.lease_owner = source.lease_expires_at = None
            if not allowed:
                # The client was disabled or its trial ended while we fetched: keep nothing.
                db.commit()
                self.log.info("refresh discarded: status changed", source_id=job.source_id)
                return
            requested = source.refresh_requested_at
            outcome = refresh_source(db, source, now, fetch=_replay(rows, error))
            if requested is not None and requested > job.claimed_at:
                source.refresh_requested_at = requested  # asked for again while we fetched
            if not outcome.ok and source.refresh_interval:
                interval = timedelta(seconds=source.refresh_interval)
                wait = backoff(interval, source.refresh_fail_count, max(interval, REFRESH_BACKOFF_CAP))
                source.next_refresh_at = now + wait
            next_at = source.next_refresh_at
            db.commit()
        REFRESHES.labels("ok" if outcome.ok else "failed").inc()
        self.log.info(
            "refresh finished",
            source_id=job.source_id,
            queued=job.queued,
            ok=outcome.ok,
            rows=outcome.row_count,
            error=outcome.error,
            lag_seconds=round((job.claimed_at - job.due_at).total_seconds(), 3),
            seconds=round(time.monotonic() - started, 3),
            next_refresh_at=next_at.isoformat() if next_at else None,
        )

    # -- deliveries -----------------------------------------------------------------------------

    def run_deliveries(self) -> int:
        now = self.clock.now()
        with self.database.session(write=True) as db:
            jobs = events.claim_delivery_jobs(db, self.worker_id, now, self.lease, self.batch)
            db.commit()
        for done, job in enumerate(jobs):
            if not self._may_start(now):
                with self.database.session(write=True) as db:
                    events.release_delivery_jobs(db, jobs[done:], self.worker_id)
                    db.commit()
                return done
            try:
                self.deliver(job)
            except Exception:
                self.log.exception("delivery crashed", delivery_id=job.id)
        return len(jobs)

    def deliver(self, job: DeliveryJob) -> None:
        logged = permanent = False
        if job.channel == "webhook":
            assert job.url is not None and job.secret is not None
            timestamp = int(self.clock.now().timestamp())
            signed = sending.headers(job.event_id, job.secret, timestamp, job.body)
            result = self.post(job.url, job.body, signed, POST_DEADLINE)
            ok, status_code, error, permanent = result.ok, result.status_code, result.error, result.permanent
        else:
            assert job.mail is not None
            sent = self.mailer.send(job.mail)
            ok, status_code, error = sent.delivered, None, sent.reason
            logged = not sent.delivered and sent.reason == LogMailer.REASON
        now = self.clock.now()
        with self.database.session(write=True) as db:
            status = events.settle_delivery(
                db,
                job,
                self.worker_id,
                now,
                ok=ok,
                status_code=status_code,
                error=error,
                logged=logged,
                permanent=permanent,
            )
            db.commit()
        EVENTS_DELIVERED.labels(job.channel, "retrying" if status == "pending" else status).inc()
        self.log.info(
            "event delivery attempted",
            delivery_id=job.id,
            event_id=job.event_id,
            type=job.event_type,
            channel=job.channel,
            status=status,
            status_code=status_code,
            error=error,
        )


def worker_from_settings(settings: Settings, database: Database | None = None, **options: Any) -> Worker:
    return Worker(
        database or Database(settings.sqlalchemy_url),
        SystemClock(settings.clock_offset),
        mailer_from_settings(settings),
        guard=Guard.from_settings(settings),
        **options,
    )
