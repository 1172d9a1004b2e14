"""Password guesses counted atomically: the sign-in form and published-link passwords (SPEC §12).

An attempt is *reserved* before its password is checked. In one short write transaction the
scopes it counts against are locked (PostgreSQL: a transaction-level advisory lock per scope;
SQLite: the write lock that its immediate transaction takes at BEGIN), their lockouts and recent
attempts are read and, when none is at its limit, one attempt row per scope is written and
committed. The password is checked after that, outside any lock or transaction (argon2 is slow on
purpose). A right password then removes its rows (`release`); a wrong one leaves them as failures
(`fail`), and a scope whose failures reached its limit within the window is locked out for
`LOCKOUT`. So however many requests arrive at once, in however many processes, no more than
`limit` passwords are checked for a scope within a window.

A success removes only its own attempt. Earlier failures age out, unless the caller forgives
a scope on purpose (`forgive`; see auth.signin for when that is safe).
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar, cast

from anyio.to_thread import run_sync
from sqlalchemy import Table, delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tenantry.clock import Clock
from tenantry.db.access_models import PasswordAttempt, PasswordLockout
from tenantry.db.session import IMMEDIATE, Database

WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)
# The first key of PostgreSQL's two-key advisory locks: this module's own space of locks.
_LOCK_SPACE = 0x746E74  # "tnt"

Checked = TypeVar("Checked")
Outcome = TypeVar("Outcome")


@dataclass(frozen=True)
class Limit:
    """At most `limit` failures for `key` (an e-mail, an address, a link...) of this kind."""

    kind: str
    key: str
    limit: int

    @property
    def scope(self) -> str:
        # Hashed: the table holds no e-mail address or client address in the clear, and whatever a
        # form sent (NUL bytes, lone surrogates) becomes a plain string any database accepts.
        material = f"{self.kind}\0{self.key}".encode("utf-8", "surrogatepass")
        return f"{self.kind}:{hashlib.sha256(material).hexdigest()}"


@dataclass(frozen=True)
class Reservation:
    """An attempt that counts as a failure of each of its scopes until it is released."""

    ids: tuple[str, ...]
    limits: tuple[Limit, ...]


@dataclass(frozen=True)
class Refused:
    wait: timedelta  # until the next attempt can be counted

    @property
    def minutes(self) -> str:
        """The wait in words, rounded up: "1 minute", "15 minutes"."""
        count = max(1, math.ceil(self.wait.total_seconds() / 60))
        return f"{count} minute" if count == 1 else f"{count} minutes"

    @property
    def retry_after(self) -> str:
        """The wait for a `Retry-After` header: whole seconds, at least one."""
        return str(max(1, math.ceil(self.wait.total_seconds())))


async def attempt(
    database: Database,
    clock: Clock,
    limits: Sequence[Limit],
    check: Callable[[], Checked],
    conclude: Callable[[Session, Reservation, Checked, datetime], Outcome],
) -> Outcome | Refused:
    """One throttled attempt: reserve it, run `check` (the password), then `conclude` with its result.

    `check` runs on a worker thread outside any transaction; `conclude` runs in a second short
    write transaction and must `release` or `fail` the reservation. Each transaction is one
    worker-thread call that begins, writes and commits, so it never waits for another thread. A
    request that dies in between leaves its attempt counted as a failure.
    """
    reserved = await run_sync(_committed, database, reserve, limits, clock.now())
    if isinstance(reserved, Refused):
        return reserved
    result = await run_sync(check)
    return await run_sync(_committed, database, conclude, reserved, result, clock.now())


def _committed(database: Database, step: Callable[..., Outcome], *args: object) -> Outcome:
    with database.session(write=True) as db:
        outcome = step(db, *args)
        db.commit()
    return outcome


def reserve(db: Session, limits: Sequence[Limit], now: datetime) -> Reservation | Refused:
    """Count one attempt against every scope, or refuse it if any scope is at its limit.

    Needs a write session, and its transaction must be committed at once: the scopes stay locked
    until then.
    """
    _lock(db, [limit.scope for limit in limits])
    since = now - WINDOW
    waits = []
    for limit in limits:
        locked_until = db.scalar(
            select(PasswordLockout.locked_until).where(
                PasswordLockout.scope == limit.scope, PasswordLockout.locked_until > now
            )
        )
        if locked_until is not None:
            waits.append(locked_until - now)
            continue
        # The oldest of the last `limit` attempts in the window: when there are that many, no more
        # is counted until it leaves the window.
        oldest = db.scalar(
            select(PasswordAttempt.at)
            .where(PasswordAttempt.scope == limit.scope, PasswordAttempt.at > since)
            .order_by(PasswordAttempt.at.desc())
            .offset(limit.limit - 1)
            .limit(1)
        )
        if oldest is not None:
            waits.append(oldest + WINDOW - now)
    if waits:
        return Refused(max(waits))
    rows = [PasswordAttempt(id=secrets.token_hex(16), scope=limit.scope, at=now) for limit in limits]
    db.add_all(rows)
    db.flush()
    return Reservation(tuple(row.id for row in rows), tuple(limits))


def release(db: Session, reservation: Reservation) -> None:
    """The password was right: the attempt was no failure."""
    db.execute(delete(PasswordAttempt).where(PasswordAttempt.id.in_(reservation.ids)))


def forgive(db: Session, limit: Limit) -> None:
    """Forget the failures counted against one scope (its lockout, if any, stays)."""
    db.execute(delete(PasswordAttempt).where(PasswordAttempt.scope == limit.scope))


def fail(db: Session, reservation: Reservation, now: datetime) -> None:
    """The password was wrong: the attempt stays counted, and a scope at its limit is locked out."""
    since = now - WINDOW
    for limit in reservation.limits:
        failures = db.scalar(
            select(func.count())
            .select_from(PasswordAttempt)
            .where(PasswordAttempt.scope == limit.scope, PasswordAttempt.at > since)
        )
        if (failures or 0) >= limit.limit:
            _lock_out(db, limit.scope, now + LOCKOUT)
    db.execute(delete(PasswordAttempt).where(PasswordAttempt.at <= since))
    db.execute(delete(PasswordLockout).where(PasswordLockout.locked_until <= now))


def _lock(db: Session, scopes: Sequence[str]) -> None:
    if db.get_bind().dialect.name == "sqlite":
        # The immediate transaction holds SQLite's one write lock from BEGIN to COMMIT.
        if not db.connection().get_execution_options().get(IMMEDIATE):
            raise RuntimeError("reserving an attempt needs a write session")
        return
    # Always in the same order, so two attempts sharing scopes never wait for each other in a cycle.
    for key in sorted({_lock_key(scope) for scope in scopes}):
        db.execute(
            text("SELECT pg_advisory_xact_lock(CAST(:space AS integer), CAST(:key AS integer))"),
            {"space": _LOCK_SPACE, "key": key},
        )


def _lock_key(scope: str) -> int:
    """A signed 32-bit key from the scope's hash (two scopes sharing one only wait for each other)."""
    value = int(scope.rpartition(":")[2][:8], 16)
    return value - (1 << 32) if value >= 1 << 31 else value


def _lock_out(db: Session, scope: str, until: datetime) -> None:
    table = cast(Table, PasswordLockout.__table__)
    insert = sqlite.insert if db.get_bind().dialect.name == "sqlite" else postgresql.insert
    statement = insert(table).values(scope=scope, locked_until=until)
    db.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.scope], set_={"locked_until": statement.excluded.locked_until}
        )
    )
