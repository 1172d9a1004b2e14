"""Changing many clients' status at once (SPEC §15): all or nothing, the pool checked once."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from tenantry.db.models import AuditEvent, Client, Event, StatusChange
from tests.factories import add_user, key_for, new_client


def bulk(
    http, partner, client_ids: list[int], status: str, headers: dict[str, str] | None = None, **extra: Any
):
    return http.post(
        "/api/1/clients/bulk-status",
        json={"client_ids": client_ids, "status": status, **extra},
        headers=headers or partner.headers,
    )


def state(db) -> tuple[Any, ...]:
    """The clients' statuses and everything a status change writes: equal means nothing changed."""
    db.rollback()
    statuses = tuple(db.execute(select(Client.id, Client.status).order_by(Client.id)).all())
    counts = tuple(db.scalar(select(func.count()).select_from(m)) for m in (StatusChange, AuditEvent, Event))
    return statuses, counts


def pool_of(http, partner) -> dict[str, Any]:
    return http.get("/api/1/partner", headers=partner.headers).json()["pool"]


def status_of(http, partner, client_id: int) -> str:
    return str(http.get(f"/api/1/clients/{client_id}", headers=partner.headers).json()["status"])


class TestAnAllowedBulkChange:
    def test_every_client_moves_and_the_answer_says_what_happened_to_each(self, http, partner, db):
        a, b = new_client(http, partner, "setup"), new_client(http, partner, "trial")
        response = bulk(http, partner, [a, b], "disabled", reason="Unpaid")
        assert response.status_code == 200, response.text
        assert response.json()["clients"] == [
            {"client_id": a, "from": "setup", "to": "disabled", "changed": True},
            {"client_id": b, "from": "trial", "to": "disabled", "changed": True},
        ]
        assert (status_of(http, partner, a), status_of(http, partner, b)) == ("disabled", "disabled")
        history = http.get(f"/api/1/clients/{b}/history", headers=partner.headers).json()["items"]
        assert (history[-1]["to"], history[-1]["reason"]) == ("disabled", "Unpaid")
        assert response.json()["pool_after"] == pool_of(http, partner)

    def test_a_client_already_in_the_status_is_left_as_it_is(self, http, partner, db):
        a = new_client(http, partner, "active")
        changes = db.scalar(select(func.count()).select_from(StatusChange))
        body = bulk(http, partner, [a], "active").json()
        assert body["clients"] == [{"client_id": a, "from": "active", "to": "active", "changed": False}]
        db.rollback()
        assert db.scalar(select(func.count()).select_from(StatusChange)) == changes

    def test_a_dry_run_answers_the_same_and_changes_nothing(self, http, partner, db):
        a = new_client(http, partner, "setup", dashboards=2, users=1)
        before, pool_before = state(db), pool_of(http, partner)
        body = bulk(http, partner, [a], "active", dry_run=True).json()
        assert body["clients"] == [{"client_id": a, "from": "setup", "to": "active", "changed": True}]
        assert body["pool_after"]["dashboards"]["remaining"] == pool_before["dashboards"]["remaining"] - 2
        assert (state(db), pool_of(http, partner)) == (before, pool_before)


def _fill(http, partner, dashboards: int) -> int:
    return new_client(http, partner, "setup", dashboards=dashboards, users=1)


# (what is asked, status, code): each refused; no client changes.
REFUSALS = [
    ("a trial client back to setup", "setup", 409, "invalid_transition"),
    ("a client without a user allocated to active", "active", 409, "activation_requirements_unmet"),
    ("more than the pool holds, all together", "trial", 409, "pool_exhausted"),
]


class TestARefusedBulkChange:
    @pytest.mark.parametrize(("case", "target", "status", "code"), REFUSALS)
    def test_a_refusal_names_the_client_and_changes_nothing(
        self, http, partner, db, case, target, status, code
    ):
        ok = new_client(http, partner, "setup", dashboards=1, users=1)
        if code == "invalid_transition":
            bad = new_client(http, partner, "trial")
        elif code == "activation_requirements_unmet":
            bad = new_client(http, partner, "setup", dashboards=1, users=0)
        else:  # each fits on its own (the plan holds 10 dashboards); together they do not
            ok, bad = _fill(http, partner, 6), _fill(http, partner, 6)
        before, pool_before = state(db), pool_of(http, partner)
        response = bulk(http, partner, [ok, bad], target)
        assert (response.status_code, response.json()["code"]) == (status, code)
        assert response.headers["content-type"] == "application/problem+json"
        if code != "pool_exhausted":
            assert response.json()["client_id"] == bad
        assert (state(db), pool_of(http, partner)) == (before, pool_before)
        assert bulk(http, partner, [ok, bad], target, dry_run=True).status_code == status

    def test_another_partners_client_is_not_found_and_nothing_changes(self, http, partner, make_partner, db):
        other = make_partner()
        mine, theirs = new_client(http, partner, "setup"), new_client(http, other, "setup")
        before = state(db)
        response = bulk(http, partner, [mine, theirs], "disabled")
        assert (response.status_code, response.json()["client_ids"]) == (404, [theirs])
        assert state(db) == before

    def test_client_users_cannot_change_statuses_in_bulk(self, http, partner, db):
        client_id = new_client(http, partner, "trial")
        user = add_user(http, partner, client_id, "admin@client.test")
        headers = key_for(http, partner, client_id, user["id"])
        before = state(db)
        response = bulk(http, partner, [client_id], "disabled", headers=headers)
        assert response.status_code in (403, 404)
        assert state(db) == before

    @pytest.mark.parametrize(
        "body",
        [
            {"client_ids": [], "status": "active"},
            {"client_ids": [1], "status": "paused"},
            {"client_ids": ["1"], "status": "active"},
            {"client_ids": [1], "status": "active", "colour": "red"},
            {"client_ids": [2**63], "status": "active"},
        ],
    )
    def test_a_malformed_request_is_refused_naming_the_field(self, http, partner, db, body):
        before = state(db)
        response = http.post("/api/1/clients/bulk-status", json=body, headers=partner.headers)
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"
        assert state(db) == before
