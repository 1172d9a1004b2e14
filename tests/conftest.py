"""Test fixtures, all of them but a few that one folder alone uses (helpers that are not fixtures
live in `tests/factories.py`, `tests/content.py`, `tests/servers.py`, `tests/smtp.py`,
`tests/pages.py`, `tests/services.py` and `tests/billing.py`).

The schema is built by the real migrations (`alembic upgrade head`). Without settings the suite
runs on a SQLite file; with TENANTRY_TEST_DATABASE_URL (PostgreSQL) it creates a fresh database
there, and a server that cannot be reached fails the run rather than skipping anything.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from tenantry import branding
from tenantry.app import create_app
from tenantry.auth.principal import Principal
from tenantry.auth.secrets import new_api_key
from tenantry.clock import FakeClock
from tenantry.db.migrate import upgrade
from tenantry.db.models import ApiKey, Base, PartnerUser
from tenantry.db.session import Database
from tenantry.logs import flush_logs
from tenantry.mail import LogMailer, Mailer, SmtpMailer
from tenantry.outbound import Guard
from tenantry.partners.service import CreatedPartner, PartnerPlan, create_partner
from tenantry.settings import Settings
from tenantry.vault import load_vault
from tenantry.worker import Worker
from tests.factories import ADMIN_PASSWORD, admin_email, sign_in
from tests.servers import DataServer, Receiver, data_server_running, live_server, receiver_running
from tests.services import Clients
from tests.smtp import SilentSmtp, SmtpServer, smtp_server_running

PG_URL = os.environ.get("TENANTRY_TEST_DATABASE_URL")


def _redis_of_this_process(url: str | None) -> str | None:
    """TENANTRY_TEST_REDIS_URL as given when one process runs the suite. With pytest-xdist, each
    process takes its own logical database (the given one for `gw0`, then the ones below it, among
    Redis's 16), since every test empties its database when it ends; each process creates its own
    PostgreSQL database already (`database_url`)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if url is None or not worker.startswith("gw"):
        return url
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(base - int(worker[2:])) % 16}"))


REDIS_URL = _redis_of_this_process(os.environ.get("TENANTRY_TEST_REDIS_URL"))
# MariaDB or MySQL for `sql` sources: with it set, a server that cannot be reached fails the run;
# without it (a fresh laptop) the tests that need one are skipped.
MYSQL_URL = os.environ.get("TENANTRY_TEST_MYSQL_URL")
START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _psycopg(url: str) -> str:
    return Settings(database_url=url).sqlalchemy_url


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not PG_URL:
        path = tmp_path_factory.mktemp("db") / "tenantry.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        yield url
        return
    server = make_url(_psycopg(PG_URL))
    name = f"tenantry_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:  # an unreachable server raises here: the run fails
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass(frozen=True)
class DatabaseServer:
    """A database server that `sql` source tests query (not the app's own database)."""

    engine: str  # postgresql | mysql
    host: str
    port: int
    username: str
    password: str
    database: str  # one that exists, to connect to while creating a scratch database


@pytest.fixture(scope="session")
def postgresql_server() -> DatabaseServer:
    """The PostgreSQL server of TENANTRY_TEST_DATABASE_URL; `sql` source tests skip without it."""
    if not PG_URL:
        pytest.skip("TENANTRY_TEST_DATABASE_URL is not set")
    url = make_url(PG_URL)
    return DatabaseServer(
        "postgresql",
        url.host or "127.0.0.1",
        url.port or 5432,
        url.username or "postgres",
        url.password or "",
        url.database or "postgres",
    )


@contextmanager
def postgresql_role(server: DatabaseServer, rights: str = "") -> Iterator[str]:
    """A new PostgreSQL role that may log in (the server trusts every login here), with `rights`
    (`CREATE ROLE` options such as REPLICATION, or `IN ROLE ...`), dropped afterwards. Without
    rights, what a source should be given: a user that can only read what it is granted."""
    import psycopg

    name = f"tenantry_reader_{uuid.uuid4().hex[:12]}"
    params = {"host": server.host, "port": server.port, "user": server.username, "dbname": server.database}
    with psycopg.connect(**params, password=server.password, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{name}" LOGIN {rights}')
    try:
        yield name
    finally:
        with psycopg.connect(**params, password=server.password, autocommit=True) as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{name}"')


@pytest.fixture
def postgresql_reader(postgresql_server: DatabaseServer) -> Iterator[str]:
    """A PostgreSQL role that may log in and read, and nothing more (`postgresql_role`)."""
    with postgresql_role(postgresql_server) as name:
        yield name


@pytest.fixture(scope="session")
def mysql_server() -> DatabaseServer:
    """The MariaDB/MySQL server of TENANTRY_TEST_MYSQL_URL; `sql` source tests skip without it,
    and fail when it is set and the server cannot be reached."""
    if not MYSQL_URL:
        pytest.skip("TENANTRY_TEST_MYSQL_URL is not set")
    import pymysql

    url = make_url(MYSQL_URL)
    server = DatabaseServer(
        "mysql",
        url.host or "127.0.0.1",
        url.port or 3306,
        url.username or "root",
        url.password or "",
        url.database or "test",
    )
    pymysql.connect(  # an unreachable server raises here: the run fails
        host=server.host,
        port=server.port,
        user=server.username,
        password=server.password,
        database=server.database,
        connect_timeout=5,
    ).close()
    return server


@pytest.fixture(scope="session")
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.dispose()


# The log is written by a thread of its own (`tenantry.logs`): what a test logged in each phase
# (setup, call, teardown) is written out before that phase's output stops being captured, not into
# the middle of the run's report. `trylast`: inside the capture's own wrappers.
def _logs_written_out() -> Generator[None, object, object]:
    try:
        return (yield)
    finally:
        flush_logs()


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _logs_written_out())


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _logs_written_out())


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _logs_written_out())


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "rolled_back: the test writes only through the `session` fixture, which is rolled back, so "
        "there are no tables to clean after it (on PostgreSQL the cleaning takes most of its time)",
    )


@pytest.fixture(autouse=True)
def _clean_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "database" not in request.fixturenames:
        return
    database: Database = request.getfixturevalue("database")
    # Ids restart with the tables below: brands cached under the old ids must go with them.
    branding.forget_all()
    if request.node.get_closest_marker("rolled_back"):
        if not database.is_sqlite:  # sequences move on outside transactions: restart them as below
            with database.engine.begin() as conn:
                conn.execute(text("SELECT setval(oid, 1, false) FROM pg_class WHERE relkind = 'S'"))
        return
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with database.engine.begin() as conn:
        if database.is_sqlite:
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))
            # Ids restart with the tables, as RESTART IDENTITY does on PostgreSQL (the sequences
            # of AUTOINCREMENT tables live in sqlite_sequence).
            if conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")).first():
                conn.execute(text("DELETE FROM sqlite_sequence"))
        else:
            conn.execute(
                text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
            )


@pytest.fixture(autouse=True)
def _quick_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Still argon2, with the smallest cost: the production cost (~0.4 s a hash) would make the
    suite crawl, and what is tested is that passwords are hashed and checked, not how slowly."""
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher

    from tenantry.auth import secrets

    quick = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))
    monkeypatch.setattr(secrets, "_passwords", quick)


@pytest.fixture(autouse=True)
def _clean_redis() -> Iterator[None]:
    """Counters live in Redis when it is configured; ids restart with the tables, so they go too."""
    yield
    if REDIS_URL:
        from redis import Redis

        with Redis.from_url(REDIS_URL) as redis:  # an unreachable server raises here: the run fails
            redis.flushdb()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=REDIS_URL,
        data_dir=tmp_path,
        secret_key="test-secret-key-" + "x" * 32,
        # Tests make many calls in a second; the burst limit itself is tested on its own app.
        api_burst_per_second=10_000,
        # The tests' own data servers and webhook receivers listen on 127.0.0.1, which the
        # outgoing-request guard refuses by default; its own tests use an empty list.
        outbound_allow="127.0.0.1",
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def app(settings: Settings, clock: FakeClock, database: Database):  # type: ignore[no-untyped-def]
    return create_app(settings, clock=clock, database=database)


@pytest.fixture
def http(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def db(database: Database) -> Iterator[Session]:
    """A session for looking into the database (and arranging rows) beside the app under test.

    Deferred, not immediate: it must not hold SQLite's write lock while the app or a command writes.
    """
    with database.session() as session:
        yield session


@dataclass
class PartnerHandle:
    """A partner made for a test, with its admin's API key as ready-made headers."""

    id: int
    admin_user_id: int
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@pytest.fixture
def make_partner(database: Database, clock: FakeClock):  # type: ignore[no-untyped-def]
    counter = iter(range(1, 10_000))

    def make(name: str | None = None, **plan: object) -> PartnerHandle:
        n = next(counter)
        with database.session(write=True) as session:
            created: CreatedPartner = create_partner(
                session,
                clock,
                name=name or f"Partner {n}",
                admin_email=f"admin{n}-{uuid.uuid4().hex[:6]}@partner.test",
                plan=PartnerPlan(**plan),  # type: ignore[arg-type]
                admin_password=ADMIN_PASSWORD,
            )
            session.commit()
        return PartnerHandle(created.partner_id, created.admin_user_id, created.api_key)

    return make


@pytest.fixture
def partner(make_partner) -> PartnerHandle:  # type: ignore[no-untyped-def]
    return make_partner(dashboards=10, users=10, published_links=10, api_calls_per_day=1000)


@pytest.fixture
def add_partner_user(database, clock):  # type: ignore[no-untyped-def]
    """Add a partner user with the given role; return the headers of its API key."""

    def add(partner, role: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
        with database.session(write=True) as session:
            user = PartnerUser(
                partner_id=partner.id,
                email=f"{role}-{uuid.uuid4().hex[:8]}@partner.test",
                name=role,
                role=role,
                created_at=clock.now(),
            )
            session.add(user)
            session.flush()
            key = new_api_key()
            session.add(
                ApiKey(
                    partner_id=partner.id,
                    partner_user_id=user.id,
                    name=role,
                    prefix=key.prefix,
                    secret_hash=key.secret_hash,
                    created_at=clock.now(),
                )
            )
            session.commit()
        return {"Authorization": f"Bearer {key.secret}"}

    return add


@pytest.fixture
def partner_session(http, partner, db):  # type: ignore[no-untyped-def]
    """`http` signed in to the console as the partner's admin."""
    email = admin_email(db, partner)
    db.rollback()
    assert sign_in(http, email, ADMIN_PASSWORD).status_code == 303
    return http


@pytest.fixture
def server_url(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The app under test on a real server (uvicorn on loopback); its base URL."""
    with live_server(app) as url:
        yield url


@pytest.fixture
def guarded_http(settings, clock, database) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """The app with the outgoing-request guard as it ships: no private destination allowed."""
    shipped = settings.model_copy(update={"outbound_allow": ""})
    with TestClient(
        create_app(shipped, clock=clock, database=database), raise_server_exceptions=False
    ) as client:
        yield client


@pytest.fixture
def data_server() -> Iterator[DataServer]:
    """A real HTTP server on 127.0.0.1 whose answers a test sets per path."""
    with data_server_running() as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real webhook receiver on 127.0.0.1."""
    with receiver_running() as state:
        yield state


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on loopback (aiosmtpd) and the messages it received."""
    with smtp_server_running() as server:
        yield server


@pytest.fixture
def smtp_app(settings, clock, database, smtp_server):  # type: ignore[no-untyped-def]
    """`with smtp_app(settings) as http:` the app (on these settings, by default the test's) sending
    its e-mail through the test's real SMTP server (`smtp_server`)."""

    @contextmanager
    def opened(changed: Settings | None = None) -> Iterator[TestClient]:
        app = create_app(changed or settings, clock=clock, database=database, mailer=smtp_server.mailer)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client

    return opened


@pytest.fixture
def smtp_http(smtp_app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """The app sending its e-mail through the test's real SMTP server (`smtp_server`)."""
    with smtp_app() as client:
        yield client


@pytest.fixture
def silent_smtp() -> Iterator[SilentSmtp]:
    """An SMTP server that accepts connections and never says a word (until `hang_up()`)."""
    server = SilentSmtp()
    try:
        yield server
    finally:
        if not server.done.is_set():
            server.hang_up()


@pytest.fixture
def make_worker(database, clock, settings):  # type: ignore[no-untyped-def]
    """A worker on the FakeClock; its guard lets it reach the tests' servers on 127.0.0.1."""

    def make(mailer: Mailer | None = None, **options: Any) -> Worker:
        options.setdefault("guard", Guard.from_settings(settings))
        options.setdefault("vault", load_vault(settings))
        return Worker(database, clock, mailer or LogMailer(), **options)

    return make


@pytest.fixture
def worker(make_worker) -> Worker:  # type: ignore[no-untyped-def]
    return make_worker()  # type: ignore[no-any-return]


@pytest.fixture
def send_mail(make_worker, smtp_server):  # type: ignore[no-untyped-def]
    """Run the worker's e-mail step against the test SMTP server: requests only queue e-mails."""

    def send() -> int:
        mailer = SmtpMailer(smtp_server.host, smtp_server.port, "tenantry@example.test")
        return int(make_worker(mailer).run_mails())

    return send


@pytest.fixture
def mailed_links(smtp_server, send_mail):  # type: ignore[no-untyped-def]
    """Send what the outbox holds; the links of one kind (`reset`, `invite`) in the messages sent."""

    def links(kind: str) -> list[str]:
        send_mail()
        found = []
        for message in smtp_server.messages:
            body = message.get_body(("plain",)) if message.is_multipart() else message
            found += re.findall(rf"https?://\S+/{kind}/[A-Za-z0-9_\-]+", body.get_content())
        smtp_server.messages.clear()
        return found

    return links


@pytest.fixture
def spawn(database_url: str, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start `tenantry ARGS...` against the test database; kill whatever is left at the end."""
    started: list[subprocess.Popen[bytes]] = []
    logs = []

    def start(*args: str) -> subprocess.Popen[bytes]:
        # The tests' data servers and receivers listen on loopback, closed by default.
        env = {**os.environ, "TENANTRY_DATABASE_URL": database_url, "TENANTRY_OUTBOUND_ALLOW": "127.0.0.1"}
        env.pop("TENANTRY_SMTP_HOST", None)
        path = tmp_path / f"process{len(started)}.log"
        log = path.open("wb")
        logs.append(log)
        process = subprocess.Popen(
            [sys.executable, "-m", "tenantry.cli", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
        process.log_path = path  # type: ignore[attr-defined]
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()
    for log in logs:
        log.close()


# The service layer, called directly (no HTTP, no app)


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    """A write session for calling the domain services directly, as a request does. Services flush,
    never commit: what a test does is rolled back at its end (a refused call is checked in the same
    session, where nothing it refused may have been written). Tests that write through it alone
    are marked `rolled_back`: no tables to clean after them."""
    with database.session(write=True) as session:
        yield session


@pytest.fixture
def partner_admin(session: Session, clock: FakeClock) -> Callable[..., Principal]:
    """Create a partner in `session` with the plan given (unlimited by default); return its admin
    as the `Principal` the services take."""

    def make(**plan: Any) -> Principal:
        created = create_partner(
            session,
            clock,
            name="Partner",
            admin_email=f"admin-{uuid.uuid4().hex[:8]}@partner.test",
            plan=PartnerPlan(**plan),
        )
        return Principal("partner_user", created.partner_id, created.admin_user_id, "admin")

    return make


@pytest.fixture
def clients(session, clock, partner_admin) -> Callable[..., Clients]:  # type: ignore[no-untyped-def]
    """`clients(**plan)`: the client services for the admin of a new partner with that plan."""
    return lambda **plan: Clients(session, clock, partner_admin(**plan))
