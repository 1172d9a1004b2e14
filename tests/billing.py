"""Helpers of the statement tests: histories are built through the real API with the FakeClock
(`at` sets it), and statements read back over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime


def at(clock, *args):
    """Set the FakeClock to the UTC moment `datetime(*args)`."""
    clock.set(datetime(*args, tzinfo=UTC))


def create(http, partner, **body):
    """Create a client with this body (named "Acme" unless given); its id."""
    body.setdefault("name", "Acme")
    response = http.post("/api/1/clients", json=body, headers=partner.headers)
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def statement(http, partner, month, **headers):
    """The partner's statement of `month` (`YYYY-MM`), with `headers` added; it must be served."""
    response = http.get(f"/api/1/partner/statements/{month}", headers={**partner.headers, **headers})
    assert response.status_code == 200, response.text
    return response


def lines_of(body):
    """A statement's lines as (resource, quantity, billable_days, amount)."""
    return [
        (line["resource"], line["quantity"], line["billable_days"], line["amount"]) for line in body["lines"]
    ]
