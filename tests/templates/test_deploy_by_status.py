"""Deploying a template to every client in a status (SPEC §3, §15): the status is the effective one
at the request's clock. `trial_expired` is never stored (a stored `trial` whose end has passed), so
"Trial ended" finds exactly the trials that have ended and "Trial" only those still running, in
the API's filter and in the console alike."""

from __future__ import annotations

import pytest

from tests.content import make_client
from tests.factories import csrf_of
from tests.templates.test_api import create, deploy, instances


@pytest.fixture
def trials(http, partner, clock):
    """(ended, running): a client whose trial has ended, and one whose trial runs on."""
    ended = make_client(http, partner, "trial")
    clock.advance(days=15)  # past the plan's 14 trial days
    running = make_client(http, partner, "trial")
    make_client(http, partner, "setup")
    return ended, running


def chosen(text: str, client_id: int) -> bool:
    """Whether a console page lists the client to deploy to (a checkbox or a confirmed id)."""
    return f'name="client_ids" value="{client_id}"' in text


class TestTheApisFilter:
    def test_a_filter_on_trial_expired_deploys_to_every_client_whose_trial_has_ended(
        self, http, partner, trials
    ):
        ended, _ = trials
        made = create(http, partner)
        answer = deploy(http, partner, made["id"], filter={"status": "trial_expired"})
        assert [d["client_id"] for d in answer["deployed"]] == [ended]
        assert answer["skipped"] == []
        assert [i["client_id"] for i in instances(http, partner, made["id"])] == [ended]

    def test_a_filter_on_trial_leaves_out_the_clients_whose_trial_has_ended(self, http, partner, trials):
        _, running = trials
        made = create(http, partner)
        answer = deploy(http, partner, made["id"], filter={"status": "trial"})
        assert [d["client_id"] for d in answer["deployed"]] == [running]
        assert [i["client_id"] for i in instances(http, partner, made["id"])] == [running]

    def test_an_unknown_status_is_a_422_and_deploys_nothing(self, http, partner, trials):
        made = create(http, partner)
        response = http.post(
            f"/api/1/templates/{made['id']}/deploy",
            json={"filter": {"status": "expired"}},
            headers=partner.headers,
        )
        assert response.status_code == 422, response.text
        assert instances(http, partner, made["id"]) == []


class TestTheConsole:
    """Signed in (`partner_session`) after the clock has moved, so the session is a fresh one."""

    def test_all_in_trial_ended_deploys_to_every_client_whose_trial_has_ended(
        self, http, partner, trials, partner_session
    ):
        ended, running = trials
        made = create(http, partner)
        page = http.get(f"/partner/templates/{made['id']}")
        assert 'value="trial_expired">All in Trial ended' in page.text
        dry = http.post(
            f"/partner/templates/{made['id']}/deploy",
            data={"csrf_token": csrf_of(page.text), "all_status": "trial_expired"},
            follow_redirects=False,
        )
        assert dry.status_code == 200, (dry.status_code, dry.headers.get("location"))
        assert chosen(dry.text, ended) and not chosen(dry.text, running)
        assert dry.text.count("Would deploy") == 1
        assert instances(http, partner, made["id"]) == []  # a dry run changes nothing
        confirmed = http.post(
            f"/partner/templates/{made['id']}/deploy/confirm",
            data={"csrf_token": csrf_of(dry.text), "client_ids": [str(ended)]},
        )
        assert "Deployed to 1 client." in confirmed.text
        assert [i["client_id"] for i in instances(http, partner, made["id"])] == [ended]

    def test_all_in_trial_leaves_out_the_clients_whose_trial_has_ended(
        self, http, partner, trials, partner_session
    ):
        ended, running = trials
        made = create(http, partner)
        page = http.get(f"/partner/templates/{made['id']}")
        dry = http.post(
            f"/partner/templates/{made['id']}/deploy",
            data={"csrf_token": csrf_of(page.text), "all_status": "trial"},
            follow_redirects=False,
        )
        assert dry.status_code == 200, (dry.status_code, dry.headers.get("location"))
        assert chosen(dry.text, running) and not chosen(dry.text, ended)
        assert dry.text.count("Would deploy") == 1
        assert instances(http, partner, made["id"]) == []

    def test_the_client_list_shows_an_ended_trial_under_trial_ended_and_not_under_trial(
        self, http, partner, trials, partner_session
    ):
        ended, running = trials
        made = create(http, partner)
        under_trial = http.get(f"/partner/templates/{made['id']}?status=trial").text
        assert chosen(under_trial, running) and not chosen(under_trial, ended)
        under_ended = http.get(f"/partner/templates/{made['id']}?status=trial_expired").text
        assert chosen(under_ended, ended) and not chosen(under_ended, running)

    def test_all_in_trial_ended_without_such_a_client_is_refused_in_a_sentence(
        self, http, partner, partner_session
    ):
        make_client(http, partner, "trial")
        made = create(http, partner)
        page = f"/partner/templates/{made['id']}"
        refused = http.post(
            f"{page}/deploy", data={"csrf_token": csrf_of(http.get(page).text), "all_status": "trial_expired"}
        )
        assert refused.url.path == page and "No client is in Trial ended." in refused.text
        assert instances(http, partner, made["id"]) == []
