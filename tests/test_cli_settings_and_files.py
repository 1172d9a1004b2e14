"""The command line's settings and files (SPEC §10-§11, README "Configuration", "Backups"): a bad
value of any variable, in the environment or in `.env`, ends a command with exit 2 and one line
naming it, never a traceback; no command prints the database's password; a password file gives
the password typed; a backup may be written to any name the system holds."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import uuid

import pytest
from pydantic import ValidationError
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from tenantry.db.models import Partner
from tenantry.settings import Settings
from tests.factories import sign_in
from tests.servers import TENANTRY, free_port, tenantry

PG_URL = os.environ.get("TENANTRY_TEST_DATABASE_URL")
# Not common, not blank, not the e-mail: only its length is unusual.
LONG_PASSWORD = "correct-horse-battery-staple-" * 9  # 261 characters


def _one_line_refusal(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr[-800:]
    assert result.returncode == 2, (result.returncode, result.stderr[-800:])
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr[-800:]


@pytest.fixture
def sqlite_url(database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("tenantry backup copies a SQLite database")
    return database_url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "garbage",
        "mysql://someone@127.0.0.1/tenantry",
        "sqlite://",
        # A port that is not one: read when the engine is made, it was a traceback.
        "postgresql://postgres@127.0.0.1:abc/tenantry",
        "postgresql://postgres@127.0.0.1:/tenantry",
        "postgresql://postgres@[::1/tenantry",
        "postgresql://postgres@127.0.0.1:70000/tenantry",
    ],
)
@pytest.mark.parametrize("command", [["db", "upgrade"], ["domain", "list"]])
def test_a_bad_database_url_is_one_line_not_a_traceback(tmp_path, url, command):
    result = tenantry(*command, url=url, cwd=tmp_path)
    _one_line_refusal(result)
    assert "TENANTRY_DATABASE_URL" in result.stderr


@pytest.mark.parametrize("offset", ["nan", "inf", "1e12"])
def test_a_clock_offset_no_clock_can_hold_is_refused_naming_the_variable(
    database_url, database, partner, tmp_path, offset
):
    # nan: a traceback; inf and 1e12: "a number is too large for the database", which names neither
    # the variable nor anything the operator typed.
    result = tenantry(
        "statement", "2024-01", "--partner", str(partner.id),
        url=database_url, cwd=tmp_path, env={"TENANTRY_CLOCK_OFFSET_SECONDS": offset},
    )  # fmt: skip
    _one_line_refusal(result)
    assert "TENANTRY_CLOCK_OFFSET_SECONDS" in result.stderr


def test_serve_refuses_a_clock_offset_beyond_any_date_at_start_in_one_line(database_url, database, tmp_path):
    env = {**os.environ, "TENANTRY_DATABASE_URL": database_url, "TENANTRY_CLOCK_OFFSET_SECONDS": "1e12"}
    result = subprocess.run(
        [TENANTRY, "serve", "--port", str(free_port()), "--workers", "1", "--no-worker"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    _one_line_refusal(result)
    assert "TENANTRY_CLOCK_OFFSET_SECONDS" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TENANTRY_REDIS_URL", "localhost:6379"),  # the scheme forgotten
        ("TENANTRY_REDIS_URL", "redis://127.0.0.1:abc/0"),  # a port that is not one
        ("TENANTRY_REDIS_URL", "redis://127.0.0.1:99999/0"),
        ("TENANTRY_DATA_DIR", "/proc/no-such-folder"),  # a folder that cannot be made
        ("TENANTRY_CLOCK_OFFSET_SECONDS", "nan"),
        ("TENANTRY_SMTP_PORT", "0"),  # every e-mail would then fail with no end
        ("TENANTRY_SMTP_PORT", "99999"),
        ("TENANTRY_BASE_URL", "http://[::1"),  # no parser reads it: adding a domain was a 500
        ("TENANTRY_BASE_URL", "ftp://dashboards.example.com/"),
    ],
)
def test_serve_on_a_bad_setting_ends_in_one_line_not_a_traceback(
    database_url, database, tmp_path, variable, value
):
    env = {**os.environ, "TENANTRY_DATABASE_URL": database_url, variable: value}
    env.pop("TENANTRY_SECRET_KEY", None)
    result = subprocess.run(
        [TENANTRY, "serve", "--port", str(free_port()), "--workers", "1", "--no-worker"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    _one_line_refusal(result)
    assert variable in result.stderr


@pytest.mark.parametrize(
    ("url", "password"),
    [
        ("postgresql://postgres:pass-SECRET@127.0.0.1:5432/tenantry", "pass-SECRET"),
        # A `/` in the password, which the driver reads as part of it.
        ("postgresql://postgres:pa/ss-SECRET@127.0.0.1:5432/tenantry", "ss-SECRET"),
        # libpq's own spelling, which psycopg honours.
        ("postgresql://postgres@127.0.0.1:5432/tenantry?password=SECRETPW", "SECRETPW"),
        ("postgresql://postgres@127.0.0.1:5432/tenantry?sslmode=disable&PASSWORD=SECRETPW", "SECRETPW"),
    ],
)
def test_the_database_url_a_command_prints_hides_its_password_however_it_is_written(url, password):
    shown = Settings(database_url=url, _env_file=None).shown_database_url  # type: ignore[call-arg]
    assert password not in shown
    assert shown.startswith("postgresql://postgres") and "127.0.0.1:5432/tenantry" in shown


def test_a_damaged_generated_encryption_key_ends_the_worker_in_one_line(database_url, database, tmp_path):
    # `secrets rotate` says "cannot load the encryption key: ..."; the worker crashes with a traceback.
    (tmp_path / "encryption.key").write_text("")
    env = {**os.environ, "TENANTRY_DATABASE_URL": database_url, "TENANTRY_DATA_DIR": str(tmp_path)}
    env.pop("TENANTRY_ENCRYPTION_KEY", None)
    result = subprocess.run(
        [TENANTRY, "worker"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    _one_line_refusal(result)
    assert "encryption key" in result.stderr


def test_a_dotenv_file_that_is_not_utf8_is_one_line_not_a_traceback(database_url, database, tmp_path):
    (tmp_path / ".env").write_bytes(b"TENANTRY_LOG_LEVEL=INFO\nTENANTRY_MAIL_FROM=caf\xe9@example.test\n")
    result = tenantry("domain", "list", url=database_url, cwd=tmp_path)
    _one_line_refusal(result)
    assert ".env" in result.stderr


def test_db_upgrade_never_prints_the_database_password(tmp_path):
    secret = "Hunter2-db-password"
    refused = tenantry(
        "db", "upgrade", url=f"postgresql://tenantry:{secret}@127.0.0.1:1/tenantry", cwd=tmp_path
    )
    assert refused.returncode != 0
    assert secret not in refused.stderr + refused.stdout, refused.stderr


def test_db_upgrade_success_line_never_prints_the_database_password(tmp_path):
    if not PG_URL:
        pytest.skip("needs TENANTRY_TEST_DATABASE_URL (PostgreSQL)")
    server = make_url(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"tenantry_test_cli_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        # Trust authentication on loopback accepts (and ignores) the password.
        secret = "Hunter2-db-password"
        url = server.set(drivername="postgresql", password=secret, database=name).render_as_string(
            hide_password=False
        )
        done = tenantry("db", "upgrade", url=url, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert secret not in done.stderr + done.stdout, done.stderr
        assert ":***@" in done.stderr
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.parametrize("seconds", [0.0005, 0, -1])
def test_a_lock_timeout_under_a_millisecond_is_refused_as_it_would_be_no_timeout_at_all(seconds):
    # PostgreSQL and SQLite count it in whole milliseconds, and read 0 as "wait for ever".
    with pytest.raises(ValidationError, match="db_lock_timeout_seconds"):
        Settings(db_lock_timeout_seconds=seconds, _env_file=None)  # type: ignore[call-arg]


def test_an_admin_password_longer_than_any_sign_in_form_takes_is_refused(
    database_url, database, tmp_path, db
):
    (tmp_path / "pw").write_text(LONG_PASSWORD + "\n")
    result = tenantry(
        "partner", "create", "Long", "--admin-email", "long@pw.test", "--admin-password-file", "pw",
        url=database_url, cwd=tmp_path,
    )  # fmt: skip
    _one_line_refusal(result)
    assert "at most 200 characters" in result.stderr
    assert db.scalars(select(Partner)).all() == []


def test_a_password_file_saved_with_a_byte_order_mark_gives_the_password_typed(
    database_url, database, tmp_path, http
):
    # Windows editors save UTF-8 "with BOM": the command keeps U+FEFF as the password's first
    # character, and the admin can never sign in with the password they wrote in the file.
    password = "mellow-quartz-harbor-42"
    (tmp_path / "pw").write_bytes(b"\xef\xbb\xbf" + password.encode() + b"\r\n")
    result = tenantry(
        "partner", "create", "Bom", "--admin-email", "bom@pw.test", "--admin-password-file", "pw",
        url=database_url, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    answer = sign_in(http, "bom@pw.test", password)
    assert answer.status_code == 303, f"signing in with the file's password answers {answer.status_code}"


def test_the_same_password_file_without_a_byte_order_mark_signs_in(database_url, database, tmp_path, http):
    password = "mellow-quartz-harbor-42"
    (tmp_path / "pw").write_bytes(password.encode() + b"\r\n")
    result = tenantry(
        "partner", "create", "Plain", "--admin-email", "plain@pw.test", "--admin-password-file", "pw",
        url=database_url, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sign_in(http, "plain@pw.test", password).status_code == 303


def test_a_backup_file_with_a_long_but_valid_name_is_written(sqlite_url, database, tmp_path):
    # 243 characters: a valid file name (the limit is 255), but the temporary ".<name>.<hex>.partial"
    # beside it is not; the clean-up in `finally` then raises again and the command ends in a traceback.
    name = "b" * 240 + ".db"
    result = tenantry("backup", name, url=sqlite_url, cwd=tmp_path)
    assert "Traceback" not in result.stderr, result.stderr[-400:]
    assert result.returncode == 0, result.stderr[-400:]
    with sqlite3.connect(tmp_path / name) as copy:
        assert copy.execute("PRAGMA quick_check").fetchone() == ("ok",)


def test_a_file_name_too_long_for_the_system_is_refused_in_one_line(sqlite_url, database, tmp_path):
    result = tenantry("backup", "c" * 300 + ".db", url=sqlite_url, cwd=tmp_path)
    assert "Traceback" not in result.stderr, result.stderr[-400:]
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr[-400:]
