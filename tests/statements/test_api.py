"""Statements over HTTP (SPEC §7, §9): histories built through the real API with the FakeClock."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from tenantry.statements.service import COLUMNS
from tests.billing import at, create, lines_of, statement

READY = {"dashboards": 1, "users": 1}


def patch(http, partner, client_id, **body):
    response = http.patch(f"/api/1/clients/{client_id}", json=body, headers=partner.headers)
    assert response.status_code == 200, response.json()
    return response.json()


class TestAClientsMonth:
    def test_setup_trial_extended_trial_active_disabled_active_bills_only_the_active_days(
        self, http, partner, clock
    ):
        at(clock, 2026, 3, 1, 9)
        client_id = create(http, partner, resources={"dashboards": 2, "users": 3})
        at(clock, 2026, 3, 3, 10)
        patch(http, partner, client_id, status="trial")
        at(clock, 2026, 3, 8, 10)
        assert (
            http.post(f"/api/1/clients/{client_id}/extend-trial", headers=partner.headers).status_code == 200
        )
        at(clock, 2026, 3, 12, 15)
        patch(http, partner, client_id, status="active")
        at(clock, 2026, 3, 20, 8)
        patch(http, partner, client_id, status="disabled")
        at(clock, 2026, 3, 25, 18)
        patch(http, partner, client_id, status="active")
        at(clock, 2026, 4, 2)

        body = statement(http, partner, "2026-03").json()
        # Active on March 12-20 and 25-31: 16 days of 31.
        assert lines_of(body) == [("dashboards", 2, 16, "10.32"), ("users", 3, 16, "7.74")]
        assert body["lines"][0] == {
            "client_id": client_id,
            "client_name": "Acme",
            "resource": "dashboards",
            "quantity": 2,
            "billable_days": 16,
            "days_in_month": 31,
            "unit_price": "10.00",
            "amount": "10.32",
            "amount_to_date": "10.32",
            "projected_billable_days": 16,
            "projected_amount": "10.32",
        }
        assert (body["partner_id"], body["month"], body["timezone"], body["currency"]) == (
            partner.id,
            "2026-03",
            "UTC",
            "USD",
        )
        assert (body["total"], body["projected_total"], body["complete"]) == ("18.06", "18.06", True)

    def test_allocation_changes_mid_month_make_a_line_per_quantity(self, http, partner, clock):
        at(clock, 2026, 3, 10, 12)
        client_id = create(http, partner, status="active", resources={"dashboards": 2, "users": 1})
        at(clock, 2026, 3, 15, 10)
        patch(http, partner, client_id, resources={"dashboards": 4})
        at(clock, 2026, 3, 15, 16)
        patch(http, partner, client_id, resources={"dashboards": 3})
        at(clock, 2026, 3, 20, 9)
        patch(http, partner, client_id, resources={"dashboards": 1})
        at(clock, 2026, 4, 1)

        body = statement(http, partner, "2026-03").json()
        assert lines_of(body) == [
            ("dashboards", 2, 5, "3.23"),  # March 10-14
            ("dashboards", 4, 1, "1.29"),  # March 15: the highest held that day
            ("dashboards", 3, 5, "4.84"),  # March 16-20
            ("dashboards", 1, 11, "3.55"),  # March 21-31
            ("users", 1, 22, "3.55"),
        ]
        assert body["total"] == "16.46"

    def test_the_month_in_progress_shows_the_amount_to_date_and_the_projection(self, http, partner, clock):
        at(clock, 2026, 3, 10, 12)
        create(http, partner, status="active", resources=READY)
        create(http, partner, name="Trialist", status="trial", resources=READY)
        at(clock, 2026, 3, 15, 12)

        body = statement(http, partner, "2026-03").json()
        assert [
            (
                line["resource"],
                line["billable_days"],
                line["amount"],
                line["projected_billable_days"],
                line["projected_amount"],
            )
            for line in body["lines"]
        ] == [("dashboards", 6, "1.94", 22, "7.10"), ("users", 6, "0.97", 22, "3.55")]
        assert (body["total"], body["total_to_date"], body["projected_total"]) == ("2.91", "2.91", "10.65")
        assert body["complete"] is False
        assert body["as_of"] == "2026-03-15T12:00:00Z"

    def test_a_month_in_the_partners_timezone_starts_at_its_local_midnight(self, http, partner, clock):
        assert (
            http.patch(
                "/api/1/partner", json={"timezone": "Europe/Paris"}, headers=partner.headers
            ).status_code
            == 200
        )
        # 22:30 UTC on April 30th is already May 1st in Paris (summer time, UTC+2).
        at(clock, 2026, 4, 30, 22, 30)
        client_id = create(http, partner, status="active", resources=READY)
        at(clock, 2026, 4, 30, 23, 30)
        patch(http, partner, client_id, status="disabled")
        at(clock, 2026, 6, 1)
        may = statement(http, partner, "2026-05").json()
        assert may["timezone"] == "Europe/Paris"
        assert lines_of(may) == [("dashboards", 1, 1, "0.32"), ("users", 1, 1, "0.16")]
        assert statement(http, partner, "2026-04").json()["lines"] == []


class TestPastMonthsNeverChange:
    def test_later_status_allocation_price_currency_and_timezone_changes_leave_a_past_month_alone(
        self, http, partner, clock
    ):
        at(clock, 2026, 2, 10, 12)
        client_id = create(http, partner, status="active", resources={"dashboards": 2, "users": 2})
        at(clock, 2026, 3, 1, 0, 30)
        before = statement(http, partner, "2026-02").json()
        assert before["total"] == "20.36"  # 2 × 10 × 19/28 + 2 × 5 × 19/28 = 13.57 + 6.79

        patch(http, partner, client_id, resources={"dashboards": 5})
        patch(http, partner, client_id, status="disabled")
        changed = http.patch(
            "/api/1/partner",
            json={"dashboard_price": "99.00", "user_price": "1.00", "timezone": "Asia/Tokyo"},
            headers=partner.headers,
        )
        assert changed.status_code == 200
        at(clock, 2026, 3, 20)
        assert (
            http.patch("/api/1/partner", json={"currency": "EUR"}, headers=partner.headers).status_code == 200
        )
        clock.advance(days=40)

        after = statement(http, partner, "2026-02").json()
        assert {**after, "as_of": None} == {**before, "as_of": None}

    def test_a_price_change_applies_from_the_day_it_is_made(self, http, partner, clock):
        at(clock, 2026, 3, 1)
        create(http, partner, status="active", resources={"dashboards": 1, "users": 1})
        at(clock, 2026, 3, 20, 10)
        assert (
            http.patch(
                "/api/1/partner", json={"dashboard_price": "20.00"}, headers=partner.headers
            ).status_code
            == 200
        )
        at(clock, 2026, 4, 1)

        body = statement(http, partner, "2026-03").json()
        assert [
            (line["resource"], line["unit_price"], line["billable_days"], line["amount"])
            for line in body["lines"]
        ] == [
            ("dashboards", "10.00", 19, "6.13"),
            ("dashboards", "20.00", 12, "7.74"),
            ("users", "5.00", 31, "5.00"),
        ]

    def test_a_new_timezone_and_currency_apply_from_the_next_month(self, http, partner, clock):
        at(clock, 2026, 3, 20)
        assert (
            http.patch(
                "/api/1/partner", json={"timezone": "Asia/Tokyo", "currency": "eur"}, headers=partner.headers
            ).status_code
            == 200
        )
        march = statement(http, partner, "2026-03").json()
        april = statement(http, partner, "2026-04").json()
        assert (march["timezone"], march["currency"]) == ("UTC", "USD")
        assert (april["timezone"], april["currency"]) == ("Asia/Tokyo", "EUR")

    @pytest.mark.parametrize(
        ("before", "after"),
        [("Pacific/Honolulu", "Pacific/Kiritimati"), ("Pacific/Pago_Pago", "Pacific/Kiritimati")],
    )
    def test_after_a_change_that_swallows_a_local_day_a_client_active_all_month_pays_all_of_it(
        self, http, make_partner, clock, before, after
    ):
        clock.set(datetime(2026, 1, 5, tzinfo=UTC))
        partner = make_partner(dashboards=10, users=10, published_links=10, api_calls_per_day=1000)
        assert (
            http.patch("/api/1/partner", json={"timezone": before}, headers=partner.headers).status_code
            == 200
        )
        at(clock, 2026, 2, 10, 12)
        create(http, partner, status="active", resources={"dashboards": 1, "users": 1})
        at(clock, 2026, 3, 15, 12)  # takes effect when April begins, 24 hours or more later there
        assert (
            http.patch("/api/1/partner", json={"timezone": after}, headers=partner.headers).status_code == 200
        )
        at(clock, 2026, 5, 10)
        april = statement(http, partner, "2026-04").json()
        assert (april["timezone"], april["complete"]) == (after, True)
        assert [
            (line["resource"], line["billable_days"], line["days_in_month"], line["amount"])
            for line in april["lines"]
        ] == [("dashboards", 30, 30, "10.00"), ("users", 30, 30, "5.00")]


class TestFormats:
    def test_csv_has_a_header_row_and_the_same_columns_as_the_json_lines(self, http, partner, clock):
        at(clock, 2026, 3, 10, 12)
        create(http, partner, name="=HYPERLINK(1)", status="active", resources={"dashboards": 2, "users": 1})
        at(clock, 2026, 4, 1)
        body = statement(http, partner, "2026-03").json()
        response = statement(http, partner, "2026-03", Accept="text/csv")
        assert response.headers["content-type"].startswith("text/csv")
        assert (
            response.headers["content-disposition"]
            == f'attachment; filename="statement-{partner.id}-2026-03.csv"'
        )
        rows = list(csv.reader(io.StringIO(response.text)))
        assert rows[0] == list(COLUMNS) == list(body["lines"][0])
        assert len(rows) == 1 + len(body["lines"])
        for row, line in zip(rows[1:], body["lines"], strict=True):
            expected = {k: str(v) for k, v in line.items()}
            # A name that a spreadsheet would run as a formula is written as text.
            expected["client_name"] = "'=HYPERLINK(1)"
            assert dict(zip(COLUMNS, row, strict=True)) == expected

    def test_a_name_cannot_start_a_formula_cell_in_a_spreadsheet_that_splits_on_semicolons(
        self, http, partner, clock
    ):
        # Excel in most of continental Europe splits a .csv on `;`: what follows one inside a
        # name starts a cell there.
        at(clock, 2026, 3, 10, 12)
        create(http, partner, name="Acme;=cmd|' /C calc'!A0; -2", status="active", resources=READY)
        at(clock, 2026, 4, 1)
        text = statement(http, partner, "2026-03", Accept="text/csv").text
        assert "Acme;'=cmd|' /C calc'!A0;' -2" in text
        for cells in csv.reader(io.StringIO(text), delimiter=";"):
            for cell in cells:
                assert not cell.lstrip().startswith(("=", "+", "-", "@")), (cell, text)

    @pytest.mark.parametrize(
        ("accept", "answer"),
        [
            ("text/csv", "text/csv"),
            ("Text/CSV", "text/csv"),  # media types have no case
            ("application/json, text/csv", "text/csv"),
            ("text/csv;q=0.9, */*;q=0.1", "text/csv"),
            ("application/json, text/csv;q=0", "application/json"),  # q=0: not acceptable
            ("text/csv;q=0.5, application/json", "application/json"),
            ("text/csv;q=0.5, application/*;q=0.8", "application/json"),
            ("text/csv;q=abc", "application/json"),
            ("*/*", "application/json"),
            ("text/*", "application/json"),
        ],
    )
    def test_the_accept_header_chooses_csv_only_when_it_wants_csv_at_least_as_much(
        self, http, partner, accept, answer
    ):
        response = statement(http, partner, "2026-03", Accept=accept)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].split(";")[0] == answer

    def test_a_download_link_can_ask_for_csv_in_the_query(self, http, partner):
        response = statement(http, partner, "2026-03", Accept="text/html")
        assert response.headers["content-type"] == "application/json"
        response = http.get("/api/1/partner/statements/2026-03?format=csv", headers=partner.headers)
        assert response.text.splitlines()[0].startswith("client_id,client_name,resource")

    # The last two: a line break after the month, and the month in full-width digits.
    @pytest.mark.parametrize(
        "month",
        [
            "2026-13",
            "2026-3",
            "march",
            "1969-12",
            "2026-03-01",
            "2026-03%0A",
            "%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%96-03",
        ],
    )
    def test_a_malformed_month_is_a_422_problem(self, http, partner, month):
        response = http.get(f"/api/1/partner/statements/{month}", headers=partner.headers)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "validation_error"
        assert "month" in response.json()["detail"]


class TestWhoSeesWhat:
    def test_a_statement_lists_only_the_callers_own_clients(self, http, partner, make_partner, clock):
        create(http, partner, status="active", resources=READY)
        other = make_partner()
        clock.advance(days=30)
        assert statement(http, other, "2026-03").json()["lines"] == []
        assert len(statement(http, partner, "2026-03").json()["lines"]) == 2

    def test_a_statement_needs_a_partner_key(self, http):
        assert http.get("/api/1/partner/statements/2026-03").status_code == 401

    def test_a_viewer_may_read_statements(self, http, partner, add_partner_user):
        viewer = add_partner_user(partner, "viewer")
        assert http.get("/api/1/partner/statements/2026-03", headers=viewer).status_code == 200
