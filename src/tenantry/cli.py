"""The `tenantry` command line. Every command works from any directory and exits non-zero with a
one-line reason on bad input."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

# Typer carries its own copy of click: its usage errors are these (typer is pinned in the lock file).
from typer._click.exceptions import ClickException, NoArgsIsHelpError

from tenantry.errors import TenantryError
from tenantry.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from tenantry.db.session import Database

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Tenantry: client accounts for dashboards."
)
db_app = typer.Typer(no_args_is_help=True, help="The database.")
partner_app = typer.Typer(no_args_is_help=True, help="Partners.")
app.add_typer(db_app, name="db")
app.add_typer(partner_app, name="partner")
secrets_app = typer.Typer(
    no_args_is_help=True, help="Data sources' secrets (header values, passwords, tokens)."
)
app.add_typer(secrets_app, name="secrets")
domain_app = typer.Typer(no_args_is_help=True, help="Partners' own domains.")
app.add_typer(domain_app, name="domain")


def fail(reason: str) -> NoReturn:
    typer.echo(f"error: {reason}", err=True)
    raise typer.Exit(2)


@app.callback()
def _configure(ctx: typer.Context) -> None:
    """Read the configuration once per invocation; every command takes it from the context."""
    from pydantic import ValidationError

    try:
        ctx.obj = Settings()
    except ValidationError as exc:
        error = exc.errors()[0]
        where = "TENANTRY_" + "_".join(str(part) for part in error["loc"]).upper()
        fail(f"{where}: {error['msg']}")
    except UnicodeDecodeError:
        fail(".env: the file is not UTF-8 text")
    except OSError as exc:
        fail(f".env: cannot be read ({exc.strerror or exc})")


@contextmanager
def _setting_problems(settings: Settings) -> Iterator[None]:
    """What the settings name but cannot be used (a data folder that cannot be written, a damaged
    key file) ends the command in one line."""
    try:
        yield
    except OSError as exc:
        fail(f"TENANTRY_DATA_DIR ({settings.data_dir}): {exc.filename or ''} {exc.strerror or exc}".strip())
    except ValueError as exc:
        fail(_first_line(exc))


def _first_line(error: object) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _settings(ctx: typer.Context) -> Settings:
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)
    return settings


def _database(settings: Settings) -> Database:
    from tenantry.db.session import database_from_settings

    return database_from_settings(settings)


@contextmanager
def _session(settings: Settings, write: bool = False) -> Iterator[Session]:
    """A session on the configured database; refusals and database problems end the command."""
    database = _database(settings)
    try:
        with database.session(write=write) as db:
            yield db
    except typer.Exit:
        raise
    except TenantryError as exc:
        fail(exc.detail)
    except Exception as exc:  # a database that is missing or not migrated
        fail(_database_problem(exc))
    finally:
        database.dispose()


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Create or migrate the database named by TENANTRY_DATABASE_URL."""
    from sqlalchemy.exc import OperationalError

    from tenantry.db.migrate import upgrade

    settings = _settings(ctx)
    try:
        upgrade(settings.sqlalchemy_url)
    except OperationalError as exc:
        fail(f"cannot reach the database {settings.shown_database_url}: {_first_line(exc.orig)}")
    typer.echo(f"database is up to date ({settings.shown_database_url})", err=True)


@app.command()
def backup(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Where to write the copy (replaced if it exists).")],
) -> None:
    """Write a consistent copy of the SQLite database, also while the server runs (PostgreSQL: pg_dump)."""
    from tenantry.db.backup import BackupError, backup_sqlite
    from tenantry.db.session import sqlite_path

    settings = _settings(ctx)
    if not settings.is_sqlite:
        fail("tenantry backup copies a SQLite database; back up PostgreSQL with pg_dump -Fc (see the README)")
    source = sqlite_path(settings.sqlalchemy_url)
    if source is None:
        fail(f"{settings.shown_database_url} is not a database file that can be copied")
    try:
        size = backup_sqlite(source, file)
    except BackupError as exc:
        fail(str(exc))
    typer.echo(f"backup of {source} written to {file} ({size:,} bytes)", err=True)


def _whole(value: int | None, option: str, low: int, high: int, what: str = "a number") -> None:
    """End the command when an integer option is out of range: a number that no database column or
    row id holds would otherwise fail deep in the driver."""
    if value is not None and not low <= value <= high:
        fail(f"{option} must be {what} from {low} to {high}, not {value}")


def _seconds(value: float, option: str, high: float) -> None:
    """End the command unless a float option is a finite number of seconds, above 0 and at most `high`."""
    if not (math.isfinite(value) and 0 < value <= high):
        fail(f"{option} must be a number of seconds above 0 and at most {high:g}, not {value:g}")


def _money(value: str, option: str) -> Decimal:
    """An amount of money with cents, within what a price may be (as the API takes it)."""
    from tenantry.partners.schemas import PRICE_MAX, PRICE_PLACES

    try:
        amount = Decimal(value)
    except InvalidOperation:
        fail(f"{option} must be an amount such as 10.00, not {value!r}")
    # Compared before rounding to cents: a huge amount cannot be rounded at all.
    if not amount.is_finite() or not 0 <= amount <= PRICE_MAX:
        fail(f"{option} must be an amount from 0.00 to {PRICE_MAX}, not {value!r}")
    return amount.quantize(Decimal(1).scaleb(-PRICE_PLACES))


@partner_app.command("create")
def partner_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The partner's name.")],
    admin_email: Annotated[str, typer.Option("--admin-email", help="E-mail of the first admin.")],
    dashboards: Annotated[int, typer.Option(help="Pool total (-1 = unlimited).")] = -1,
    users: Annotated[int, typer.Option(help="Pool total (-1 = unlimited).")] = -1,
    published_links: Annotated[
        int, typer.Option("--published-links", help="Pool total (-1 = unlimited).")
    ] = -1,
    api_calls_per_day: Annotated[
        int, typer.Option("--api-calls-per-day", help="Pool total (-1 = unlimited).")
    ] = -1,
    timezone: Annotated[str, typer.Option(help="IANA timezone for days and statements.")] = "UTC",
    dashboard_price: Annotated[str, typer.Option("--dashboard-price", help="Per dashboard-month.")] = "10.00",
    user_price: Annotated[str, typer.Option("--user-price", help="Per user-month.")] = "5.00",
    currency: Annotated[str, typer.Option(help="Three-letter currency code.")] = "USD",
    trial_days: Annotated[
        int, typer.Option("--trial-days", help="Length of a client's trial, in days.")
    ] = 14,
    trial_extension_days: Annotated[
        int, typer.Option("--trial-extension-days", help="Days one trial extension adds (0 = none).")
    ] = 14,
    admin_password: Annotated[
        str | None,
        typer.Option(
            "--admin-password",
            help="The admin's password (generated and printed when omitted). Other users of the "
            "machine can read it in the process list: prefer --admin-password-file.",
        ),
    ] = None,
    admin_password_file: Annotated[
        str | None,
        typer.Option(
            "--admin-password-file",
            metavar="FILE",
            help="Read the admin's password from the first line of FILE (- for standard input): "
            "the safe way to give it.",
        ),
    ] = None,
) -> None:
    """Create a partner with its first admin and API key; print them as one JSON object."""
    from tenantry.clock import SystemClock
    from tenantry.partners.schemas import POOL_TOTAL_MAX, TRIAL_DAYS_MAX
    from tenantry.partners.service import PartnerPlan, create_partner

    totals = {
        "--dashboards": dashboards,
        "--users": users,
        "--published-links": published_links,
        "--api-calls-per-day": api_calls_per_day,
    }
    for option, total in totals.items():
        if not -1 <= total <= POOL_TOTAL_MAX:
            fail(f"{option} must be -1 (unlimited) or a number from 0 to {POOL_TOTAL_MAX}, not {total}")
    _whole(trial_days, "--trial-days", 1, TRIAL_DAYS_MAX, "a number of days")
    _whole(trial_extension_days, "--trial-extension-days", 0, TRIAL_DAYS_MAX, "a number of days")
    if admin_password_file is not None:
        if admin_password is not None:
            fail("give --admin-password or --admin-password-file, not both")
        admin_password = _password_from(admin_password_file)

    plan = PartnerPlan(
        dashboards=dashboards,
        users=users,
        published_links=published_links,
        api_calls_per_day=api_calls_per_day,
        trial_days=trial_days,
        trial_extension_days=trial_extension_days,
        dashboard_price=_money(dashboard_price, "--dashboard-price"),
        user_price=_money(user_price, "--user-price"),
        currency=currency,
    )
    settings = _settings(ctx)
    with _session(settings, write=True) as db:
        created = create_partner(
            db,
            SystemClock(settings.clock_offset),
            name=name,
            admin_email=admin_email,
            plan=plan,
            timezone=timezone,
            admin_password=admin_password,
        )
        db.commit()
    out = {
        "partner_id": created.partner_id,
        "admin_user_id": created.admin_user_id,
        "api_key": created.api_key,
    }
    if created.admin_password is not None:
        out["admin_password"] = created.admin_password
    typer.echo(json.dumps(out))


def _password_from(source: str) -> str:
    """The first line of a file, or of standard input for `-`, without its line ending."""
    try:
        if source == "-":
            line = sys.stdin.readline()
        else:
            # utf-8-sig: a file saved "UTF-8 with BOM" gives the password typed, not a mark before it.
            with open(source, encoding="utf-8-sig") as file:
                line = file.readline()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        fail(f"cannot read the admin password from {source}: {reason}")
    password = line.rstrip("\r\n").removeprefix("\ufeff")
    if not password:
        fail(f"the first line of {'standard input' if source == '-' else source} is empty: no password")
    return password


def _database_problem(exc: Exception) -> str:
    from sqlalchemy.exc import DataError, OperationalError, ProgrammingError

    if isinstance(exc, OverflowError):  # SQLite cannot bind an integer beyond 64 bits
        return f"a number is too large for the database: {str(exc).strip().splitlines()[0]}"
    if isinstance(exc, DataError):  # a value out of its column's range or type
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        return f"a value the database cannot hold: {first}"
    if isinstance(exc, OperationalError | ProgrammingError):
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        if "no such table" in first or "does not exist" in first:
            return f"the database has no tables yet ({first}); run `tenantry db upgrade` first"
        return f"database error: {first}"
    raise exc


@app.command()
def statement(
    ctx: typer.Context,
    month: Annotated[str, typer.Argument(help="The month, YYYY-MM, in the partner's timezone.")],
    partner: Annotated[
        int | None, typer.Option("--partner", help="The partner's id (needed when there are several).")
    ] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV instead of JSON.")] = False,
) -> None:
    """Print a partner's statement for a month, as JSON or CSV."""
    from tenantry.clock import SystemClock
    from tenantry.fields import INT64_MAX, INT64_MIN
    from tenantry.statements import repository, service
    from tenantry.statements.schemas import StatementOut

    _whole(partner, "--partner", INT64_MIN, INT64_MAX, "a partner's id")
    settings = _settings(ctx)
    with _session(settings) as db:
        if partner is None:
            choices = repository.partner_choices(db)
            if not choices:
                fail("there is no partner yet; create one with `tenantry partner create`")
            if len(choices) > 1:
                listed = ", ".join(f"{pid} ({name})" for pid, name in choices)
                fail(f"there are several partners; choose one with --partner: {listed}")
            partner = choices[0][0]
        result = service.statement_for(db, partner, month, SystemClock(settings.clock_offset).now())
    if as_csv:
        typer.echo(service.statement_csv(result), nl=False)
    else:
        # The same document the API serves.
        typer.echo(StatementOut.of(partner, result).model_dump_json(indent=2))


# How long uvicorn's supervisor waits for a serving process to answer its ping.
HEALTHCHECK_SECONDS = 30
# The most serving processes `tenantry serve --workers` starts.
MAX_SERVE_PROCESSES = 256
# The worker's bounds: a lease or an idle pause longer than a day is a mistake, and a longer one
# than the clock or a wait can hold would crash it.
MAX_WORKER_SECONDS = 86_400.0
MAX_WORKER_BATCH = 1000
MAX_WORKER_CONCURRENCY = 256  # as TENANTRY_WORKER_CONCURRENCY
MAX_PORT = 65_535


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="Processes serving requests, 1 to 256 (default: one per core)."),
    ] = None,
    worker: Annotated[
        bool | None,
        typer.Option(
            "--worker/--no-worker",
            help="Run the background worker in-process (default: yes with SQLite, no with PostgreSQL).",
        ),
    ] = None,
) -> None:
    """Serve the web app and the API (and, with SQLite, the background worker)."""
    import os

    import uvicorn

    from tenantry.db.migrate import unmigrated_reason
    from tenantry.db.session import database_from_settings
    from tenantry.logs import configure_logging
    from tenantry.wire import SERVER_OPTIONS
    from tenantry.worker import worker_from_settings
    from tenantry.worker.serve import (
        CannotListen,
        listening_socket,
        serve_in_process,
        supervise_with_worker,
    )

    _whole(port, "--port", 0, MAX_PORT, "a port")
    _whole(workers, "--workers", 1, MAX_SERVE_PROCESSES)
    settings = _settings(ctx)
    configure_logging(settings.log_level, settings.log_format)
    database = database_from_settings(settings)
    try:
        reason = unmigrated_reason(database.engine)
    except Exception as exc:
        fail(_database_problem(exc))
    finally:
        database.dispose()
    if reason is not None:
        fail(reason)
    processes = workers or os.cpu_count() or 1
    # Made here, once, before any process reads it.
    in_process = settings.is_sqlite if worker is None else worker
    with _setting_problems(settings):
        settings.ensure_secret_key()
        # The worker gets a pool of its own, so its jobs never take the connections that the web
        # app's admission limit counts on (see "Connections and load" in the README).
        background = worker_from_settings(settings) if in_process else None
    # Bound before anything starts: the worker (which writes events and sends e-mails at once) and
    # the serving processes start only on an address that is ours.
    try:
        sock = listening_socket(host, port)
    except CannotListen as exc:
        fail(str(exc))
    # Our own logging (`tenantry.logs`) stays in place: uvicorn's records go through it. The client
    # address is the socket's unless a trusted proxy says otherwise (`auth.addresses`).
    if processes > 1:
        # uvicorn's supervisor starts the processes, each building its own app from the settings;
        # the background worker runs once, in the supervisor.
        config = uvicorn.Config(
            "tenantry.app:serving_app",
            factory=True,
            workers=processes,
            host=host,
            port=port,
            **SERVER_OPTIONS,
            # The supervisor kills a process that does not answer its ping in time, with every
            # request it is serving: on a busy machine 5 s (uvicorn's default) is too short for
            # that, and a process really hung is still replaced after this long.
            timeout_worker_healthcheck=HEALTHCHECK_SECONDS,
        )
        supervise_with_worker(config, sock, background)
        return
    from tenantry.app import create_app

    serve_in_process(create_app(settings), sock, background)


@app.command("worker")
def run_worker(
    ctx: typer.Context,
    lease_seconds: Annotated[
        float, typer.Option("--lease-seconds", help="How long a claimed job is reserved.")
    ] = 120.0,
    batch: Annotated[int, typer.Option(help="Jobs of each kind claimed at a time.")] = 5,
    poll_seconds: Annotated[float, typer.Option("--poll-seconds", help="Pause when idle.")] = 1.0,
    concurrency: Annotated[
        int | None,
        typer.Option(help="Jobs run at once (default: TENANTRY_WORKER_CONCURRENCY, 8)."),
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", help="Serve this worker's /metrics on this port.")
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="Address for --metrics-port.")
    ] = "127.0.0.1",
) -> None:
    """Run the background worker: refreshes, trial events, webhook and e-mail deliveries."""
    import signal
    from datetime import timedelta

    from tenantry.worker import worker_from_settings

    _seconds(lease_seconds, "--lease-seconds", MAX_WORKER_SECONDS)
    _seconds(poll_seconds, "--poll-seconds", MAX_WORKER_SECONDS)
    _whole(batch, "--batch", 1, MAX_WORKER_BATCH)
    _whole(concurrency, "--concurrency", 1, MAX_WORKER_CONCURRENCY)
    _whole(metrics_port, "--metrics-port", 1, MAX_PORT, "a port")
    settings = _settings(ctx)
    from tenantry.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    with _setting_problems(settings):
        worker = worker_from_settings(
            settings,
            lease=timedelta(seconds=lease_seconds),
            batch=batch,
            poll_seconds=poll_seconds,
            concurrency=concurrency or settings.worker_concurrency,
        )
    try:
        worker.check_database()
    except Exception as exc:
        worker.database.dispose()
        fail(_database_problem(exc))
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=metrics_host)
    # Graceful stop: finish the jobs in hand, release the ones not started, then exit.
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    try:
        worker.run()
    finally:
        worker.database.dispose()


@app.command()
def demo(
    ctx: typer.Context,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing when a partner already exists.")
    ] = False,
) -> None:
    """Load a demo partner with clients in every status and print how to sign in."""
    from tenantry.clock import SystemClock
    from tenantry.demo import load_demo

    settings = _settings(ctx)
    with _session(settings, write=True) as db:
        text = load_demo(db, SystemClock(settings.clock_offset), settings.base_url, if_empty=if_empty)
        db.commit()
    typer.echo(text)


@secrets_app.command("rotate")
def secrets_rotate(ctx: typer.Context) -> None:
    """Re-encrypt every data source's secrets (and those templates, two-step sign-in and kept
    Idempotency-Key answers keep) with TENANTRY_ENCRYPTION_KEY, so that the keys in
    TENANTRY_ENCRYPTION_OLD_KEYS can be retired. Safe to run again."""
    from tenantry.accounts.service import rotate_totp_secrets
    from tenantry.api.idempotency import rotate_kept_answers
    from tenantry.datasources.service import rotate_secrets
    from tenantry.templates.service import fingerprint_again, instances_in_step, rotate_template_secrets
    from tenantry.vault import load_vault

    settings = _settings(ctx)
    try:
        vault = load_vault(settings)
    except (OSError, ValueError) as exc:
        fail(f"cannot load the encryption key: {exc}")
    with _session(settings, write=True) as db:
        # Sealing a template copy's secrets again is no edit by hand: read which copies are
        # unchanged before, and keep them so after.
        in_step = instances_in_step(db)
        outcome = rotate_secrets(db, vault)
        fingerprint_again(db, in_step)
        factors = rotate_totp_secrets(db, vault)
        templates = rotate_template_secrets(db, vault)
        answers, lost_answers = rotate_kept_answers(db, vault)
        db.commit()
    if answers or lost_answers:
        typer.echo(
            f"re-encrypted {answers} answer(s) kept for Idempotency-Key replays"
            + (f"; {lost_answers} no configured key opens (they replay as lost)" if lost_answers else ""),
            err=True,
        )
    if templates.rotated or templates.unreadable:
        ids = ", ".join(str(i) for i in templates.unreadable)
        typer.echo(
            f"re-encrypted the kept secrets of {templates.rotated} template(s)"
            + (
                f"; {len(templates.unreadable)} hold secrets no configured key opens (ids {ids})"
                if ids
                else ""
            ),
            err=True,
        )
    if factors.rotated or factors.unreadable:
        typer.echo(
            f"re-encrypted {factors.rotated} two-step sign-in secret(s); "
            f"{len(factors.unreadable)} could not be opened (those users turn TOTP off with a recovery code)",
            err=True,
        )
    typer.echo(
        f"re-encrypted the secrets of {outcome.rotated} data source(s) with key {vault.current_key_id}; "
        f"{outcome.current} already used it",
        err=True,
    )
    if outcome.unreadable:
        ids = ", ".join(str(i) for i in outcome.unreadable)
        fail(
            f"{len(outcome.unreadable)} data source(s) have secrets no configured key opens (ids {ids}): "
            "add the key that sealed them to TENANTRY_ENCRYPTION_OLD_KEYS, or send those secrets again"
        )


@domain_app.command("verify")
def domain_verify(
    ctx: typer.Context,
    hostname: Annotated[str, typer.Argument(help="A domain a partner added, e.g. dashboards.example.com.")],
) -> None:
    """Mark a partner's domain verified, once you checked that its DNS points at this server: it
    then serves that partner's sign-in, portal and published links (within seconds)."""
    from tenantry.clock import SystemClock
    from tenantry.domains.service import verify_domain

    settings = _settings(ctx)
    with _session(settings, write=True) as db:
        domain = verify_domain(db, SystemClock(settings.clock_offset), hostname)
        db.commit()
        typer.echo(f"{domain.hostname} is verified for partner {domain.partner_id}")


@domain_app.command("list")
def domain_list(ctx: typer.Context) -> None:
    """Every partner's domains: host name, partner id, and verified or not (tab-separated)."""
    from tenantry.domains.service import all_domains

    with _session(_settings(ctx)) as db:
        for domain in all_domains(db):
            state = "verified" if domain.verified else "unverified"
            typer.echo(f"{domain.hostname}\t{domain.partner_id}\t{state}")


def main() -> None:
    """Run the command; bad usage (a missing argument, a value that is not a number, an unknown
    command) ends in one line on standard error, exit status 2, as every other refusal does."""
    try:
        code = app(standalone_mode=False)
    except (KeyboardInterrupt, typer.Abort):
        sys.exit(130)
    except NoArgsIsHelpError as asked:
        asked.show()  # a group named alone: its help, as before
        sys.exit(asked.exit_code)
    except ClickException as refused:
        reason = " ".join(refused.format_message().split())
        typer.echo(f"error: {reason}", err=True)
        sys.exit(refused.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
