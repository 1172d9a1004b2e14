"""Request-scoped dependencies: the database session (commit at the boundary), clock, caller."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Annotated

import anyio
from fastapi import Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from tenantry.auth import repository as auth_repo
from tenantry.auth.principal import Principal
from tenantry.clock import Clock
from tenantry.db.session import Database
from tenantry.errors import Forbidden, Unauthenticated
from tenantry.mail import Mailer
from tenantry.settings import Settings

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class Services:
    """What the app was built with; chosen in one place (app.create_app)."""

    settings: Settings
    database: Database
    clock: Clock
    mailer: Mailer
    _sqlite_writer: asyncio.Lock = field(default_factory=asyncio.Lock)
    _partner_writers: weakref.WeakValueDictionary[int, asyncio.Lock] = field(
        default_factory=weakref.WeakValueDictionary
    )
    _commit_limiter: anyio.CapacityLimiter | None = None

    def write_gate(self) -> AbstractAsyncContextManager[object]:
        """SQLite has one writer at a time: write requests of this process queue here, on the event
        loop, instead of parking worker threads on the database lock. A thread parked there could be
        the one the lock holder needs to finish, starving every request. PostgreSQL needs no gate.
        """
        return self._sqlite_writer if self.database.is_sqlite else nullcontext()

    def partner_gate(self, partner_id: int) -> asyncio.Lock:
        """PostgreSQL: a write request waits here, on the event loop, for the previous write of the
        same partner in this process to finish. Otherwise many worker threads would sit on the
        partner row lock while the holder waits for a free thread to finish its response."""
        gate = self._partner_writers.get(partner_id)
        if gate is None:
            gate = self._partner_writers[partner_id] = asyncio.Lock()
        return gate

    @property
    def commit_limiter(self) -> anyio.CapacityLimiter:
        """Commits and rollbacks get threads of their own, so a transaction holding a lock can always
        finish even when every request thread is waiting for that lock."""
        if self._commit_limiter is None:
            self._commit_limiter = anyio.CapacityLimiter(32)
        return self._commit_limiter


def services(request: Request) -> Services:
    return request.app.state.services


async def db_session(request: Request) -> AsyncIterator[Session]:
    """One transaction per request: committed when the endpoint returns, rolled back if it raises.

    Write methods open an immediate transaction on SQLite (pool checks serialise there).
    """
    state = services(request)
    write = request.method not in READ_METHODS
    async with state.write_gate() if write else nullcontext():
        session = state.database.session(write=write)
        try:
            yield session
        except BaseException:
            await anyio.to_thread.run_sync(session.close, limiter=state.commit_limiter)  # rolls back
            raise
        if not write and state.database.is_sqlite:
            # A read-only request has nothing to commit, and ending an SQLite read transaction is a
            # local call of microseconds: not worth a trip to a worker thread.
            session.close()
        else:
            await anyio.to_thread.run_sync(_finish, session, write, limiter=state.commit_limiter)


def _finish(session: Session, commit: bool) -> None:
    try:
        if commit:
            session.commit()
    finally:
        session.close()


DbSession = Annotated[Session, Depends(db_session, scope="function")]


def clock(request: Request) -> Clock:
    return services(request).clock


ClockDep = Annotated[Clock, Depends(clock)]


def mailer(request: Request) -> Mailer:
    return services(request).mailer


MailerDep = Annotated[Mailer, Depends(mailer)]

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer tnt_...`")


async def principal(
    request: Request,
    db: DbSession,
    now_clock: ClockDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AsyncIterator[Principal]:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthenticated("Send an API key as `Authorization: Bearer <key>`.")
    caller = await run_in_threadpool(
        auth_repo.principal_for_token, db, credentials.credentials, now_clock.now()
    )
    request.state.principal = caller
    state = services(request)
    if request.method in READ_METHODS or state.database.is_sqlite:  # SQLite: db_session's gate
        yield caller
        return
    async with state.partner_gate(caller.partner_id):
        yield caller


Caller = Annotated[Principal, Depends(principal, scope="function")]


def partner_principal(caller: Caller) -> Principal:
    if not caller.is_partner:
        raise Forbidden("This needs a partner key; client keys reach only their own client's resources.")
    return caller


PartnerCaller = Annotated[Principal, Depends(partner_principal)]


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


def page(
    limit: Annotated[int, Query(ge=1, le=200, description="Items per page (1-200).")] = 50,
    offset: Annotated[int, Query(ge=0, description="Items to skip.")] = 0,
) -> Page:
    return Page(limit, offset)


PageDep = Annotated[Page, Depends(page)]
