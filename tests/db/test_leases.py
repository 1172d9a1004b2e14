"""The order in which jobs are claimed (`db.leases`): each partner's longest-waiting job first, then
each one's second, and so on, on SQLite and PostgreSQL, whether every due job is numbered or each
partner's first jobs are read from an index on (partner, due, id)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Table,
    create_engine,
    insert,
    text,
)
from sqlalchemy.orm import Session

from tenantry.db import leases
from tenantry.db.leases import CANDIDATES_PER_JOB, Shares
from tests.db.migrating import ENGINES, NOW, fresh_database

TABLES = MetaData()
PARTNERS = Table("partners", TABLES, Column("id", BigInteger, primary_key=True))
# The partners every queue below may hold jobs of.
PARTNER_IDS = range(1, 30)
JOBS = Table(
    "jobs",
    TABLES,
    Column("id", Integer, primary_key=True),
    Column("partner_id", BigInteger, nullable=False),
    Column("due", DateTime, nullable=False),
    Column("lease_expires_at", DateTime),
    Index("ix_jobs_partner_due", "partner_id", "due", "id"),
    Index("ix_jobs_due", "due", "id"),
)
Job = tuple[int, int, datetime, datetime | None]  # id, partner, due, lease


def created(db: Session) -> Session:
    TABLES.create_all(db.get_bind())
    db.execute(insert(PARTNERS), [{"id": partner} for partner in PARTNER_IDS])
    db.commit()
    return db


@pytest.fixture(params=ENGINES)
def queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    """A session on a database of its own holding `partners` and `jobs` tables, on each engine."""
    with fresh_database(request.param, tmp_path) as url:
        engine = create_engine(url)
        try:
            with Session(engine) as db:
                yield created(db)
        finally:
            engine.dispose()


@pytest.fixture(params=[False, True], ids=["every job numbered", "read per partner"])
def partner_index(request: pytest.FixtureRequest) -> bool:
    """Whether the claim may read each partner's first jobs from the index (PostgreSQL only)."""
    return bool(request.param)


def store(db: Session, jobs: list[Job]) -> None:
    db.execute(text("DELETE FROM jobs"))
    if jobs:
        rows = [dict(id=i, partner_id=p, due=due, lease_expires_at=lease) for i, p, due, lease in jobs]
        db.execute(insert(JOBS), rows)
    db.commit()


def claimed_order(
    db: Session, limit: int, shares: Shares, partner_index: bool = False
) -> list[tuple[int, int]]:
    return leases._in_turn(
        db,
        JOBS.c.id,
        JOBS.c.partner_id,
        JOBS.c.due,
        leases.lease_free(JOBS.c.lease_expires_at, NOW) & (JOBS.c.due <= NOW),  # type: ignore[arg-type]
        limit,
        shares,
        partner_index=partner_index,
        partner_ids=PARTNERS.c.id,
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
def test_a_claim_looks_at_jobs_in_turns_across_partners(queue, partner_index, jobs, limit, shares, order):
    store(queue, jobs)
    assert expected_order(jobs, limit, shares) == order
    assert claimed_order(queue, limit, shares, partner_index) == order


def test_any_queue_is_looked_at_in_the_order_the_rule_gives(queue, partner_index):
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
        assert claimed_order(queue, limit, shares, partner_index) == expected_order(jobs, limit, shares)


def explained(
    db: Session, limit: int, shares: Shares, partner_index: bool
) -> tuple[list[tuple[int, int]], list[str]]:
    """The claim's look at the queue, and PostgreSQL's plan of it with what each step read."""
    taken: list[str] = []
    original = db.execute
    engine = db.get_bind()

    def explaining(statement, *args, **kwargs):  # type: ignore[no-untyped-def]
        compiled = statement.compile(engine, compile_kwargs={"literal_binds": True})
        taken.extend(
            line for (line,) in original(text(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {compiled}"))
        )
        return original(statement, *args, **kwargs)

    db.execute = explaining  # type: ignore[method-assign]
    try:
        order = claimed_order(db, limit, shares, partner_index)
    finally:
        del db.execute
    return order, taken


postgresql_only = pytest.mark.skipif(
    "postgresql" not in ENGINES, reason="needs TENANTRY_TEST_DATABASE_URL (PostgreSQL)"
)


@pytest.fixture
def long_queue(tmp_path: Path) -> Iterator[Session]:
    """PostgreSQL holding 2,000 due jobs of each of three partners, the first ten of each leased."""
    with fresh_database("postgresql", tmp_path) as url:
        engine = create_engine(url)
        try:
            with Session(engine) as db:
                held = NOW + timedelta(minutes=5)
                store(
                    created(db),
                    [
                        (n * 3 + p, p, minutes(4000 - n), held if n < 10 else None)
                        for n in range(2000)
                        for p in (1, 2, 3)
                    ],
                )
                db.execute(text("ANALYZE jobs"))
                yield db
        finally:
            engine.dispose()


@postgresql_only
def test_postgresql_stops_numbering_a_partners_jobs_past_the_last_turn_it_can_use(long_queue):
    order, plan = explained(long_queue, 2, Shares(10), partner_index=False)
    assert len(order) == 2 * CANDIDATES_PER_JOB
    assert any("Run Condition: (row_number() OVER (?) <= 8)" in line for line in plan), plan


@postgresql_only
def test_postgresql_reads_each_partners_first_jobs_from_the_index_and_no_more(long_queue):
    order, plan = explained(long_queue, 2, Shares(10), partner_index=True)
    assert len(order) == 2 * CANDIDATES_PER_JOB
    shown = "\n".join(plan)
    scans = [line.strip() for line in plan if " on jobs" in line]
    # One index range per partner (29 of them); and a look for any free due job first, which
    # stops at the first it finds.
    assert "->  Index Scan using ix_jobs_partner_due on jobs (actual rows=1 loops=29)" in scans, shown
    assert len(scans) == 2 and all(
        scan.endswith("(actual rows=1 loops=1)") for scan in scans if "loops=29" not in scan
    ), shown
    # The eight jobs a claim of two can look at, from each of the three partners with jobs: 24 of
    # the 6,000, where numbering every due job reads all 5,970 free ones.
    assert any(line.strip() == "->  Nested Loop (actual rows=24 loops=1)" for line in plan), shown


@postgresql_only
def test_postgresql_looks_at_no_partner_when_no_job_is_due(long_queue):
    long_queue.execute(text("UPDATE jobs SET due = :later"), {"later": NOW + timedelta(hours=1)})
    long_queue.commit()
    order, plan = explained(long_queue, 2, Shares(10), partner_index=True)
    assert order == []
    assert any(line.strip() == "->  Nested Loop (never executed)" for line in plan), "\n".join(plan)
