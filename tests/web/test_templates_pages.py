"""Templates in the console (/partner/templates): captured from a dashboard, deployed after a dry
run to exactly the clients confirmed, copies updated (with force for a hand-edited one) or
detached, deleted. Another partner's ids are not found; a client user, a partner signed in as a
client and a form without its token change nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.content import create_dashboard, inline_source
from tests.factories import PASSWORD, add_partner_viewer, add_user, csrf_of, enter, new_client, sign_in

KLIPS = [
    {"title": "Total", "kind": "value", "columns": {"value": "sales"}},
    {"title": "By month", "kind": "bar", "columns": {"x": "month", "y": "sales"}},
]


def own_dashboard(http: Any, partner: Any) -> int:
    source_id = inline_source(http, partner, None)
    response = create_dashboard(http, partner, None, source_id, KLIPS, name="Starter")
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def templates_of(http: Any, partner: Any) -> list[dict[str, Any]]:
    return list(http.get("/api/1/templates", headers=partner.headers).json()["items"])


def instances(http: Any, partner: Any, template_id: int) -> list[dict[str, Any]]:
    return list(http.get(f"/api/1/templates/{template_id}/instances", headers=partner.headers).json())


def capture(http: Any, partner: Any) -> int:
    dashboard_id = own_dashboard(http, partner)
    page = http.get("/partner/templates")
    answer = http.post(
        "/partner/templates/capture",
        data={"dashboard_id": str(dashboard_id), "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    (template,) = templates_of(http, partner)
    assert answer.headers["location"] == f"/partner/templates/{template['id']}"
    return int(template["id"])


def form(http: Any, path: str, page: str, **fields: Any) -> Any:
    return http.post(path, data={"csrf_token": csrf_of(http.get(page).text), **fields})


@pytest.mark.usefixtures("partner_session")
class TestTheTemplatesPages:
    def test_the_console_menu_links_the_templates_page(self, http):
        assert 'href="/partner/templates"' in http.get("/partner").text

    def test_a_captured_dashboard_is_listed_with_its_version_and_instances(self, http, partner):
        template_id = capture(http, partner)
        listed = http.get("/partner/templates").text
        assert f'href="/partner/templates/{template_id}"' in listed and "Starter" in listed
        shown = http.get(f"/partner/templates/{template_id}")
        assert shown.status_code == 200 and "Version 1" in shown.text and "2 klips" in shown.text

    def test_a_deployment_is_a_dry_run_first_and_the_confirmation_deploys_exactly_that_selection(
        self, http, partner
    ):
        template_id = capture(http, partner)
        roomy = new_client(http, partner, "trial")
        full = new_client(http, partner, "trial", dashboards=0)
        left_out = new_client(http, partner, "trial")
        page = f"/partner/templates/{template_id}"
        dry = form(http, f"{page}/deploy", page, client_ids=[str(roomy), str(full)])
        assert dry.status_code == 200 and "Would deploy" in dry.text
        assert "allocation_exceeded" in dry.text
        assert instances(http, partner, template_id) == []  # a dry run changes nothing
        confirmed = http.post(
            f"{page}/deploy/confirm",
            data={"csrf_token": csrf_of(dry.text), "client_ids": [str(roomy), str(full)]},
        )
        assert confirmed.url.path == page and "Deployed to 1 client." in confirmed.text
        assert [i["client_id"] for i in instances(http, partner, template_id)] == [roomy]
        assert left_out not in {i["client_id"] for i in instances(http, partner, template_id)}

    def test_all_the_clients_in_a_status_are_picked_when_asked(self, http, partner):
        template_id = capture(http, partner)
        trials = [new_client(http, partner, "trial"), new_client(http, partner, "trial")]
        new_client(http, partner, "setup")
        page = f"/partner/templates/{template_id}"
        dry = form(http, f"{page}/deploy", page, all_status="trial")
        assert dry.text.count("Would deploy") == 2
        http.post(f"{page}/deploy/confirm", data={"csrf_token": csrf_of(dry.text), "client_ids": trials})
        assert sorted(i["client_id"] for i in instances(http, partner, template_id)) == sorted(trials)

    def test_a_hand_edited_copy_is_shown_and_updated_only_with_force(self, http, partner):
        template_id = capture(http, partner)
        client_id = new_client(http, partner, "trial")
        page = f"/partner/templates/{template_id}"
        http.post(
            f"{page}/deploy/confirm",
            data={"csrf_token": csrf_of(http.get(page).text), "client_ids": [str(client_id)]},
        )
        (dashboard,) = http.get(f"/api/1/clients/{client_id}/dashboards", headers=partner.headers).json()[
            "items"
        ]
        edited = http.patch(
            f"/api/1/dashboards/{dashboard['id']}", json={"name": "Mine now"}, headers=partner.headers
        )
        assert edited.status_code == 200, edited.text
        assert instances(http, partner, template_id)[0]["drift"] is True
        refused = form(http, f"{page}/update", page, client_ids=[str(client_id)])
        assert "drift" in refused.text and instances(http, partner, template_id)[0]["drift"] is True
        forced = form(http, f"{page}/update", page, client_ids=[str(client_id)], force="yes")
        assert "Updated the copies of 1 client." in forced.text
        assert instances(http, partner, template_id)[0]["drift"] is False

    def test_a_detached_copy_is_shown_detached_and_a_deleted_template_leaves_the_copies(self, http, partner):
        template_id = capture(http, partner)
        client_id = new_client(http, partner, "trial")
        page = f"/partner/templates/{template_id}"
        http.post(
            f"{page}/deploy/confirm",
            data={"csrf_token": csrf_of(http.get(page).text), "client_ids": [str(client_id)]},
        )
        (dashboard,) = http.get(f"/api/1/clients/{client_id}/dashboards", headers=partner.headers).json()[
            "items"
        ]
        detached = form(http, f"{page}/detach", page, dashboard_id=str(dashboard["id"]))
        assert "is detached" in detached.text and instances(http, partner, template_id)[0]["detached"] is True
        deleted = form(http, f"{page}/delete", page)
        assert deleted.url.path == "/partner/templates" and templates_of(http, partner) == []
        assert (
            len(http.get(f"/api/1/clients/{client_id}/dashboards", headers=partner.headers).json()["items"])
            == 1
        )

    def test_a_dry_run_without_a_client_is_refused_in_a_sentence(self, http, partner):
        template_id = capture(http, partner)
        page = f"/partner/templates/{template_id}"
        refused = form(http, f"{page}/deploy", page)
        assert refused.url.path == page and "Select at least one client" in refused.text

    @pytest.mark.parametrize("bad", ["abc", "-1", "1e3", "9" * 30])
    def test_a_malformed_client_id_is_refused_in_a_sentence_and_deploys_nothing(self, http, partner, bad):
        template_id = capture(http, partner)
        page = f"/partner/templates/{template_id}"
        refused = form(http, f"{page}/deploy/confirm", page, client_ids=[bad])
        assert refused.url.path == page and 'role="alert"' in refused.text
        assert instances(http, partner, template_id) == []

    def test_forms_without_their_csrf_token_are_refused_and_change_nothing(self, http, partner):
        template_id = capture(http, partner)
        client_id = new_client(http, partner, "trial")
        page = f"/partner/templates/{template_id}"
        for path, data in [
            (f"{page}/deploy/confirm", {"client_ids": [str(client_id)]}),
            (f"{page}/delete", {}),
            ("/partner/templates/capture", {"dashboard_id": "1"}),
        ]:
            answer = http.post(path, data=data, follow_redirects=False)
            assert answer.status_code == 403, path
        assert instances(http, partner, template_id) == [] and len(templates_of(http, partner)) == 1


class TestAnotherPartnersIds:
    def test_another_partners_template_is_not_found_and_untouched(
        self, http, partner, make_partner, partner_session
    ):
        other = make_partner(dashboards=10, users=10, published_links=10, api_calls_per_day=1000)
        dashboard_id = own_dashboard(http, other)
        theirs = http.post(f"/api/1/templates/from-dashboard/{dashboard_id}", headers=other.headers).json()[
            "id"
        ]
        mine = new_client(http, partner, "trial")
        assert http.get(f"/partner/templates/{theirs}").status_code == 404
        page = "/partner/templates"
        for path, data in [
            (f"/partner/templates/{theirs}/deploy/confirm", {"client_ids": [str(mine)]}),
            (f"/partner/templates/{theirs}/delete", {}),
            ("/partner/templates/capture", {"dashboard_id": str(dashboard_id)}),
        ]:
            answer = form(http, path, page, **data)
            assert "No template" in answer.text or "No dashboard" in answer.text, path
        assert len(templates_of(http, other)) == 1 and templates_of(http, partner) == []

    def test_another_partners_client_is_skipped_as_not_found(
        self, http, partner, make_partner, partner_session
    ):
        other = make_partner(dashboards=10, users=10, published_links=10, api_calls_per_day=1000)
        theirs = new_client(http, other, "trial")
        template_id = capture(http, partner)
        page = f"/partner/templates/{template_id}"
        dry = form(http, f"{page}/deploy", page, client_ids=[str(theirs)])
        assert "not_found" in dry.text and "Would deploy" not in dry.text
        form(http, f"{page}/deploy/confirm", page, client_ids=[str(theirs)])
        assert instances(http, partner, template_id) == []
        assert http.get(f"/api/1/clients/{theirs}/dashboards", headers=other.headers).json()["items"] == []


def test_a_client_user_cannot_reach_the_templates_pages(http, partner):
    client_id = new_client(http, partner, "trial")
    add_user(http, partner, client_id, "user@client.test")
    assert sign_in(http, "user@client.test", PASSWORD).status_code == 303
    answer = http.get("/partner/templates", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/app"


@pytest.mark.parametrize("mode", ["view_only", "admin"])
def test_signed_in_as_a_client_the_partner_changes_nothing_here(http, partner, partner_session, mode):
    template_id = capture(http, partner)
    client_id = new_client(http, partner, "trial")
    csrf = csrf_of(http.get(f"/partner/templates/{template_id}").text)
    assert enter(http, client_id, mode).status_code == 303
    answer = http.post(
        f"/partner/templates/{template_id}/deploy/confirm",
        data={"csrf_token": csrf, "client_ids": [str(client_id)]},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/app"
    assert http.get("/partner/templates", follow_redirects=False).headers["location"] == "/app"
    assert instances(http, partner, template_id) == []


def test_a_partner_viewer_sees_the_templates_without_forms_and_cannot_deploy(http, partner, database, clock):
    dashboard_id = own_dashboard(http, partner)
    template_id = http.post(
        f"/api/1/templates/from-dashboard/{dashboard_id}", headers=partner.headers
    ).json()["id"]
    client_id = new_client(http, partner, "trial")
    add_partner_viewer(database, partner, clock)
    assert sign_in(http, "viewer@partner.test", PASSWORD).status_code == 303
    page = http.get(f"/partner/templates/{template_id}")
    assert page.status_code == 200 and "/deploy" not in page.text
    refused = http.post(
        f"/partner/templates/{template_id}/deploy/confirm",
        data={"csrf_token": csrf_of(page.text), "client_ids": [str(client_id)]},
    )
    assert 'role="alert"' in refused.text and instances(http, partner, template_id) == []
