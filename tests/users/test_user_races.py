"""Users and their keys and invitations changed by requests at once: on PostgreSQL (READ
COMMITTED) the answers must be those SQLite gives, where each write is alone, and never a 500."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tenantry.db.access_models import Invitation
from tests.concurrently import at_once
from tests.factories import PASSWORD, add_user, key_for, new_client

ROUNDS = 12


@pytest.fixture
def partner(make_partner):
    return make_partner(dashboards=-1, users=-1, published_links=-1, api_calls_per_day=-1)


def arranged(server_url, partner, state, *, password=True):
    """A Trial client with one user (with a password, or invited), kept in `state` for the round."""
    with httpx.Client(base_url=server_url, headers=partner.headers, timeout=60) as http:
        client_id = new_client(http, partner, "trial", users=3)
        user = add_user(http, partner, client_id, "k@client.test", password=PASSWORD if password else None)
        state["user"] = f"/api/1/clients/{client_id}/users/{user['id']}"
        state["user_id"] = user["id"]
        if password:
            state["own"] = key_for(http, partner, client_id, user["id"])


def no_500s(answers: list[httpx.Response]) -> list[tuple[int, str]]:
    return [(a.status_code, a.text[:200]) for a in answers if a.status_code >= 500]


class TestAUserRemovedWhileAKeyIsMadeForThem:
    def test_a_partner_making_the_key_gets_404_or_the_key_never_a_500(self, server_url, partner):
        state: dict[str, Any] = {}
        answers = at_once(
            server_url,
            lambda _: partner.headers,
            lambda h, _r, i: (
                h.delete(state["user"])
                if i == 0
                else h.post(f"{state['user']}/api-keys", json={"name": f"k{i}"})
            ),
            threads=4,
            rounds=ROUNDS,
            before=lambda: arranged(server_url, partner, state),
        )
        assert no_500s(answers) == []
        assert {a.status_code for a in answers} <= {201, 204, 404}

    def test_the_user_making_their_own_key_gets_401_or_the_key_never_a_500(self, server_url, partner):
        state: dict[str, Any] = {}
        answers = at_once(
            server_url,
            lambda i: partner.headers if i == 0 else state["own"],
            lambda h, _r, i: (
                h.delete(state["user"]) if i == 0 else h.post("/api/1/me/api-keys", json={"name": f"k{i}"})
            ),
            threads=4,
            rounds=ROUNDS,
            before=lambda: arranged(server_url, partner, state),
        )
        assert no_500s(answers) == []
        assert {a.status_code for a in answers} <= {201, 204, 401}


class TestResendingAnInvitationTwiceAtOnce:
    def test_leaves_one_open_link(self, server_url, partner, db):
        state: dict[str, Any] = {}
        open_links: list[int] = []

        def count_open_links() -> None:
            db.rollback()  # a fresh read: what the server committed since
            query = select(func.count()).select_from(Invitation)
            open_links.append(
                db.scalar(
                    query.where(Invitation.client_user_id == state["user_id"], Invitation.used_at.is_(None))
                )
            )

        at_once(
            server_url,
            lambda _: partner.headers,
            lambda h, _r, _i: h.post(f"{state['user']}/resend-invitation"),
            threads=3,
            rounds=6,
            before=lambda: arranged(server_url, partner, state, password=False),
            after=count_open_links,
        )
        assert open_links == [1] * 6


def test_a_new_key_whose_random_prefix_is_taken_draws_another(http, partner, monkeypatch):
    # One in 2**48: the random source is made to repeat the first key's prefix once.
    first = http.post("/api/1/me/api-keys", json={"name": "one"}, headers=partner.headers)
    assert first.status_code == 201, first.text
    taken, draw = first.json()["prefix"], secrets.token_hex
    repeats = iter([taken])
    monkeypatch.setattr(secrets, "token_hex", lambda n=None: next(repeats, None) or draw(n))
    second = http.post("/api/1/me/api-keys", json={"name": "two"}, headers=partner.headers)
    assert second.status_code == 201, second.text
    assert second.json()["prefix"] != taken
    shown = http.get("/api/1/me/api-keys", headers=partner.headers).json()
    assert shown["total"] == 3  # the partner's own key, and the two
