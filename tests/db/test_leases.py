"""The order in which jobs are claimed (`db.leases`): each partner's longest-waiting job first, then
each one's second, and so on, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, Table, create_engine, insert, text
from sqlalchemy.orm import Session

from tenantry.db import leases
from tenantry.db.leases import CANDIDATES_PER_JOB, Shares
from tests.db.migrating import ENGINES, NOW, fresh_database

JOBS = Table(
    "jobs",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("partner_id", BigInteger, nullable=False),
    Column("due", DateTime, nullable=False),
    Column("lease_expires_at", DateTime),
)
Job = tuple[int, int, datetime, datetime | None]  # id, partner, due, lease


@pytest.fixture(params=ENGINES)
def queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    """A session on a database of its own holding a `jobs` table, on each engine."""
    with fresh_database(request.param, tmp_path) as url:
        engine = create_engine(url)
        JOBS.metadata.create_all(engine)
        try:
            with Session(engine) as db:
                yield db
        finally:
            engine.dispose()


def store(db: Session, jobs: list[Job]) -> None:
    db.execute(text("DELETE FROM jobs"))
    if jobs:
        rows = [dict(id=i, partner_id=p, due=due, lease_expires_at=lease) for i, p, due, lease in jobs]
        db.execute(insert(JOBS), rows)
    db.commit()


def claimed_order(db: Session, limit: int, shares: Shares) -> list[tuple[int, int]]:
    return leases._in_turn(
        db,
        JOBS.c.id,
        JOBS.c.partner_id,
        JOBS.c.due,
        leases.lease_free(JOBS.c.lease_expires_at, NOW) & (JOBS.c.due <= NOW),  # type: ignore[arg-type]
        limit,
        shares,
    )


def expected_order(jobs: list[Job], limit: int, shares: Shares) -> list[tuple[int, int]]:
    """The rule, spelt out: due and free jobs, of partners with a share left, numbered per partner
    by (due, id), then taken by (turn, due, id), `limit * CANDIDATES_PER_JOB` at most."""
    full = {partner for partner, left in shares.left.items() if left <= 0}
    waiting = sorted(
        (due, i, p)
        for i, p, due, lease in jobs
        if due <= NOW and (lease is None or lease <= NOW) and p not in full
    )
    turns: Counter[int] = Counter()
    numbered = []
    for due, i, p in waiting:
        turns[p] += 1
        numbered.append((turns[p], due, i, p))
    return [(i, p) for _, _, i, p in sorted(numbered)][: limit * CANDIDATES_PER_JOB]


def minutes(n: float) -> datetime:
    return NOW - timedelta(minutes=n)


# (what the queue holds, how many jobs are wanted, the shares, the order the claim looks at them in)
CASES = {
    "each partner's first job, then each one's second": (
        [(1, 7, minutes(9), None), (2, 7, minutes(8), None), (3, 8, minutes(1), None)],
        1,
        Shares(3),
        [(1, 7), (3, 8), (2, 7)],
    ),
    "a partner with a long backlog gives no more than the candidates wanted": (
        [(i, 7, minutes(100 - i), None) for i in range(1, 40)] + [(40, 8, minutes(0.5), None)],
        2,
        Shares(10),
        [(1, 7), (40, 8), (2, 7), (3, 7), (4, 7), (5, 7), (6, 7), (7, 7)],
    ),
    "jobs due at the same moment go by id": (
        [(5, 7, minutes(3), None), (4, 7, minutes(3), None), (6, 8, minutes(3), None)],
        1,
        Shares(3),
        [(4, 7), (6, 8), (5, 7)],
    ),
    "a leased job, a job not yet due and a partner with no share left are passed over": (
        [
            (1, 7, minutes(9), NOW + timedelta(minutes=1)),
            (2, 7, minutes(8), minutes(1)),  # its lease ran out: free again
            (3, 7, NOW + timedelta(minutes=1), None),
            (4, 9, minutes(20), None),
        ],
        1,
        Shares(3, {9: 0}),
        [(2, 7)],
    ),
    "an empty queue": ([], 3, Shares(3), []),
}


@pytest.mark.parametrize(("jobs", "limit", "shares", "order"), CASES.values(), ids=CASES.keys())
def test_a_claim_looks_at_jobs_in_turns_across_partners(queue, jobs, limit, shares, order):
    store(queue, jobs)
    assert expected_order(jobs, limit, shares) == order
    assert claimed_order(queue, limit, shares) == order


def test_any_queue_is_looked_at_in_the_order_the_rule_gives(queue):
    chance = random.Random(12)
    for _ in range(25):
        partners = chance.sample(range(1, 30), chance.randint(1, 6))
        jobs: list[Job] = []
        for i in range(1, chance.randint(1, 120)):
            lease = chance.choice([None, None, None, minutes(1), NOW + timedelta(minutes=5)])
            jobs.append((i, chance.choice(partners), minutes(chance.randint(-5, 60)), lease))
        limit = chance.randint(1, 8)
        shares = Shares(chance.randint(1, 4), {chance.choice(partners): chance.randint(0, 2)})
        store(queue, jobs)
        assert claimed_order(queue, limit, shares) == expected_order(jobs, limit, shares)


@pytest.mark.skipif("postgresql" not in ENGINES, reason="needs TENANTRY_TEST_DATABASE_URL (PostgreSQL)")
def test_postgresql_stops_numbering_a_partners_jobs_past_the_last_turn_it_can_use(tmp_path):
    with fresh_database("postgresql", tmp_path) as url:
        engine = create_engine(url)
        JOBS.metadata.create_all(engine)
        try:
            with Session(engine) as db:
                store(db, [(i, 7, minutes(i), None) for i in range(1, 500)])
                taken: list[str] = []
                original = db.execute

                def explained(statement, *args, **kwargs):  # type: ignore[no-untyped-def]
                    compiled = statement.compile(engine, compile_kwargs={"literal_binds": True})
                    taken.extend(line for (line,) in original(text(f"EXPLAIN {compiled}")))
                    return original(statement, *args, **kwargs)

                db.execute = explained  # type: ignore[method-assign]
                assert len(claimed_order(db, 2, Shares(10))) == 2 * CANDIDATES_PER_JOB
        finally:
            engine.dispose()
    assert any("Run Condition: (row_number() OVER (?) <= 8)" in line for line in taken), taken
