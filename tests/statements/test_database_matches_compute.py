"""The statement the service computes from the database (PostgreSQL counts the days in SQL) is the one
`compute.build_statement`, the pure rules, gives for the same histories, on randomised histories:
several timezones, months with a daylight-saving change, changes on and next to day and month bounds,
changes at the same instant, price and timezone changes, clients deleted before, in and after the
month, and `now` before, in and after it."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.orm import Session

from tenantry.clock import FakeClock
from tenantry.db.models import AllocationChange, Client, Partner, StatusChange
from tenantry.db.session import Database
from tenantry.db.statements_models import DeletedClient, TermsChange
from tenantry.partners.service import PartnerPlan, create_partner
from tenantry.statements import repository
from tenantry.statements.compute import ClientHistory, Month, build_statement, month_frame
from tenantry.statements.service import statement_for
from tests.conftest import PG_URL

TIMEZONES = (
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "Australia/Lord_Howe",  # half-hour daylight saving
    "Pacific/Chatham",  # +12:45 / +13:45
    "Asia/Kathmandu",  # +05:45, no daylight saving
    "America/St_Johns",  # -03:30 / -02:30
)
# Moved from one of these to Pacific/Kiritimati (UTC+14), a partner's next month begins after its
# first local day has ended.
SWALLOWING = ("Pacific/Honolulu", "Pacific/Pago_Pago")
# Months with a daylight-saving change somewhere above, and a plain one.
MONTHS = ("2026-03", "2026-04", "2026-09", "2026-10", "2026-11", "2026-02")
STATUSES = ("setup", "trial", "active", "active", "disabled")
MICROSECOND = timedelta(microseconds=1)
CREATED = datetime(2025, 6, 1, tzinfo=UTC)


def instants(
    rng: random.Random, bounds: tuple[datetime, ...], taken: list[datetime], count: int
) -> list[datetime]:
    """`count` instants around the month: anywhere from 40 days before it to 10 days after, on a day
    bound or a microsecond either side of one, or on an instant already used (changes at once)."""
    start, end = bounds[0], bounds[-1]
    out = []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.45:
            span = (end - start) + timedelta(days=50)
            at = start - timedelta(days=40) + timedelta(seconds=rng.randrange(int(span.total_seconds())))
        elif kind < 0.75:
            at = rng.choice(bounds) + rng.choice((-MICROSECOND, timedelta(0), timedelta(0), MICROSECOND))
        elif kind < 0.85 and taken:
            at = rng.choice(taken)
        else:
            at = start + timedelta(seconds=rng.randrange(int((end - start).total_seconds())))
        out.append(at)
        taken.append(at)
    return out


def make_case(
    db: Session, seed: int, swallow: bool = False
) -> tuple[int, Month, list[ClientHistory], tuple[datetime, ...]]:
    """A partner with random histories, written to the database; the same histories as `compute`
    takes them (the clients known for the month, each history in the order of time and then of
    writing). With `swallow`, the partner moved from UTC-10 or UTC-11 to UTC+14 during the month
    before, so the month's first day has no moment in it."""
    rng = random.Random(seed)
    timezone = rng.choice(SWALLOWING if swallow else TIMEZONES)
    month = Month.parse(rng.choice(MONTHS))
    partner = create_partner(
        db,
        FakeClock(CREATED),
        name=f"Partner {seed}",
        admin_email=f"admin-{seed}@partner.test",
        plan=PartnerPlan(dashboard_price=Decimal("10.00"), user_price=Decimal("5.00")),
        timezone=timezone,
        admin_password="partner-password",
    ).partner_id
    first_terms = repository.terms_history(db, db.get_one(Partner, partner))
    bounds = month_frame(month, first_terms).bounds
    if swallow:
        _terms(
            db,
            partner,
            bounds[0] - timedelta(days=rng.randrange(2, 25)),
            "Pacific/Kiritimati",
            "10.00",
            "5.00",
        )
    elif rng.random() < 0.4:
        # The timezone changed during the month before: this month starts where that one ended.
        moved = rng.choice([t for t in TIMEZONES if t != timezone])
        _terms(db, partner, bounds[0] - timedelta(days=rng.randrange(2, 25)), moved, "10.00", "5.00")
    if rng.random() < 0.5:
        # The prices changed during the month (a day bound, or any instant in it).
        changed = rng.choice((rng.choice(bounds[1:-1]), bounds[0] + (bounds[-1] - bounds[0]) * rng.random()))
        tz = repository.terms_history(db, db.get_one(Partner, partner))[-1].timezone
        _terms(db, partner, changed, tz, rng.choice(("12.50", "10.00", "7.30")), rng.choice(("5.00", "6.10")))
    db.flush()
    terms = repository.terms_history(db, db.get_one(Partner, partner))
    bounds = month_frame(month, terms).bounds

    taken: list[datetime] = []
    statuses: list[dict[str, object]] = []
    allocations: list[dict[str, object]] = []
    clients, deleted = [], []
    for n in range(14):
        client_id = seed * 100 + n + 1
        name = f"Client {n} of {seed}"
        for at in instants(rng, bounds, taken, rng.randrange(0, 8)):
            statuses.append(_status(partner, client_id, at, rng.choice(STATUSES)))
        for at in instants(rng, bounds, taken, rng.randrange(0, 5)):
            allocations.append(_allocation(partner, client_id, at, rng.randrange(0, 6), rng.randrange(0, 6)))
        if rng.random() < 0.3:
            deleted_at = instants(rng, bounds, taken, 1)[0]
            deleted.append({"id": client_id, "name": name, "deleted_at": deleted_at})
        else:
            clients.append({"id": client_id, "name": name})
    # Written in a random order: at the same instant, the row written last wins.
    rng.shuffle(statuses)
    rng.shuffle(allocations)
    for row in clients:
        db.add(
            Client(
                id=row["id"],
                partner_id=partner,
                name=row["name"],
                status="setup",
                created_at=CREATED,
                status_changed_at=CREATED,
            )
        )
    for row in deleted:
        db.add(DeletedClient(partner_id=partner, actor="test", external_id=None, **row))
    if statuses:
        db.execute(insert(StatusChange), statuses)
    if allocations:
        db.execute(insert(AllocationChange), allocations)
    db.commit()

    def history(rows: list[dict[str, object]], client_id: int, value: str) -> list[tuple[datetime, object]]:
        mine = [(row["at"], n, row) for n, row in enumerate(rows) if row["client_id"] == client_id]
        return [
            (at, row[value] if value else {"dashboards": row["dashboards"], "users": row["users"]})
            for at, _, row in sorted(mine, key=lambda item: (item[0], item[1]))
        ]

    histories = [
        ClientHistory(
            row["id"],
            row["name"],
            history(statuses, row["id"], "to_status"),
            history(allocations, row["id"], ""),
        )
        for row in clients
    ] + [
        ClientHistory(
            row["id"],
            row["name"],
            history(statuses, row["id"], "to_status"),
            history(allocations, row["id"], ""),
            deleted_at=row["deleted_at"],
        )
        for row in deleted
        if row["deleted_at"] > bounds[0]  # a client deleted before the month began is not in it
    ]
    return partner, month, histories, bounds


def _terms(db: Session, partner: int, at: datetime, timezone: str, dashboard: str, user: str) -> None:
    db.add(
        TermsChange(
            partner_id=partner,
            at=at,
            timezone=timezone,
            currency="USD",
            dashboard_price=Decimal(dashboard),
            user_price=Decimal(user),
            actor="test",
        )
    )


def _status(partner: int, client_id: int, at: datetime, status: str) -> dict[str, object]:
    return {
        "partner_id": partner,
        "client_id": client_id,
        "from_status": None,
        "to_status": status,
        "at": at,
        "actor": "test",
        "reason": "",
    }


def _allocation(partner: int, client_id: int, at: datetime, dashboards: int, users: int) -> dict[str, object]:
    return {
        "partner_id": partner,
        "client_id": client_id,
        "at": at,
        "dashboards": dashboards,
        "users": users,
        "published_links": 0,
        "api_calls_per_day": 0,
    }


@pytest.mark.parametrize(
    ("seed", "swallow"), [(seed, False) for seed in range(1, 13)] + [(seed, True) for seed in range(13, 17)]
)
def test_the_database_statement_is_the_pure_computation_of_the_same_histories(
    db: Session, seed: int, swallow: bool
) -> None:
    partner, month, histories, bounds = make_case(db, seed, swallow)
    terms = repository.terms_history(db, db.get_one(Partner, partner))
    rng = random.Random(-seed)
    nows = [
        bounds[0] - timedelta(days=1),
        bounds[0],
        rng.choice(bounds[1:-1]),
        rng.choice(bounds[1:-1]) + MICROSECOND,
        bounds[0] + (bounds[2] - bounds[0]) * rng.random(),  # during the first day (or the first left)
        bounds[0] + (bounds[-1] - bounds[0]) * rng.random(),
        bounds[-1] - MICROSECOND,
        bounds[-1],
        bounds[-1] + timedelta(days=20),
    ]
    billed = 0
    for now in nows:
        expected = build_statement(month, terms, histories, now)
        got = statement_for(db, partner, str(month), now)
        db.rollback()
        assert got == expected, f"seed {seed}, now {now.isoformat()}"
        billed += len(got.lines)
    assert billed > 0  # the histories bill something, so the comparison is not between empty statements
    if swallow:
        assert month_frame(month, terms).swallowed == 1


def test_the_randomised_cases_cover_the_edges_they_are_meant_to(db: Session) -> None:
    """The cases above include daylight-saving months, deleted clients, and changes on day bounds."""
    timezones, deletions, on_bounds = set(), 0, 0
    for seed in range(1, 13):
        partner, month, histories, bounds = make_case(db, seed)
        terms = repository.terms_history(db, db.get_one(Partner, partner))
        frame = month_frame(month, terms)
        timezones.add(frame.timezone)
        lengths = {b - a for a, b in zip(frame.bounds, frame.bounds[1:], strict=False)}
        deletions += sum(h.deleted_at is not None and h.deleted_at < bounds[-1] for h in histories)
        on_bounds += sum(at in frame.bounds for h in histories for at, _ in h.statuses)
        if any(length != timedelta(days=1) for length in lengths):
            timezones.add("a day that is not 24 hours")
    assert len(timezones) >= 4 and "a day that is not 24 hours" in timezones
    assert deletions > 0 and on_bounds > 0


@pytest.mark.postgres
@pytest.mark.skipif(
    not PG_URL, reason="needs TENANTRY_TEST_DATABASE_URL (PostgreSQL): the lines counted in halves"
)
@pytest.mark.parametrize("seed", [3, 7, 11, 14])
def test_a_statement_counted_in_two_halves_at_once_is_the_pure_computation_too(
    database: Database, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """A partner with many clients has its lines counted in two halves, on two connections that
    read the snapshot its session exports: the statement is the same, line for line and in order."""
    halves = []
    in_halves = repository._lines_in_halves

    def counted_in_halves(*args: Any) -> list[Any]:
        halves.append(args)
        return in_halves(*args)

    monkeypatch.setattr(repository, "SPLIT_FROM_CLIENTS", 1)
    monkeypatch.setattr(repository, "_lines_in_halves", counted_in_halves)
    with database.session(write=True) as db:  # committed: the halves' connections see it
        partner, month, histories, bounds = make_case(db, seed, swallow=seed > 12)
    with database.session() as db:
        terms = repository.terms_history(db, db.get_one(Partner, partner))
        for now in (bounds[0] + (bounds[-1] - bounds[0]) / 3, bounds[-1] + timedelta(days=3)):
            expected = build_statement(month, terms, histories, now)
            got = statement_for(db, partner, str(month), now)
            db.rollback()
            assert got == expected, f"seed {seed}, now {now.isoformat()}"
            assert got.lines
    assert len(halves) == 2


@pytest.mark.postgres
@pytest.mark.skipif(
    not PG_URL, reason="needs TENANTRY_TEST_DATABASE_URL (PostgreSQL): the lines counted in halves"
)
def test_while_one_statement_counts_in_halves_another_of_the_process_counts_in_one_query(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most two connections beyond the pool: the second large statement at once counts alone."""
    halves = []
    monkeypatch.setattr(repository, "SPLIT_FROM_CLIENTS", 1)
    monkeypatch.setattr(repository, "_lines_in_halves", lambda *args: halves.append(args))
    with database.session(write=True) as db:
        partner, month, histories, bounds = make_case(db, 5)
    now = bounds[-1] + timedelta(days=1)
    with database.session() as db:
        terms = repository.terms_history(db, db.get_one(Partner, partner))
        assert repository._SPLITTING.acquire(blocking=False)  # a statement counting in halves
        try:
            got = statement_for(db, partner, str(month), now)
        finally:
            repository._SPLITTING.release()
    assert halves == []
    assert got == build_statement(month, terms, histories, now)
    assert got.lines
