"""The command line (SPEC §10), run as a real process from a directory that is not the project's."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DataError

from tenantry.auth.secrets import verify_password
from tenantry.cli import _database_problem
from tenantry.db.models import Partner, PartnerUser
from tests.servers import tenantry


def test_db_upgrade_creates_a_fresh_sqlite_database_from_any_directory(tmp_path):
    result = tenantry("db", "upgrade", url="sqlite:///fresh.db", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "fresh.db").exists()
    again = tenantry("db", "upgrade", url="sqlite:///fresh.db", cwd=tmp_path)
    assert again.returncode == 0


def test_a_bad_setting_is_named_in_one_line_and_nothing_runs(tmp_path):
    result = tenantry(
        "db", "upgrade", url="sqlite:///fresh.db", cwd=tmp_path, env={"TENANTRY_DB_POOL_SIZE": "0"}
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: TENANTRY_DB_POOL_SIZE: Input should be greater than or equal to 1"
    ]
    assert not (tmp_path / "fresh.db").exists()


def test_db_upgrade_names_an_unreachable_database_in_one_line(tmp_path):
    result = tenantry("db", "upgrade", url="postgresql://nobody@127.0.0.1:1/none", cwd=tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().startswith("error: cannot reach the database")
    assert len(result.stderr.strip().splitlines()) == 1


class TestPartnerCreate:
    def test_prints_one_json_object_with_a_generated_password(self, database_url, database, tmp_path, db):
        result = tenantry(
            "partner", "create", "Acme Agency", "--admin-email", "Boss@Acme.test",
            "--dashboards", "20", "--users", "5", "--published-links", "3", "--api-calls-per-day", "1000",
            "--timezone", "Europe/Paris", "--dashboard-price", "12.5", "--user-price", "4",
            "--currency", "eur",
            url=database_url, cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        out = json.loads(result.stdout)
        assert set(out) == {"partner_id", "admin_user_id", "api_key", "admin_password"}
        assert out["api_key"].startswith("tnt_") and len(out["api_key"]) > 50
        partner = db.get(Partner, out["partner_id"])
        assert (partner.plan_dashboards, partner.plan_users, partner.plan_published_links) == (20, 5, 3)
        assert partner.plan_api_calls_per_day == 1000
        assert partner.timezone == "Europe/Paris"
        assert (str(partner.dashboard_price), str(partner.user_price), partner.currency) == (
            "12.50",
            "4.00",
            "EUR",
        )
        admin = db.get(PartnerUser, out["admin_user_id"])
        assert admin.email == "boss@acme.test" and admin.role == "admin"
        assert verify_password(out["admin_password"], admin.password_hash)

    def test_pools_default_to_unlimited_and_a_given_password_is_not_printed(
        self, database_url, database, tmp_path
    ):
        result = tenantry(
            "partner", "create", "Plain", "--admin-email", "p@plain.test", "--admin-password", "s3cret-pass",
            url=database_url, cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        out = json.loads(result.stdout)
        assert "admin_password" not in out
        with_key = {"Authorization": f"Bearer {out['api_key']}"}
        from fastapi.testclient import TestClient

        from tenantry.app import create_app
        from tenantry.settings import Settings

        with TestClient(
            create_app(
                Settings(database_url=database_url, data_dir=tmp_path, _env_file=None), database=database
            )
        ) as http:  # type: ignore[call-arg]
            pool = http.get("/api/1/partner", headers=with_key).json()["pool"]
        assert {r: line["total"] for r, line in pool.items()} == {
            "dashboards": -1, "users": -1, "published_links": -1, "api_calls_per_day": -1
        }  # fmt: skip

    @pytest.mark.parametrize(
        ("args", "reason"),
        [
            (["--admin-email", "not-an-email"], "is not an e-mail address"),
            (["--admin-email", "a@b.test", "--timezone", "Mars/Olympus"], "Unknown timezone"),
            (["--admin-email", "a@b.test", "--dashboards", "-2"], "must be -1 (unlimited)"),
            (["--admin-email", "a@b.test", "--dashboard-price", "ten"], "must be an amount"),
            (["--admin-email", "a@b.test", "--currency", "EURO"], "three-letter code"),
            # Letters of other scripts: "ß" would be stored upper-cased as "SS".
            (["--admin-email", "a@b.test", "--currency", "ßßß"], "three-letter code"),
            (["--admin-email", "a@b.test", "--currency", "ÄÖÜ"], "three-letter code"),
            (["--admin-email", "a@b.test", "--users", "0"], "room for at least one user"),
        ],
    )
    def test_bad_input_exits_non_zero_with_a_one_line_reason(
        self, database_url, database, tmp_path, db, args, reason
    ):
        result = tenantry("partner", "create", "Bad", *args, url=database_url, cwd=tmp_path)
        assert result.returncode != 0
        assert reason in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert db.scalars(select(Partner)).all() == []

    @pytest.mark.parametrize(
        ("args", "reason"),
        [
            # Decimal reads these, but no price is that large (nor can it be rounded to cents).
            (["--dashboard-price", "1e40"], "--dashboard-price must be an amount from 0.00 to 9999999999.99"),
            (["--user-price", "10000000000"], "--user-price must be an amount from 0.00 to 9999999999.99"),
            (["--user-price", "NaN"], "--user-price must be an amount from 0.00"),
            (["--dashboard-price", "-Infinity"], "--dashboard-price must be an amount from 0.00"),
            # Pool totals beyond what a 64-bit binding, or the plan's 32-bit column, holds.
            (["--dashboards", "99999999999999999999999"], "--dashboards must be -1 (unlimited) or a number"),
            (["--api-calls-per-day", "2000000001"], "--api-calls-per-day must be -1 (unlimited) or a number"),
            # A trial that long ends on no date a client could be given (every client in Trial a 500).
            (["--trial-days", "99999999999"], "--trial-days must be a number of days from 1 to 3650"),
            (["--trial-days", "0"], "--trial-days must be a number of days from 1 to 3650"),
            (["--trial-extension-days", "3651"], "--trial-extension-days must be a number of days from 0"),
        ],
    )
    def test_a_number_out_of_range_is_refused_in_one_line_naming_its_option(
        self, database_url, database, tmp_path, db, args, reason
    ):
        result = tenantry(
            "partner", "create", "Bad", "--admin-email", "a@b.test", *args, url=database_url, cwd=tmp_path
        )
        assert result.returncode == 2
        assert "Traceback" not in result.stderr, result.stderr[-600:]
        assert result.stderr.startswith(f"error: {reason}")
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr[-600:]
        assert db.scalars(select(Partner)).all() == []

    def test_the_longest_trials_and_highest_prices_are_accepted(self, database_url, database, tmp_path, db):
        result = tenantry(
            "partner", "create", "Edge", "--admin-email", "edge@b.test", "--trial-days", "3650",
            "--trial-extension-days", "3650", "--dashboard-price", "9999999999.99", "--users", "2000000000",
            url=database_url, cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        partner = db.get(Partner, json.loads(result.stdout)["partner_id"])
        assert (partner.trial_days, partner.trial_extension_days, partner.plan_users) == (
            3650,
            3650,
            2_000_000_000,
        )
        assert str(partner.dashboard_price) == "9999999999.99"

    def test_a_second_partner_with_the_same_admin_email_is_refused(self, database_url, database, tmp_path):
        assert (
            tenantry(
                "partner", "create", "One", "--admin-email", "a@b.test", url=database_url, cwd=tmp_path
            ).returncode
            == 0
        )
        again = tenantry(
            "partner", "create", "Two", "--admin-email", "a@b.test", url=database_url, cwd=tmp_path
        )
        assert again.returncode != 0
        assert "already exists" in again.stderr

    def test_an_unmigrated_database_is_named_as_the_problem(self, tmp_path):
        result = tenantry(
            "partner", "create", "X", "--admin-email", "a@b.test", url="sqlite:///empty.db", cwd=tmp_path
        )
        assert result.returncode != 0
        assert "tenantry db upgrade" in result.stderr


def test_demo_loads_a_client_in_every_status_once(database_url, database, tmp_path, db):
    from tenantry.db.models import Client

    first = tenantry("demo", "--if-empty", url=database_url, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "tnt_" in first.stdout
    statuses = {c.status for c in db.scalars(select(Client))}
    assert statuses == {"setup", "trial", "active", "disabled"}
    second = tenantry("demo", "--if-empty", url=database_url, cwd=tmp_path)
    assert second.returncode == 0
    assert "not loaded" in second.stdout
    assert len(db.scalars(select(Partner)).all()) == 1


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        # Beyond 64 bits: no partner has that id, and SQLite could not even bind it.
        (
            ["statement", "2024-01", "--partner", "99999999999999999999999"],
            "--partner must be a partner's id",
        ),
        # NaN passes a `<= 0` check, and then fails in timedelta.
        (["worker", "--lease-seconds", "nan"], "--lease-seconds must be a number of seconds above 0"),
        (["worker", "--lease-seconds", "inf"], "--lease-seconds must be a number of seconds above 0"),
        (["worker", "--lease-seconds", "1e300"], "--lease-seconds must be a number of seconds above 0"),
        (["worker", "--lease-seconds", "0"], "--lease-seconds must be a number of seconds above 0"),
        (["worker", "--poll-seconds", "nan"], "--poll-seconds must be a number of seconds above 0"),
        (["worker", "--poll-seconds", "-1"], "--poll-seconds must be a number of seconds above 0"),
        (["worker", "--batch", "99999999999999999999999"], "--batch must be a number from 1 to 1000"),
        (["worker", "--concurrency", "0"], "--concurrency must be a number from 1 to 256"),
        (["worker", "--metrics-port", "70000"], "--metrics-port must be a port from 1 to 65535"),
        (["serve", "--port", "70000"], "--port must be a port from 0 to 65535"),
        (["serve", "--workers", "0"], "--workers must be a number from 1 to 256"),
    ],
)
def test_a_number_option_out_of_range_ends_any_command_in_one_line_naming_it(
    database_url, database, tmp_path, args, reason
):
    result = tenantry(*args, url=database_url, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr, result.stderr[-600:]
    assert result.stderr.startswith(f"error: {reason}")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr[-600:]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["worker", "--batch", "x"], "error: Invalid value for '--batch': Input should be a valid integer"),
        (["partner", "create"], "error: Missing argument 'name'."),
        (["nonsense"], "error: No such command 'nonsense'."),
        (["statement", "2026-01", "--no-such-option"], "error: No such option: --no-such-option"),
    ],
)
def test_bad_usage_ends_in_one_line_too(tmp_path, args, line):
    result = tenantry(*args, url="sqlite:///unused.db", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(line)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr[-600:]
    assert result.stdout == ""


def test_a_group_named_alone_shows_its_help_and_help_still_works(tmp_path):
    alone = tenantry("partner", url="sqlite:///unused.db", cwd=tmp_path)
    assert alone.returncode == 2
    assert "Usage: tenantry partner" in alone.stdout + alone.stderr
    asked = tenantry("--help", url="sqlite:///unused.db", cwd=tmp_path)
    assert asked.returncode == 0
    assert "Usage: tenantry" in asked.stdout


@pytest.mark.parametrize(
    "problem",
    [
        OverflowError("Python int too large to convert to SQLite INTEGER"),
        DataError("INSERT …", {}, Exception("integer out of range\nDETAIL: more")),
    ],
    ids=["overflow", "data error"],
)
def test_a_value_the_database_cannot_hold_is_a_one_line_reason_not_a_traceback(problem):
    # The safety net behind the options' own bounds: the driver refusing a value ends the command.
    reason = _database_problem(problem)
    assert len(reason.splitlines()) == 1
    assert reason.startswith(("a number is too large for the database", "a value the database cannot hold"))
