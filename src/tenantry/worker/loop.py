"""The worker loop. See the package docstring for how claiming, leases and fairness work."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

import structlog

from tenantry.backoff import backoff
from tenantry.clock import Clock, SystemClock
from tenantry.datasources.fetch import TIMEOUT_SECONDS as FETCH_DEADLINE
from tenantry.datasources.fetch import FetchError, fetch_source
from tenantry.datasources.request import SourceRequest
from tenantry.datasources.service import refresh_source, source_request
from tenantry.db.generation import watch_key_writes
from tenantry.db.leases import Shares
from tenantry.db.session import Database
from tenantry.emails import repository as emails_repo
from tenantry.emails import service as emails
from tenantry.emails.service import MailJob
from tenantry.events import repository as events_repo
from tenantry.events import service as events
from tenantry.events.service import DeliveryJob
from tenantry.exports.service import Renderer, new_renderer
from tenantry.mail import SMTP_DEADLINE_SECONDS, Mailer, mailer_from_settings
from tenantry.metrics import EVENTS_DELIVERED, MAILS_SENT, REFRESH_LAG, REFRESHES, REPORTS, TRIAL_EVENTS
from tenantry.outbound import Guard
from tenantry.policy import Capability
from tenantry.reports import repository as reports_repo
from tenantry.reports import service as reports
from tenantry.settings import Settings
from tenantry.vault import Vault, load_vault
from tenantry.webhooks import sending
from tenantry.webhooks.sending import TIMEOUT_SECONDS as POST_DEADLINE
from tenantry.worker import repository as repo
from tenantry.worker.repository import RefreshJob

log = structlog.get_logger("tenantry.worker")

DEFAULT_LEASE = timedelta(seconds=120)
DEFAULT_CONCURRENCY = 8
# A failing source backs off from its own interval up to this (or its interval, if longer).
REFRESH_BACKOFF_CAP = timedelta(hours=6)
# Drawing and typesetting one dashboard, then writing its e-mail to the outbox.
REPORT_DEADLINE = 30.0
# While work is being found, the next claim waits for this long at most for a batch of free slots.
CLAIM_PAUSE_SECONDS = 0.1
# While events keep coming, they are fanned out in batches this far apart (a full batch at once).
EVENTS_GATHER_SECONDS = 0.25


class Fetch(Protocol):
    def __call__(self, request: SourceRequest, timeout: float) -> list[dict[str, Any]]: ...


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
    mails: int = 0
    reports: int = 0

    @property
    def busy(self) -> bool:
        return any(
            (self.trial_events, self.dispatched, self.refreshes, self.deliveries, self.mails, self.reports)
        )


@dataclass(frozen=True)
class _Job:
    """A claimed job of any kind, as the pool runs it."""

    kind: str  # "refresh", "delivery", "mail" or "report"
    key: int
    partner_id: int
    claimed_at: datetime
    deadline: float  # seconds its outgoing conversation may take at most
    run: Callable[[float], None]  # given the seconds it may take
    release: Callable[[], None]


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
        concurrency: int = DEFAULT_CONCURRENCY,
        guard: Guard | None = None,
        fetch: Fetch | None = None,
        post: Post | None = None,
        vault: Vault | None = None,
        settings: Settings | None = None,
        renderer: Renderer | None = None,
    ) -> None:
        self.database, self.clock, self.mailer = database, clock, mailer
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease, self.batch, self.poll_seconds = lease, batch, poll_seconds
        self.concurrency = concurrency
        # One partner may hold all but a quarter of the slots (at least one is always left for
        # the others): its backlog of slow jobs never delays another partner's by more than a
        # job's own deadline.
        self.partner_share = max(1, concurrency - max(1, concurrency // 4))
        self.guard = guard or Guard()
        self.fetch: Fetch = fetch or self._fetch
        # Opens the sources' secrets to fetch them. Without the app's keys (a worker made with
        # none), a throwaway key opens nothing: sources with secrets fail with a plain
        # `last_error`, the others refresh as usual.
        self.vault = vault or Vault(os.urandom(32))
        self.post: Post = post or self._post
        # Scheduled reports: where their links point (the operator's base URL, or a partner's
        # domain), and what draws and typesets them.
        self.settings = settings or Settings()
        self.renderer = renderer or new_renderer()
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._running: Counter[int] = Counter()  # partner id → jobs claimed and not yet finished
        self._kinds = 0  # which kind of job claims first, in turn
        # When each kind of work is next looked for (monotonic seconds; 0: at once), by `run()`.
        self._next_look: dict[str, float] = {}
        self._generation = 0  # counts the wake-ups: a pause ends at the next one
        self.log = log.bind(worker=self.worker_id)

    def _fetch(self, request: SourceRequest, timeout: float) -> list[dict[str, Any]]:
        return fetch_source(request, guard=self.guard, timeout=timeout)

    def _post(self, url: str, raw_body: bytes, headers: dict[str, str], timeout: float) -> sending.PostResult:
        return sending.post(self.guard, url, raw_body, headers, timeout)

    # -- the loop ---------------------------------------------------------------------------

    def run_once(self) -> Step:
        """One step: trial events, the outbox's fan-out, then a batch of each kind of job, run
        concurrently; returns once they have all finished (tests drive the worker this way)."""
        step = Step(trial_events=self.write_trial_events(), dispatched=self.dispatch_events())
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="tenantry-job") as pool:
            jobs = [*self._claim_refreshes(self.batch), *self._claim_deliveries(self.batch)]
            jobs += self._claim_mails(self.batch) + self._claim_reports(self.batch)
            ran = self._finish([(job, self._start(pool, job)) for job in jobs])
        self.mailer.close()  # a step keeps no connection to the mail server open after it
        kinds = ("refresh", "delivery", "mail", "report")
        step.refreshes, step.deliveries, step.mails, step.reports = (ran[kind] for kind in kinds)
        return step

    def run_refreshes(self) -> int:
        return self._run_kind(self._claim_refreshes)

    def run_deliveries(self) -> int:
        return self._run_kind(self._claim_deliveries)

    def run_mails(self) -> int:
        return self._run_kind(self._claim_mails)

    def run_reports(self) -> int:
        return self._run_kind(self._claim_reports)

    def _run_kind(self, claim: Callable[[int], list[_Job]]) -> int:
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="tenantry-job") as pool:
            ran = self._finish([(job, self._start(pool, job)) for job in claim(self.batch)])
        self.mailer.close()
        return sum(ran.values())

    @staticmethod
    def _finish(started: list[tuple[_Job, Future[bool]]]) -> Counter[str]:
        return Counter(job.kind for job, future in started if future.result())

    def run(self) -> None:
        """Claim jobs whenever slots are free and run them on `concurrency` threads, until
        `stop()`; then finish the jobs in hand (each within its deadline) and return.

        Each kind of work (trial events, the events' fan-out, and each kind of job) is looked
        for again at once while it is being found, and `poll_seconds` after a look that found
        none; a job that finishes wakes its own kind (its partner has a free share of the slots
        again), and dispatched events wake their deliveries; events are fanned out in batches
        (`EVENTS_GATHER_SECONDS` apart while they keep coming). An idle kind costs one query per
        poll, not one per turn of the loop."""
        self.log.info(
            "worker started",
            lease_seconds=self.lease.total_seconds(),
            batch=self.batch,
            concurrency=self.concurrency,
        )
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="tenantry-job") as pool:
            while not self.stopping:
                claimed = 0
                try:
                    if self._due("trials"):
                        self._looked("trials", self.write_trial_events())
                    if self._due("events"):
                        dispatched = self.dispatch_events()
                        self._looked_events(dispatched)
                        if dispatched:
                            self._wake("delivery")
                    claimed = self._fill(pool)
                except Exception:  # a database outage must not end the loop: log and try again
                    self.log.exception("worker step failed")
                    self._stop.wait(self.poll_seconds)
                self._pause(claimed)
            # Leaving the `with` waits for the jobs in hand; they are bounded by their deadlines.
        self.mailer.close()
        self.log.info("worker stopped")

    def _due(self, kind: str) -> bool:
        return time.monotonic() >= self._next_look.get(kind, 0.0)

    def _looked(self, kind: str, found: int) -> None:
        """Look for `kind` again at once if some was found, else after the poll interval."""
        with self._changed:
            self._next_look[kind] = 0.0 if found else time.monotonic() + self.poll_seconds

    def _looked_events(self, dispatched: int) -> None:
        """The next fan-out: at once after a full batch, a moment later after a partial one (the
        events written meanwhile go out together), a poll later after none."""
        if dispatched >= events.DISPATCH_BATCH:
            wait = 0.0
        elif dispatched:
            wait = min(EVENTS_GATHER_SECONDS, self.poll_seconds)
        else:
            wait = self.poll_seconds
        with self._changed:
            self._next_look["events"] = time.monotonic() + wait if wait else 0.0

    def _wake(self, *kinds: str) -> None:
        with self._changed:
            for kind in kinds:
                self._next_look[kind] = 0.0
            self._generation += 1
            self._changed.notify_all()

    def _fill(self, pool: ThreadPoolExecutor) -> int:
        """Claim as many jobs as there are free slots (a batch of each kind at most), taking the
        kinds in turn, and start them. A kind not due for a look is skipped."""
        claims = [
            ("refresh", self._claim_refreshes),
            ("delivery", self._claim_deliveries),
            ("mail", self._claim_mails),
            ("report", self._claim_reports),
        ]
        self._kinds = (self._kinds + 1) % len(claims)
        claimed = 0
        for kind, claim in claims[self._kinds :] + claims[: self._kinds]:
            free = self.concurrency - self._busy()
            if free <= 0:
                break
            if not self._due(kind):
                continue
            jobs = claim(min(free, self.batch))
            self._looked(kind, len(jobs))
            for job in jobs:
                self._start(pool, job)
            claimed += len(jobs)
        return claimed

    def _pause(self, claimed: int) -> None:
        """Wait before claiming again: while work is being found, until half the slots are free
        (or briefly); otherwise until a slot frees or a kind of work is due for a look."""
        want = max(1, self.concurrency // 2)
        with self._changed:
            if claimed:
                self._changed.wait_for(
                    lambda: self.stopping or self.concurrency - self._busy() >= want, CLAIM_PAUSE_SECONDS
                )
                return
            busy = self._busy() >= self.concurrency
            # With every slot taken, only the trial events and the events' fan-out can be done.
            kinds = ("trials", "events") if busy else self._next_look.keys()
            soonest = min((self._next_look.get(kind, 0.0) for kind in kinds), default=0.0)
            wait = min(self.poll_seconds, max(0.0, soonest - time.monotonic()))
            if busy:
                self._changed.wait_for(lambda: self.stopping or self._busy() < self.concurrency, wait)
            elif wait > 0:
                woken = self._generation
                self._changed.wait_for(lambda: self.stopping or self._generation != woken, wait)

    def _busy(self) -> int:
        return sum(self._running.values())

    def _shares(self) -> Shares:
        running = {partner: n for partner, n in self._running.items() if n}
        return Shares(self.partner_share, {p: self.partner_share - n for p, n in running.items()})

    def _start(self, pool: ThreadPoolExecutor, job: _Job) -> Future[bool]:
        with self._changed:
            self._running[job.partner_id] += 1
        return pool.submit(self._execute, job)

    def _execute(self, job: _Job) -> bool:
        """Run one job on a pool thread; False when it was released instead (not run)."""
        try:
            seconds = self._time_for(job.claimed_at, job.deadline)
            if seconds is None:
                job.release()
                self.log.info("job released", kind=job.kind, id=job.key)
                return False
            job.run(seconds)
            return True
        except Exception:  # the lease expires and another attempt follows; other jobs go on
            self.log.exception("job crashed", kind=job.kind, id=job.key)
            return True
        finally:
            with self._changed:
                self._running[job.partner_id] -= 1
                if not self._running[job.partner_id]:
                    del self._running[job.partner_id]
                # Its kind is looked for again: a claim that found none may have found only
                # partners whose share of the slots was taken, and this job's partner has one now.
                self._next_look[job.kind] = 0.0
                self._generation += 1
                self._changed.notify_all()

    def _time_for(self, claimed_at: datetime, deadline: float) -> float | None:
        """The seconds a job may take: its own deadline, and never more than half of what is left
        of its lease, so that it ends, and its result is written, while the lease still holds
        (another worker would take it over otherwise). None: do not start it (the worker is
        stopping, or less than half the lease is left)."""
        if self.stopping:
            return None
        left = (claimed_at + self.lease - self.clock.now()).total_seconds()
        if left < self.lease.total_seconds() / 2:
            return None
        return min(deadline, left / 2)

    def check_database(self) -> None:
        """Raise unless the database answers and has been migrated (read one job table)."""
        with self.database.session() as db:
            repo.queue_depth(db, self.clock.now())

    def stop(self) -> None:
        """Finish the jobs in hand, release the ones not started, and leave `run()`."""
        self._stop.set()
        with self._changed:
            self._changed.notify_all()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

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

    def _claim_refreshes(self, limit: int) -> list[_Job]:
        now = self.clock.now()
        with self.database.session(write=True) as db:
            claimed = repo.claim(db, self.worker_id, now, now + self.lease, limit, self._shares())
            db.commit()
        for job in claimed:
            REFRESH_LAG.observe(max(0.0, (job.claimed_at - job.due_at).total_seconds()))
        return [
            _Job(
                "refresh",
                job.source_id,
                job.partner_id,
                job.claimed_at,
                FETCH_DEADLINE,
                partial(self.refresh, job),
                partial(self._release, repo.release, [job.source_id]),
            )
            for job in claimed
        ]

    def _release(self, release: Callable[[Any, Sequence[int], str], None], ids: Sequence[int]) -> None:
        with self.database.session(write=True) as db:
            release(db, ids, self.worker_id)
            db.commit()

    def refresh(self, job: RefreshJob, seconds: float = FETCH_DEADLINE) -> None:
        started = time.monotonic()
        rows, error = None, None
        try:
            # Read in a short transaction of its own: nothing is held open while fetching.
            with self.database.session() as db:
                request = source_request(db, job.source_id, self.vault)
            rows = self.fetch(request, seconds)
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

    # -- event deliveries (webhooks, e-mails to the partner's admins) --------------------------

    def _claim_deliveries(self, limit: int) -> list[_Job]:
        now = self.clock.now()
        with self.database.session(write=True) as db:
            claimed = events.claim_delivery_jobs(
                db, self.worker_id, now, self.lease, limit, self._shares(), self.settings
            )
            db.commit()
        return [
            _Job(
                "delivery",
                job.id,
                job.partner_id,
                job.claimed_at,
                POST_DEADLINE if job.channel == "webhook" else SMTP_DEADLINE_SECONDS,
                partial(self.deliver, job),
                partial(self._release, events_repo.release_deliveries, [job.id]),
            )
            for job in claimed
        ]

    def deliver(self, job: DeliveryJob, seconds: float = POST_DEADLINE) -> None:
        logged = permanent = False
        if job.channel == "webhook":
            assert job.url is not None and job.secret is not None
            timestamp = int(self.clock.now().timestamp())
            signed = sending.headers(job.event_id, job.secret, timestamp, job.body)
            result = self.post(job.url, job.body, signed, seconds)
            ok, status_code, error, permanent = result.ok, result.status_code, result.error, result.permanent
        else:
            assert job.mail is not None
            sent = self.mailer.send(job.mail, timeout=seconds)
            ok, status_code, error, permanent = sent.delivered, None, sent.reason, sent.permanent
            logged = not sent.delivered and not self.mailer.delivers
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

    # -- the e-mail outbox (dashboards, invitations) -------------------------------------------

    def _claim_mails(self, limit: int) -> list[_Job]:
        now = self.clock.now()
        with self.database.session(write=True) as db:
            claimed = emails.claim_mail_jobs(db, self.worker_id, now, self.lease, limit, self._shares())
            db.commit()
        return [
            _Job(
                "mail",
                job.id,
                job.partner_id,
                job.claimed_at,
                SMTP_DEADLINE_SECONDS,
                partial(self.send_mail, job),
                partial(self._release, emails_repo.release, [job.id]),
            )
            for job in claimed
        ]

    def send_mail(self, job: MailJob, seconds: float = SMTP_DEADLINE_SECONDS) -> None:
        sent = self.mailer.send(job.mail, timeout=seconds)
        now = self.clock.now()
        with self.database.session(write=True) as db:
            status = emails.settle_mail(db, job, self.worker_id, now, sent, logged=not self.mailer.delivers)
            if status == "failed":
                reports.mail_failed(db, job.id, sent.reason, now)
            db.commit()
        MAILS_SENT.labels(job.kind, "retrying" if status == "pending" else status).inc()
        self.log.info(
            "mail attempted",
            mail_id=job.id,
            kind=job.kind,
            recipients=len(job.mail.to),
            status=status,
            error=sent.reason,
        )

    # -- scheduled reports --------------------------------------------------------------------

    def _claim_reports(self, limit: int) -> list[_Job]:
        now = self.clock.now()
        with self.database.session(write=True) as db:
            claimed = reports_repo.claim(db, self.worker_id, now, now + self.lease, limit, self._shares())
            db.commit()
        return [
            _Job(
                "report",
                schedule_id,
                partner_id,
                now,
                REPORT_DEADLINE,
                partial(self.run_report, schedule_id),
                partial(self._release, reports_repo.release, [schedule_id]),
            )
            for schedule_id, partner_id, _due in claimed
        ]

    def run_report(self, schedule_id: int, seconds: float = REPORT_DEADLINE) -> None:
        """Run a claimed schedule's slot in one transaction: its run row (unique per slot), the
        e-mail in the outbox, the event and the next slot commit together or not at all. The
        e-mail is written leased to this worker, which then sends it at once, as a claimed
        outbox message (so it is neither read back nor claimed again).

        On SQLite the report is rendered before, in a read transaction (`reports.render_ahead`):
        SQLite has one writer, which the rest of the app would wait for while the report renders.
        PostgreSQL locks only the schedule's row meanwhile, and a second transaction would cost
        more than it saves (`bench/reports.py`, 3,000 schedules, 4 workers: PostgreSQL's CPU per
        report rose from 2.1 ms to 3.3-4.3 ms, the reports per second fell by 10-28%)."""
        now = self.clock.now()
        rendered = None
        if self.database.is_sqlite:
            with self.database.session() as db:
                held = reports_repo.leased(db, schedule_id, self.worker_id, lock=False)
                rendered = None if held is None else reports.render_ahead(db, self.renderer, held, now)
        with self.database.session(write=True) as db:
            schedule = reports_repo.leased(db, schedule_id, self.worker_id)
            if schedule is None:
                self.log.warning("report lease lost", schedule_id=schedule_id)
                return
            partner_id = schedule.partner_id
            # Given back with the run's commit; said first, so that the schedule's row is written
            # once, with its next slot (the row stays locked meanwhile).
            schedule.lease_owner = schedule.lease_expires_at = None
            outcome = reports.run_schedule(
                db,
                self.settings,
                self.mailer,
                self.renderer,
                schedule,
                now,
                held_by=(self.worker_id, now + self.lease),
                rendered=rendered,
            )
            db.commit()
        if outcome.status == "not_due":
            self.log.info(
                "report no longer due", schedule_id=schedule_id, next_run_at=outcome.slot.isoformat()
            )
            return
        REPORTS.labels(outcome.status).inc()
        self.log.info(
            "report run",
            schedule_id=schedule_id,
            slot=outcome.slot.isoformat(),
            status=outcome.status,
            late=outcome.late,
            reason=outcome.reason,
            lag_seconds=round((now - outcome.slot).total_seconds(), 3),
        )
        if outcome.mail is not None and outcome.mail_id is not None:
            self._send_held(MailJob(outcome.mail_id, partner_id, "dashboard", outcome.mail, now))

    def _send_held(self, job: MailJob) -> None:
        """Send an outbox message this worker wrote leased to itself, like a claimed one (within
        its deadline and half of what is left of its lease); when stopping, or with too little of
        the lease left, give it back to the outbox instead."""
        seconds = self._time_for(job.claimed_at, SMTP_DEADLINE_SECONDS)
        if seconds is None:
            self._release(emails_repo.release, [job.id])
            return
        self.send_mail(job, seconds)


def worker_from_settings(settings: Settings, database: Database | None = None, **options: Any) -> Worker:
    """A worker with the settings' clock, mailer and guard. Without a `database`, it gets its own
    connection pool, sized for its jobs: one connection each, and two for claiming and events."""
    options.setdefault("concurrency", settings.worker_concurrency)
    if database is None:
        database = Database(
            settings.sqlalchemy_url,
            pool_size=options["concurrency"] + 2,
            max_overflow=0,
            pool_timeout=settings.db_pool_timeout_seconds,
            connect_timeout=settings.db_connect_timeout_seconds,
            lock_timeout=settings.db_lock_timeout_seconds,
        )
    watch_key_writes(database.engine, settings.redis_url)
    return Worker(
        database,
        SystemClock(settings.clock_offset),
        mailer_from_settings(settings),
        guard=Guard.from_settings(settings),
        vault=load_vault(settings),
        settings=settings,
        **options,
    )
