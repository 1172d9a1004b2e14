"""Renaming a client never changes a month that is over (SPEC §7: "a past month never changes"): a
statement names each client as it was named when the month ended."""

from __future__ import annotations

import pytest

from tests.billing import at, create, statement

ACTIVE = {"status": "active", "resources": {"dashboards": 1, "users": 1}}


def rename(http, partner, client_id: int, name: str) -> None:
    response = http.patch(f"/api/1/clients/{client_id}", json={"name": name}, headers=partner.headers)
    assert response.status_code == 200, response.text


def names_of(body) -> list[str]:
    return sorted({line["client_name"] for line in body["lines"]})


class TestRenamingAClient:
    def test_leaves_a_closed_month_exactly_as_it_was(self, http, partner, clock):
        at(clock, 2026, 3, 1, 9)
        acme = create(http, partner, name="Acme", **ACTIVE)
        at(clock, 2026, 4, 2)
        before = statement(http, partner, "2026-03").json()
        csv_before = statement(http, partner, "2026-03", accept="text/csv").text
        assert names_of(before) == ["Acme"]

        rename(http, partner, acme, "Acme Group")

        assert statement(http, partner, "2026-03").json() == before
        assert statement(http, partner, "2026-03", accept="text/csv").text == csv_before
        assert names_of(statement(http, partner, "2026-04").json()) == ["Acme Group"]

    # (when the client was renamed, the month of the statement, the name it shows)
    @pytest.mark.parametrize(
        ("renamed_at", "month", "shown"),
        [
            pytest.param(
                (2026, 3, 15, 12), "2026-03", "Acme Group", id="renamed during the month: the new name"
            ),
            pytest.param((2026, 4, 1, 0), "2026-03", "Acme", id="renamed as the next month began: the old"),
            pytest.param((2026, 3, 31, 23, 59), "2026-03", "Acme Group", id="renamed in its last minute"),
            pytest.param((2026, 5, 3), "2026-04", "Acme", id="renamed after the month: the old name"),
        ],
    )
    def test_a_month_shows_the_name_the_client_had_when_it_ended(
        self, http, partner, clock, renamed_at, month, shown
    ):
        at(clock, 2026, 3, 1, 9)
        acme = create(http, partner, name="Acme", **ACTIVE)
        at(clock, *renamed_at)
        rename(http, partner, acme, "Acme Group")
        at(clock, 2026, 6, 2)
        assert names_of(statement(http, partner, month).json()) == [shown]

    def test_each_month_keeps_its_own_name_through_several_renames(self, http, partner, clock):
        at(clock, 2026, 3, 1, 9)
        acme = create(http, partner, name="Acme", **ACTIVE)
        at(clock, 2026, 4, 10)
        rename(http, partner, acme, "Acme Group")
        at(clock, 2026, 4, 20)
        rename(http, partner, acme, "Acme Holdings")
        at(clock, 2026, 5, 10)
        rename(http, partner, acme, "Northwind")
        at(clock, 2026, 6, 2)
        shown = {
            month: names_of(statement(http, partner, month).json())
            for month in ("2026-03", "2026-04", "2026-05")
        }
        assert shown == {"2026-03": ["Acme"], "2026-04": ["Acme Holdings"], "2026-05": ["Northwind"]}

    def test_a_client_renamed_then_deleted_keeps_each_closed_months_name(self, http, partner, clock):
        at(clock, 2026, 3, 1, 9)
        acme = create(http, partner, name="Acme", **ACTIVE)
        at(clock, 2026, 4, 5)
        rename(http, partner, acme, "Acme Group")
        at(clock, 2026, 4, 20)
        response = http.delete(f"/api/1/clients/{acme}", headers=partner.headers)
        assert response.status_code == 204, response.text
        at(clock, 2026, 5, 2)
        assert names_of(statement(http, partner, "2026-03").json()) == ["Acme"]
        assert names_of(statement(http, partner, "2026-04").json()) == ["Acme Group"]
