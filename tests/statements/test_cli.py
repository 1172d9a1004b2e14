"""`tenantry statement YYYY-MM [--partner ID] [--csv]` against the test database."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tenantry.statements.service import COLUMNS
from tests.servers import tenantry


class TestStatementCommand:
    def test_it_prints_the_statement_as_json(self, database_url, tmp_path, billed_partner, http, clock):
        clock.set(datetime(2026, 3, 1, tzinfo=UTC))
        result = tenantry("statement", "2026-02", url=database_url, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        printed = json.loads(result.stdout)
        served = http.get("/api/1/partner/statements/2026-02", headers=billed_partner.headers).json()
        assert printed["lines"] == served["lines"]
        assert (printed["partner_id"], printed["total"]) == (billed_partner.id, "16.96")

    def test_it_prints_csv_with_a_header_row(self, database_url, tmp_path, billed_partner):
        result = tenantry(
            "statement",
            "2026-02",
            "--csv",
            "--partner",
            str(billed_partner.id),
            url=database_url,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        rows = result.stdout.splitlines()
        assert rows[0] == ",".join(COLUMNS)
        assert rows[1].startswith("1,Acme,dashboards,2,19,28,10.00,13.57,")

    def test_with_several_partners_it_asks_which_one(
        self, database_url, tmp_path, billed_partner, make_partner
    ):
        make_partner(name="Second")
        result = tenantry("statement", "2026-02", url=database_url, cwd=tmp_path)
        assert result.returncode == 2
        assert result.stdout == ""
        assert "--partner" in result.stderr
        assert f"{billed_partner.id} (" in result.stderr and "(Second)" in result.stderr
        chosen = tenantry(
            "statement", "2026-02", "--partner", str(billed_partner.id), url=database_url, cwd=tmp_path
        )
        assert chosen.returncode == 0

    @pytest.mark.parametrize("month", ["2026-13", "02-2026", "soon"])
    def test_a_bad_month_exits_2_with_a_one_line_reason(self, database_url, tmp_path, billed_partner, month):
        result = tenantry("statement", month, url=database_url, cwd=tmp_path)
        assert result.returncode == 2
        assert result.stderr.startswith("error: ")
        assert result.stderr.count("\n") == 1

    def test_an_unknown_partner_exits_2(self, database_url, tmp_path, billed_partner):
        result = tenantry("statement", "2026-02", "--partner", "999999", url=database_url, cwd=tmp_path)
        assert result.returncode == 2
        assert "No partner 999999" in result.stderr

    def test_without_any_partner_it_says_how_to_make_one(self, database_url, tmp_path, database):
        result = tenantry("statement", "2026-02", url=database_url, cwd=tmp_path)
        assert result.returncode == 2
        assert "tenantry partner create" in result.stderr


class TestPartnerCreatePrices:
    def test_prices_given_at_creation_price_the_statements(self, database_url, tmp_path, http, clock):
        created = tenantry(
            "partner",
            "create",
            "Priced",
            "--admin-email",
            "p@priced.test",
            "--dashboard-price",
            "12.40",
            "--user-price",
            "3",
            "--currency",
            "eur",
            "--timezone",
            "Europe/Paris",
            url=database_url,
            cwd=tmp_path,
        )
        assert created.returncode == 0, created.stderr
        headers = {"Authorization": f"Bearer {json.loads(created.stdout)['api_key']}"}
        body = http.get("/api/1/partner/statements/2020-01", headers=headers).json()
        assert (body["currency"], body["timezone"]) == ("EUR", "Europe/Paris")
        plan = http.get("/api/1/partner", headers=headers).json()["plan"]
        assert (plan["dashboard_price"], plan["user_price"]) == ("12.40", "3.00")
