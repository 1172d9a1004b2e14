"""The background worker: scheduled and queued data-source refreshes, trial events, the delivery
of every event to webhooks and by e-mail, and the e-mails of the outbox.

Each `run_once()` is one step over every kind of work, taking the time from the injected clock
(tests move a FakeClock and call it directly): it claims a batch of each kind, runs them
concurrently and returns when they are done. `run()` keeps up to `concurrency` jobs running on
a pool of threads and claims more whenever a slot is free, until `stop()`; then it finishes the
jobs in hand. Work is claimed in short transactions with a lease (PostgreSQL: `FOR UPDATE SKIP
LOCKED`; SQLite: an immediate transaction), in turns across partners and never beyond a
partner's share of the slots (`tenantry.db.leases.fair_pick`), so one partner's slow jobs cannot
hold up everyone else's. The HTTP fetch or POST and the SMTP conversation happen between
transactions, never inside one, and end at a total deadline shorter than what is left of the
lease. A worker that dies holding a lease simply lets it expire, and another takes the job over.
"""

from tenantry.worker.loop import Step, Worker, worker_from_settings

__all__ = ["Step", "Worker", "worker_from_settings"]
