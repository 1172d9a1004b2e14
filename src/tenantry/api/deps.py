"""Request-scoped dependencies: the database session (commit at the boundary), clock, caller."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from tenantry.auth import repository as auth_repo
from tenantry.auth import sessions
from tenantry.auth.principal import Principal
from tenantry.clock import Clock
from tenantry.db.session import Database
from tenantry.errors import Forbidden, NotFound, Unauthenticated
from tenantry.mail import Mailer
from tenantry.meter.service import Meter
from tenantry.settings import Settings

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class Services:
    """What the app was built with; chosen in one place (app.create_app)."""

    settings: Settings
    database: Database
    clock: Clock
    mailer: Mailer
    meter: Meter


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
    now_clock: ClockDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, from an API key (metered) or else the session cookie (CSRF-checked).

    The lookup uses its own short read session and the meter its own transaction, both before the
    request's transaction begins, so a counted call is never held up by (or rolled back with) it.
    """
    svc = services(request)
    now = now_clock.now()
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        caller = _session_principal(request, svc, now)
    else:
        with svc.database.session() as lookup:
            key_caller = auth_repo.caller_for_token(lookup, credentials.credentials, now)
        caller = key_caller.principal
        headers: dict[str, str] = {}
        request.state.rate_limit_headers = headers
        svc.meter.charge(key_caller.quota, now, headers)
    request.state.principal = caller
    return caller


def _session_principal(request: Request, svc: Services, now: datetime) -> Principal:
    token = sessions.unsign(request.cookies.get(sessions.SESSION_COOKIE), svc.settings.resolved_secret_key)
    if token is None:
        raise Unauthenticated("Send an API key as `Authorization: Bearer <key>`.")
    with svc.database.session() as lookup:
        signed_in = sessions.resolve(lookup, token, now)
        if signed_in is None:
            raise Unauthenticated("The session has ended; sign in again or send an API key.")
        sessions.check_still_allowed(signed_in, now)
        if request.method not in READ_METHODS:
            if not sessions.csrf_matches(signed_in.csrf_token, request.headers.get("x-csrf-token")):
                raise Forbidden("Send the session's CSRF token in the `X-CSRF-Token` header.")
            if signed_in.session.acting_mode == "view_only":
                raise Forbidden("You entered a client in view-only mode: nothing can be changed.")
        return signed_in.principal


Caller = Annotated[Principal, Depends(principal)]


def partner_principal(request: Request, caller: Caller) -> Principal:
    if not caller.is_partner:
        # A client key never learns whether another client exists: 404 before 403.
        named = request.path_params.get("client_id")
        if named is not None and str(named) != str(caller.client_id):
            raise NotFound(f"No client {named}.")
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


def settings(request: Request) -> Settings:
    return services(request).settings


SettingsDep = Annotated[Settings, Depends(settings)]


def meter(request: Request) -> Meter:
    return services(request).meter


MeterDep = Annotated[Meter, Depends(meter)]
