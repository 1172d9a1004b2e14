"""The command line (SPEC §10), run as a real process from a directory that is not the project's."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from tenantry.auth.secrets import verify_password
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
