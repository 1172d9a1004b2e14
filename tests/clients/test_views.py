"""A client's view, and `GET /api/1/me`'s, kept as JSON: the same answer as the model made afresh,
at every moment of the trial clock (SPEC §5), made once while nothing it shows changes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel

from tenantry.auth.principal import Principal
from tenantry.clients.schemas import ClientOut, client_json
from tenantry.fields import KeptJson
from tenantry.users.repository import OwnClient
from tenantry.users.service import me_json, me_of

DAY = timedelta(days=1)
START = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
END = START + 14 * DAY


@dataclass(frozen=True)
class Row:
    """A client as `read_client` reads it (the fields `ClientOut.of` reads)."""

    id: int = 7
    name: str = "Acme"
    description: str = ""
    external_id: str | None = "acme-1"
    timezone: str | None = "Europe/Paris"
    status: str = "trial"
    trial_started_at: datetime | None = START
    trial_ends_at: datetime | None = END
    trial_extended_at: datetime | None = None
    alloc_dashboards: int = 2
    alloc_users: int = 3
    alloc_published_links: int = 1
    alloc_api_calls_per_day: int = 1000
    usage_dashboards: int = 1
    usage_users: int = 1
    usage_published_links: int = 0
    created_at: datetime = START
    last_sign_in: datetime | None = None


CLIENT_USER = Principal(kind="client_user", partner_id=3, user_id=11, role="admin", client_id=7)
PARTNER_USER = Principal(kind="partner_user", partner_id=3, user_id=5, role="editor")

# Moments of the trial clock where what a view shows changes, and either side of them.
MOMENTS = [
    pytest.param(START, id="the trial's first second"),
    pytest.param(START + DAY - timedelta(seconds=1), id="a second before a day is used up"),
    pytest.param(START + DAY, id="a day used up"),
    pytest.param(END - timedelta(seconds=1), id="a second before the end"),
    pytest.param(END, id="the end, to the second"),
    pytest.param(END + 3 * DAY, id="days after the end"),
]
ROWS = [
    pytest.param(Row(), id="in trial"),
    pytest.param(Row(trial_extended_at=START + DAY, trial_ends_at=END + 14 * DAY), id="extended"),
    pytest.param(Row(status="active"), id="active after a trial"),
    pytest.param(Row(status="setup", trial_started_at=None, trial_ends_at=None), id="never in trial"),
    pytest.param(Row(status="disabled", last_sign_in=START + DAY), id="disabled"),
]


def fresh(model: BaseModel) -> bytes:
    return model.__pydantic_serializer__.to_json(model, by_alias=True)


@pytest.mark.parametrize("now", MOMENTS)
@pytest.mark.parametrize("row", ROWS)
def test_a_client_kept_as_json_is_the_view_made_afresh_at_every_moment_of_its_trial(row, now):
    assert client_json(row, now, 41) == fresh(ClientOut.of(row, now, api_calls_today=41))


def test_a_client_is_viewed_once_while_nothing_it_shows_changes():
    row = Row()
    first = client_json(row, START + timedelta(hours=1), 5)
    assert client_json(row, START + timedelta(hours=2), 5) is first  # the same day of the trial
    assert client_json(Row(), START + timedelta(hours=1), 5) is first  # the same values, another row
    assert client_json(row, START + timedelta(hours=1), 6) is not first  # one more call today
    assert client_json(replace(row, alloc_users=4), START + timedelta(hours=1), 5) is not first


def test_a_kept_view_follows_the_clock_across_the_end_of_the_trial():
    row = Row()
    before = ClientOut.model_validate_json(client_json(row, END - timedelta(seconds=1), 0))
    after = ClientOut.model_validate_json(client_json(row, END, 0))
    assert (before.effective_status, before.trial and before.trial.days_remaining) == ("trial", 1)
    assert (after.effective_status, after.trial and after.trial.expired) == ("trial_expired", True)


OWN = OwnClient(7, "Acme", "trial", START, END, None)


@pytest.mark.parametrize("now", MOMENTS)
@pytest.mark.parametrize(
    ("user", "own", "caller"),
    [
        pytest.param((11, "a@client.test", "Ann", "admin"), OWN, CLIENT_USER, id="a client user"),
        pytest.param(
            (11, "a@client.test", "Ann", "admin"), OWN._replace(status="active"), CLIENT_USER, id="active"
        ),
        pytest.param((5, "p@partner.test", "Pat", "editor"), None, PARTNER_USER, id="a partner user"),
    ],
)
def test_me_kept_as_json_is_the_answer_made_afresh(user, own, caller, now):
    assert me_json(user, own, caller, now) == fresh(me_of(user, own, caller, now))


def test_me_is_made_again_when_the_user_or_the_clock_shows_something_else():
    user = (11, "a@client.test", "Ann", "admin")
    first = me_json(user, OWN, CLIENT_USER, START)
    assert me_json(user, OWN, CLIENT_USER, START + timedelta(minutes=1)) is first
    assert me_json((11, "a@client.test", "Ann B", "admin"), OWN, CLIENT_USER, START) is not first
    assert me_json(user, OWN, CLIENT_USER, START + DAY) is not first


class Count(BaseModel):
    n: int


def test_kept_json_keeps_at_most_its_limit_and_makes_each_key_once():
    kept, made = KeptJson(limit=3), []

    def make(n: int) -> Count:
        made.append(n)
        return Count(n=n)

    assert [kept.json(n, lambda n=n: make(n)) for n in (1, 2, 1, 3, 2)] == [
        b'{"n":1}',
        b'{"n":2}',
        b'{"n":1}',
        b'{"n":3}',
        b'{"n":2}',
    ]
    assert made == [1, 2, 3]
    kept.json(4, lambda: make(4))  # a fourth: all are dropped, then it is kept
    kept.json(1, lambda: make(1))
    assert made == [1, 2, 3, 4, 1]
    assert len(kept._kept) <= 3
