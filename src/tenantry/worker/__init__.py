"""The background worker: scheduled and queued data-source refreshes, trial events, and the
delivery of every outbox event to webhooks and by e-mail.

Each `run_once()` is one step over all four kinds of work, taking the time from the injected
clock (tests move a FakeClock and call it directly); `run()` repeats steps until `stop()`, and
only sleeps when a step found nothing to do. Work is claimed in short transactions with a lease
(PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: an immediate transaction); the HTTP fetch or POST
and the SMTP conversation happen between transactions, never inside one. A worker that dies
holding a lease simply lets it expire, and another takes the job over.
"""

from tenantry.worker.loop import Step, Worker, worker_from_settings

__all__ = ["Step", "Worker", "worker_from_settings"]
