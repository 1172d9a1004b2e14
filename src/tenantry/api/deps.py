"""Request-scoped dependencies: the database session (commit at the boundary), clock, caller."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar

import anyio
from fastapi import Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenantry.api.idempotency_marks import CLAIMED, mark_carried_out
from tenantry.auth import repository as auth_repo
from tenantry.auth import sessions
from tenantry.auth.keycache import KeyCache
from tenantry.auth.principal import Principal
from tenantry.auth.repository import KeyCompanion
from tenantry.clock import Clock
from tenantry.db.reads import DatabaseReads
from tenantry.db.session import Database
from tenantry.domains import host_partner_id
from tenantry.errors import Forbidden, NotFound, RateLimited, Unauthenticated
from tenantry.exports.service import Renderer, new_renderer
from tenantry.fields import INT64_MAX, INT64_MIN
from tenantry.mail import Mailer
from tenantry.meter.service import Meter, Quota
from tenantry.meter.sessions import session_quota
from tenantry.outbound import Guard
from tenantry.settings import Settings
from tenantry.vault import Vault, load_vault

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# An id in a path: any 64-bit integer (a larger one would overflow the database driver).
PathId = Annotated[int, Path(ge=INT64_MIN, le=INT64_MAX)]

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class Services:
    """What the app was built with; chosen in one place (app.create_app)."""

    settings: Settings
    database: Database
    clock: Clock
    mailer: Mailer
    meter: Meter
    # Every outgoing request a user's URL causes goes through it (tenantry.outbound).
    guard: Guard = field(default_factory=Guard)
    # This app's klip drawings and Typst compiler (none shared with another app in the process).
    renderer: Renderer = field(default_factory=new_renderer)
    # The hot reads, on the event loop (tenantry.db.reads); made from `database` when not given.
    reads: DatabaseReads = None  # type: ignore[assignment]
    # Seals and opens data sources' secrets (tenantry.vault); made from `settings` when not given.
    vault: Vault = None  # type: ignore[assignment]
    # The key lookups' cache (PostgreSQL and Redis only: `auth.keycache`).
    key_cache: KeyCache | None = None

    def __post_init__(self) -> None:
        if self.vault is None:
            self.vault = load_vault(self.settings)
        if self.reads is None:
            self.reads = DatabaseReads(
                self.database,
                max_size=max(2, self.database.capacity // 2),
                timeout=self.settings.db_pool_timeout_seconds,
            )


def services(request: Request) -> Services:
    return request.app.state.services


class Work:
    """A request's unit of work: one trip to a worker thread that opens a session, runs the use case,
    commits and closes, so a transaction never outlives the call and never waits for another thread.

    `await work(fn, *args)` runs `fn(session, *args)` there and hands back its result; an exception
    rolls everything back and reaches the error handlers as it is. Write requests (anything but GET,
    HEAD and OPTIONS) open a write transaction: SQLite's immediate one (pool checks serialise
    there); on PostgreSQL the use case locks what it must (the partner row of a pool check). Results
    cross back to the event loop, where the answer is built: ORM rows keep their loaded columns
    (sessions do not expire them on commit), and no relationship loads lazily.
    """

    __slots__ = ("database", "on_commit", "write")

    def __init__(
        self, database: Database, write: bool, on_commit: Callable[[Session], None] | None = None
    ) -> None:
        # `on_commit` writes in the same transaction, just before it commits: the mark of an
        # Idempotency-Key's record that its request's work is done (`api.idempotency`).
        self.database, self.write, self.on_commit = database, write, on_commit

    async def __call__(
        self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        return await anyio.to_thread.run_sync(partial(self._run, fn, *args, **kwargs))

    @property
    def reading(self) -> Work:
        """The same in a read-only transaction: for a write request's slow part (drawing, say)
        that writes nothing, so no write lock is held while it runs."""
        return Work(self.database, False)

    def _run(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        with self.database.session(write=self.write) as db:
            result = fn(db, *args, **kwargs)
            if self.on_commit is not None:
                self.on_commit(db)
            db.commit()
            return result


async def work(request: Request) -> Work:
    svc = services(request)
    if request.method in READ_METHODS:
        return Work(svc.database, False)
    claimed = request.scope.get("state", {}).get(CLAIMED)
    if claimed is None:
        return Work(svc.database, True)
    return Work(svc.database, True, partial(mark_carried_out, claimed=claimed, now=svc.clock.now()))


WorkDep = Annotated[Work, Depends(work)]


# The accessors below are `async def` on purpose: FastAPI runs a plain `def` dependency on a worker
# thread, and a thread hop costs far more than reading an attribute.
async def clock(request: Request) -> Clock:
    return services(request).clock


ClockDep = Annotated[Clock, Depends(clock)]


async def mailer(request: Request) -> Mailer:
    return services(request).mailer


MailerDep = Annotated[Mailer, Depends(mailer)]


async def guard(request: Request) -> Guard:
    return services(request).guard


GuardDep = Annotated[Guard, Depends(guard)]


async def vault(request: Request) -> Vault:
    return services(request).vault


VaultDep = Annotated[Vault, Depends(vault)]


API_PREFIX = "/api/1/"
# The documentation is public; every other path under /api/1 needs a caller.
PUBLIC_API_PATHS = frozenset(
    {"/api/1/openapi.json", "/api/1/docs", "/api/1/docs/oauth2-redirect", "/api/1/auth/password-reset"}
)


# A route's read made part of the API key's lookup (`auth.repository.KeyCompanion`), with the bound
# parameters its joins take from this request's path.
AskedCompanion = tuple[KeyCompanion, Mapping[str, Any]]


async def authenticate(svc: Services, scope: Scope, companion: AskedCompanion | None = None) -> Principal:
    """The caller of an API request, from an API key (metered) or else the session cookie
    (CSRF-checked). Runs before anything reads the body or writes a row (`ApiAuthMiddleware`).

    The key is read on the event loop (`db.reads`, on PostgreSQL in one statement with the keys of
    the requests that arrived with it), and the meter counts there too (Redis) or on a
    thread of its own (the database counter writes), before the request's own work begins, so a
    counted call is never held up by (or rolled back with) it. With a `companion`, the route's own
    read runs in the key's statement, and its row waits in the request's state (`read_with_key`).
    """
    now = svc.clock.now()
    scheme, _, token = _authorization(scope).partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        caller, quota = await run_in_threadpool(
            _session_principal, HTTPConnection(scope), scope["method"], svc, now
        )
    else:
        reads = svc.reads.together()  # with the lookups of the requests that arrived together
        cache = svc.key_cache
        if companion is None:
            key_caller = await auth_repo.caller_for_token_async(reads, token.strip(), now, cache=cache)
        else:
            key_caller = await auth_repo.caller_for_token_async(
                reads, token.strip(), now, *companion, cache=cache
            )
            scope.setdefault("state", {})[_COMPANION_STATE] = (*companion, key_caller.companion)
        caller, quota = key_caller.principal, key_caller.quota
    # A client user's calls are metered whatever the credential (`meter.sessions`).
    if quota is not None and quota.metered:
        headers: dict[str, str] = {}
        scope.setdefault("state", {})["rate_limit_headers"] = headers
        try:
            await svc.meter.charge(quota, now, headers)
        except RateLimited:  # a burst refusal carries the day's headers too
            # The refusal stands as it is, even when the day's count cannot be read for them.
            with contextlib.suppress(Exception):
                async with svc.reads.connection() as reads:
                    await svc.meter.headers_for(quota, now, headers, reads)
            raise
    return caller


_COMPANION_STATE = "key_companion"


def _authorization(scope: Scope) -> str:
    """The request's first `Authorization` header, as `HTTPConnection(scope).headers` reads it, or
    "" (its names are lower case: ASGI's)."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            return value.decode("latin-1")
    return ""


def read_with_key(request: Request, companion: KeyCompanion, **parameters: Any) -> Any | None:
    """The row `companion` read beside the caller's API key for this request, with these bound
    parameters; None when it was not read (a session's request, a path it could not take), and
    the route reads as it would without it."""
    found = request.scope["state"].get(_COMPANION_STATE)
    if found is None or found[0] is not companion or found[1] != parameters:
        return None
    return found[2]


def with_headers(raw: Any, extra: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    """An answer's raw headers with `extra`'s set (each replacing any of the same name), in one
    pass: this runs on every metered answer."""
    added = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in extra.items()]
    names = {name for name, _ in added}
    return [*(header for header in raw if header[0].lower() not in names), *added]


class KeyCompanions:
    """The reads that run in the API key's own statement (`auth.repository.KeyCompanion`), named by
    method and path (a route's, with its parameters)."""

    def __init__(self, companions: Mapping[tuple[str, str], KeyCompanion] | None = None) -> None:
        self._companions = [
            (method, compile_path(path)[0], companion)
            for (method, path), companion in (companions or {}).items()
        ]

    def asked(self, scope: Scope) -> AskedCompanion | None:
        """The companion of this request's route, with the parameters its path gives, or None."""
        for method, pattern, companion in self._companions:
            if method == scope["method"] and (found := pattern.match(scope["path"])) is not None:
                parameters = companion.parameters(found.groupdict())
                return None if parameters is None else (companion, parameters)
        return None


def needs_caller(scope: Scope) -> bool:
    """Whether this is an `/api/1` request that needs a caller (all but the documentation's)."""
    path: str = scope.get("path", "")
    return scope["type"] == "http" and path.startswith(API_PREFIX) and path not in PUBLIC_API_PATHS


async def authenticate_api(scope: Scope, companions: KeyCompanions) -> dict[str, Any]:
    """Authenticate an `/api/1` request before the body is read or a row written: its caller (and,
    for a metered call, its rate-limit headers) go in the request's state, which is returned."""
    state = scope.setdefault("state", {})
    state["principal"] = await authenticate(scope["app"].state.services, scope, companions.asked(scope))
    return state


def rate_limited(state: dict[str, Any], send: Send) -> Send:
    """`send`, putting the request's rate-limit headers (if it was metered) on its answer."""

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            extra = state.get("rate_limit_headers")
            if extra:
                message["headers"] = with_headers(message.get("headers", ()), extra)
        await send(message)

    return send_with_headers


class ApiAuthMiddleware:
    """Authenticate every `/api/1` request before the body is read or a row written, so an
    anonymous request costs a header check and stores nothing; put the rate-limit headers of a
    metered call on its answer, errors included (`authenticate_api`)."""

    def __init__(self, app: ASGIApp, companions: KeyCompanions | None = None) -> None:
        self.app = app
        self.companions = companions or KeyCompanions()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not needs_caller(scope):
            await self.app(scope, receive, send)
            return
        state = await authenticate_api(scope, self.companions)
        await self.app(scope, receive, rate_limited(state, send))


async def principal(request: Request) -> Principal:
    """The caller `ApiAuthMiddleware` found (or, for a route outside /api/1, found now)."""
    caller: Principal | None = getattr(request.state, "principal", None)
    if caller is None:
        caller = request.state.principal = await authenticate(services(request), request.scope)
    return caller


def _session_principal(
    connection: HTTPConnection, method: str, svc: Services, now: datetime
) -> tuple[Principal, Quota | None]:
    token = sessions.unsign(connection.cookies.get(sessions.SESSION_COOKIE), svc.settings.resolved_secret_key)
    if token is None:
        raise Unauthenticated("Send an API key as `Authorization: Bearer <key>`.")
    with svc.database.session() as lookup:
        signed_in = sessions.resolve(lookup, token, now, host_partner_id(connection))
        if signed_in is None:
            raise Unauthenticated("The session has ended; sign in again or send an API key.")
        sessions.check_still_allowed(signed_in, now)
        if method not in READ_METHODS:
            if not sessions.csrf_matches(signed_in.csrf_token, connection.headers.get("x-csrf-token")):
                raise Forbidden("Send the session's CSRF token in the `X-CSRF-Token` header.")
            if signed_in.session.view_only:
                raise Forbidden("You entered a client in view-only mode: nothing can be changed.")
        return signed_in.principal, session_quota(lookup, signed_in.principal)


Caller = Annotated[Principal, Depends(principal)]


def caller_of(request: Request) -> Principal:
    """The caller `ApiAuthMiddleware` authenticated, for the hottest reads: a plain call costs far
    less than a dependency. (The OpenAPI document names the key every /api/1 operation needs.)"""
    caller: Principal = request.scope["state"]["principal"]
    return caller


async def partner_principal(request: Request, caller: Caller) -> Principal:
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


async def page(
    limit: Annotated[int, Query(ge=1, le=200, description="Items per page (1-200).")] = 50,
    offset: Annotated[int, Query(ge=0, le=INT64_MAX, description="Items to skip.")] = 0,
) -> Page:
    return Page(limit, offset)


PageDep = Annotated[Page, Depends(page)]


async def settings(request: Request) -> Settings:
    return services(request).settings


SettingsDep = Annotated[Settings, Depends(settings)]


async def meter(request: Request) -> Meter:
    return services(request).meter


MeterDep = Annotated[Meter, Depends(meter)]
