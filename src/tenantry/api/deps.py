"""Request-scoped dependencies: the database session (commit at the boundary), clock, caller."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
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


def services(request: Request) -> Services:
    return request.app.state.services


def db_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the endpoint returns, rolled back if it raises.

    Write methods open an immediate transaction on SQLite (pool checks serialise there).
    """
    session = services(request).database.session(write=request.method not in READ_METHODS)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
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


def principal(
    request: Request,
    db: DbSession,
    now_clock: ClockDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthenticated("Send an API key as `Authorization: Bearer <key>`.")
    caller = auth_repo.principal_for_token(db, credentials.credentials, now_clock.now())
    request.state.principal = caller
    return caller


Caller = Annotated[Principal, Depends(principal)]


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
