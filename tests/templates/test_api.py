"""Dashboard templates (SPEC §15): keep, version, deploy to clients, tell hand edits, update, detach."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from tenantry.datasources.request import open_secrets
from tenantry.db.dashboard_models import DataSource
from tenantry.db.models import AuditEvent, Dashboard, Event
from tenantry.db.template_models import Template, TemplateInstance
from tests.content import ROWS, create_dashboard, inline_source, make_client, partner_user_headers
from tests.factories import client_with_user

SALES = {"ref": "sales", "name": "Sales", "kind": "inline", "rows": ROWS}
CRM = {
    "ref": "crm",
    "name": "CRM",
    "kind": "url",
    "url": "https://crm.example.test/{{client.external_id}}/deals.json",
    "format": "json",
    "headers": {"X-Api-Key": "top-secret"},
    "auth": {"type": "bearer", "token": "bearer-secret"},
}
KLIPS = [
    {"title": "Total", "kind": "value", "columns": {"value": "sales"}, "datasource_ref": "sales"},
    {"title": "By month", "kind": "bar", "columns": {"x": "month", "y": "sales"}, "datasource_ref": "sales"},
    {"title": "Notes", "kind": "text", "text": "Read me"},
]


def body(**changes):
    return {
        "name": "Starter",
        "description": "What every client gets",
        "datasources": [SALES, CRM],
        "dashboards": [{"name": "Overview", "klips": KLIPS}],
        **changes,
    }


def create(http, partner, **changes):
    response = http.post("/api/1/templates", json=body(**changes), headers=partner.headers)
    assert response.status_code == 201, response.text
    return response.json()


def deploy(http, partner, template_id, **request):
    response = http.post(f"/api/1/templates/{template_id}/deploy", json=request, headers=partner.headers)
    assert response.status_code == 200, response.text
    return response.json()


def instances(http, partner, template_id):
    response = http.get(f"/api/1/templates/{template_id}/instances", headers=partner.headers)
    assert response.status_code == 200, response.text
    return response.json()


def count(db, model, **where):
    db.expire_all()
    return db.scalar(
        select(func.count()).select_from(model).where(*(getattr(model, k) == v for k, v in where.items()))
    )


def dashboards_of(http, partner, client_id):
    return http.get(f"/api/1/clients/{client_id}/dashboards", headers=partner.headers).json()["items"]


def stored_body(db, template_id):
    db.rollback()  # a fresh read: what the app committed since
    template = db.get(Template, template_id)
    return template.version, template.body


def kept_secrets(db, app, template_id, index):
    """The secrets the template's source at `index` holds, opened."""
    _, stored = stored_body(db, template_id)
    return open_secrets(stored["datasources"][index]["secrets"], app.state.services.vault)


def audit_records(db, action):
    db.rollback()
    return db.execute(
        select(AuditEvent.partner_id, AuditEvent.client_id, AuditEvent.action, AuditEvent.target)
        .where(AuditEvent.action == action)
        .order_by(AuditEvent.client_id)
    ).all()


WAREHOUSE = {
    "ref": "warehouse",
    "name": "Warehouse",
    "kind": "sql",
    "engine": "postgresql",
    "host": "db.example.com",
    "port": 5432,
    "database": "sales",
    "username": "reader",
    "password": "db-secret",
    "query": "SELECT month, total FROM sales",
}
MASKED_CRM = {**CRM, "headers": {"X-Api-Key": "*****"}, "auth": {"type": "bearer", "token": "*****"}}


class TestKeepingATemplate:
    def test_a_new_template_is_version_one_and_reads_back_the_same(self, http, partner):
        made = create(http, partner)
        assert made["version"] == 1
        assert [s["ref"] for s in made["datasources"]] == ["sales", "crm"]
        assert made["dashboards"][0]["klips"][0]["datasource_ref"] == "sales"
        assert http.get(f"/api/1/templates/{made['id']}", headers=partner.headers).json() == made
        listed = http.get("/api/1/templates", headers=partner.headers).json()
        assert [t["id"] for t in listed["items"]] == [made["id"]]
        assert (listed["total"], listed["limit"], listed["offset"]) == (1, 50, 0)

    def test_the_list_is_a_page_like_every_list(self, http, partner):
        made = [create(http, partner, name=f"Starter {n}")["id"] for n in range(3)]
        page = http.get("/api/1/templates?limit=1&offset=1", headers=partner.headers).json()
        assert page == {"items": [page["items"][0]], "total": 3, "limit": 1, "offset": 1}
        assert page["items"][0]["id"] == made[1]
        for bad in ("limit=0", "limit=201", "offset=-1"):
            refused = http.get(f"/api/1/templates?{bad}", headers=partner.headers)
            assert refused.status_code == 422, bad
            assert refused.json()["code"] == "validation_error"

    def test_a_sources_secrets_are_never_shown(self, http, partner):
        made = create(http, partner)
        text = http.get(f"/api/1/templates/{made['id']}", headers=partner.headers).text
        assert "top-secret" not in text and "bearer-secret" not in text
        crm = made["datasources"][1]
        assert crm["config"]["headers"] == {"X-Api-Key": "*****"}
        assert crm["config"]["auth"] == {"type": "bearer", "token": "*****"}

    def test_a_put_stores_the_next_version_and_a_masked_secret_keeps_its_value(self, http, partner, db):
        made = create(http, partner)
        crm = {**CRM, "headers": {"X-Api-Key": "*****"}, "auth": {"type": "bearer", "token": "*****"}}
        response = http.put(
            f"/api/1/templates/{made['id']}",
            json=body(name="Starter 2", datasources=[SALES, crm]),
            headers=partner.headers,
        )
        assert response.status_code == 200, response.text
        assert response.json()["version"] == 2
        assert response.json()["name"] == "Starter 2"
        stored = db.get(Template, made["id"])
        assert stored is not None and stored.body["datasources"][1]["secrets"]

    def test_a_masked_secret_on_a_new_source_is_refused(self, http, partner, db):
        crm = {**CRM, "headers": {"X-Api-Key": "*****"}}
        response = http.post("/api/1/templates", json=body(datasources=[SALES, crm]), headers=partner.headers)
        assert response.status_code == 422
        assert count(db, Template) == 0

    def test_a_deleted_template_is_gone_but_what_it_deployed_stays(self, http, partner, db):
        made = create(http, partner)
        client_id = make_client(http, partner, "setup")
        deploy(http, partner, made["id"], client_ids=[client_id])
        response = http.delete(f"/api/1/templates/{made['id']}", headers=partner.headers)
        assert response.status_code == 204
        assert http.get(f"/api/1/templates/{made['id']}", headers=partner.headers).status_code == 404
        assert len(dashboards_of(http, partner, client_id)) == 1
        assert count(db, TemplateInstance) == 0


class TestKeptSecrets:
    """§14: a secret sent as "*****" keeps the stored one only while the source still points at the
    server it was given for, as a data source's does (`require_same_server`)."""

    @pytest.mark.parametrize(
        "url",
        [
            "https://attacker.example.net/steal.json",
            "http://crm.example.test/{{client.external_id}}/deals.json",
            "https://crm.example.test:8443/{{client.external_id}}/deals.json",
        ],
    )
    def test_a_new_version_may_not_send_a_kept_secret_to_another_server(self, http, partner, db, url):
        made = create(http, partner)
        before = stored_body(db, made["id"])
        response = http.put(
            f"/api/1/templates/{made['id']}",
            json=body(datasources=[SALES, {**MASKED_CRM, "url": url}]),
            headers=partner.headers,
        )
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["code"] == "validation_error"
        assert "datasources[1].headers.X-Api-Key" in problem["detail"]
        assert "datasources[1].auth.token" in problem["detail"]
        assert "another server" in problem["detail"]
        assert stored_body(db, made["id"]) == before
        assert http.get(f"/api/1/templates/{made['id']}", headers=partner.headers).json() == made

    @pytest.mark.parametrize("moved", [{"host": "evil.example.net"}, {"port": 6543}, {"engine": "mysql"}])
    def test_a_new_version_of_a_sql_source_may_not_send_its_kept_password_to_another_server(
        self, http, partner, db, moved
    ):
        made = create(http, partner, datasources=[SALES, WAREHOUSE])
        before = stored_body(db, made["id"])
        response = http.put(
            f"/api/1/templates/{made['id']}",
            json=body(datasources=[SALES, {**WAREHOUSE, "password": "*****", **moved}]),
            headers=partner.headers,
        )
        assert response.status_code == 422, response.text
        assert "datasources[1].password" in response.json()["detail"]
        assert stored_body(db, made["id"]) == before

    def test_a_new_version_keeps_a_secret_on_another_path_of_the_same_server(self, http, partner, db, app):
        made = create(http, partner)
        moved = {**MASKED_CRM, "url": "https://CRM.example.test:443/v2/{{client.external_id}}.json"}
        response = http.put(
            f"/api/1/templates/{made['id']}",
            json=body(datasources=[SALES, moved]),
            headers=partner.headers,
        )
        assert response.status_code == 200, response.text
        assert response.json()["version"] == 2
        assert kept_secrets(db, app, made["id"], 1) == {
            "headers": {"X-Api-Key": "top-secret"},
            "auth.token": "bearer-secret",
        }

    def test_a_new_version_may_point_to_another_server_with_its_secrets_sent_again(
        self, http, partner, db, app
    ):
        made = create(http, partner)
        moved = {
            **CRM,
            "url": "https://crm2.example.test/deals.json",
            "headers": {"X-Api-Key": "new-key"},
            "auth": {"type": "bearer", "token": "new-token"},
        }
        response = http.put(
            f"/api/1/templates/{made['id']}",
            json=body(datasources=[SALES, moved]),
            headers=partner.headers,
        )
        assert response.status_code == 200, response.text
        assert kept_secrets(db, app, made["id"], 1) == {
            "headers": {"X-Api-Key": "new-key"},
            "auth.token": "new-token",
        }


class TestBadTemplates:
    @pytest.mark.parametrize(
        ("dashboards", "datasources", "field"),
        [
            (
                [{"name": "D", "klips": [{**KLIPS[0], "datasource_ref": "nope"}]}],
                [SALES],
                "dashboards[0].klips[0].datasource_ref",
            ),
            (
                [{"name": "D", "klips": [KLIPS[2], {**KLIPS[1], "datasource_ref": "crm"}]}],
                [SALES],
                "dashboards[0].klips[1].datasource_ref",
            ),
            (
                [{"name": "D", "klips": [{k: v for k, v in KLIPS[0].items() if k != "datasource_ref"}]}],
                [SALES],
                "dashboards[0].klips[0].datasource_ref",
            ),
            ([{"name": "D", "klips": KLIPS}], [SALES, SALES], "datasources[1].ref"),
            (
                [{"name": "D", "klips": [{**KLIPS[0], "columns": {"value": "profit"}}]}],
                [SALES],
                "dashboards[0].klips[0].columns.value",
            ),
        ],
    )
    def test_a_klip_naming_no_source_of_the_template_or_not_fitting_it_is_a_422_naming_it(
        self, http, partner, db, dashboards, datasources, field
    ):
        response = http.post(
            "/api/1/templates",
            json=body(dashboards=dashboards, datasources=datasources),
            headers=partner.headers,
        )
        assert response.status_code == 422, response.text
        assert field in response.json()["detail"]
        assert count(db, Template) == 0

    def test_a_klip_may_not_name_a_source_by_id(self, http, partner, db):
        klip = {**KLIPS[0], "datasource_id": 1}
        response = http.post(
            "/api/1/templates",
            json=body(dashboards=[{"name": "D", "klips": [klip]}]),
            headers=partner.headers,
        )
        assert response.status_code == 422
        assert count(db, Template) == 0

    def test_a_bad_put_leaves_the_template_as_it_was(self, http, partner, db):
        made = create(http, partner)
        broken = [{"name": "D", "klips": [{**KLIPS[0], "datasource_ref": "nope"}]}]
        response = http.put(
            f"/api/1/templates/{made['id']}", json=body(dashboards=broken), headers=partner.headers
        )
        assert response.status_code == 422
        assert http.get(f"/api/1/templates/{made['id']}", headers=partner.headers).json() == made


class TestDeploying:
    def test_deploying_to_clients_gives_each_its_own_sources_and_dashboards(self, http, partner, db):
        made = create(http, partner)
        first, second = make_client(http, partner, "setup"), make_client(http, partner, "active")
        answer = deploy(http, partner, made["id"], client_ids=[first, second])
        assert answer["skipped"] == []
        assert [d["client_id"] for d in answer["deployed"]] == [first, second]
        for deployed in answer["deployed"]:
            client_id = deployed["client_id"]
            (dashboard,) = dashboards_of(http, partner, client_id)
            assert [dashboard["id"]] == deployed["dashboard_ids"]
            assert [k["title"] for k in dashboard["klips"]] == ["Total", "By month", "Notes"]
            sources = set(deployed["datasource_ids"])
            assert {k["datasource_id"] for k in dashboard["klips"][:2]} <= sources
            assert dashboard["klips"][2]["datasource_id"] is None
            assert count(db, DataSource, client_id=client_id) == 2
        assert count(db, Dashboard, client_id=second) == 1

    def test_deployed_sources_keep_their_secrets_sealed_and_masked(self, http, partner):
        made = create(http, partner)
        client_id = make_client(http, partner, "setup")
        answer = deploy(http, partner, made["id"], client_ids=[client_id])
        crm_id = answer["deployed"][0]["datasource_ids"][1]
        source = http.get(f"/api/1/datasources/{crm_id}", headers=partner.headers)
        assert source.status_code == 200, source.text
        assert source.json()["config"]["headers"] == {"X-Api-Key": "*****"}
        assert "top-secret" not in source.text

    def test_a_filter_chooses_the_clients(self, http, partner):
        made = create(http, partner)
        in_setup = make_client(http, partner, "setup")
        make_client(http, partner, "active")
        answer = deploy(http, partner, made["id"], filter={"status": "setup"})
        assert [d["client_id"] for d in answer["deployed"]] == [in_setup]

    def test_neither_clients_nor_a_filter_is_a_422(self, http, partner):
        made = create(http, partner)
        response = http.post(f"/api/1/templates/{made['id']}/deploy", json={}, headers=partner.headers)
        assert response.status_code == 422

    def test_a_dry_run_answers_the_same_and_changes_nothing(self, http, partner, db):
        made = create(http, partner)
        roomy, full = make_client(http, partner, "setup"), make_client(http, partner, "active")
        create_dashboard(http, partner, full, inline_source(http, partner, full), klips=[])
        create_dashboard(http, partner, full, inline_source(http, partner, full), klips=[], name="2")
        for _ in range(3):
            create_dashboard(http, partner, full, inline_source(http, partner, full), klips=[], name="n")
        events = count(db, Event)
        answer = deploy(http, partner, made["id"], client_ids=[roomy, full], dry_run=True)
        assert [d["client_id"] for d in answer["deployed"]] == [roomy]
        assert [(s["client_id"], s["code"]) for s in answer["skipped"]] == [(full, "allocation_exceeded")]
        assert count(db, DataSource, client_id=roomy) == 0
        assert count(db, Dashboard, client_id=roomy) == 0
        assert count(db, TemplateInstance) == 0
        assert count(db, Event) == events

    def test_a_client_without_room_is_skipped_while_the_others_are_deployed(self, http, partner, db):
        made = create(http, partner)
        full = make_client(
            http,
            partner,
            "active",
            resources={"dashboards": 1, "users": 1, "published_links": 1, "api_calls_per_day": 10},
        )
        create_dashboard(http, partner, full, inline_source(http, partner, full), klips=[])
        roomy = make_client(http, partner, "trial")
        answer = deploy(http, partner, made["id"], client_ids=[full, roomy])
        assert [d["client_id"] for d in answer["deployed"]] == [roomy]
        assert answer["skipped"][0]["client_id"] == full
        assert answer["skipped"][0]["code"] == "allocation_exceeded"
        # All or nothing for that client: not even its sources were made.
        assert count(db, DataSource, client_id=full) == 1
        assert count(db, Dashboard, client_id=full) == 1

    def test_deploying_again_updates_the_clients_copy_instead_of_adding_one(self, http, partner, db):
        made = create(http, partner)
        client_id = make_client(http, partner, "active")
        first = deploy(http, partner, made["id"], client_ids=[client_id])["deployed"][0]
        http.put(
            f"/api/1/templates/{made['id']}",
            json=body(dashboards=[{"name": "Renamed", "klips": KLIPS[:1]}]),
            headers=partner.headers,
        )
        again = deploy(http, partner, made["id"], client_ids=[client_id])["deployed"][0]
        assert again == first
        (dashboard,) = dashboards_of(http, partner, client_id)
        assert dashboard["name"] == "Renamed"
        assert [k["title"] for k in dashboard["klips"]] == ["Total"]
        assert count(db, DataSource, client_id=client_id) == 2
        assert instances(http, partner, made["id"]) == [
            {"client_id": client_id, "version": 2, "drift": False, "detached": False}
        ]

    def test_each_client_given_a_copy_has_an_audit_record_naming_the_template(self, http, partner, db):
        made = create(http, partner)
        first, second = make_client(http, partner, "setup"), make_client(http, partner, "trial")
        full = make_client(
            http,
            partner,
            "trial",
            resources={"dashboards": 0, "users": 1, "published_links": 1, "api_calls_per_day": 10},
        )
        answer = deploy(http, partner, made["id"], client_ids=[first, second, full])
        assert [s["client_id"] for s in answer["skipped"]] == [full]
        target = f"template:{made['id']}"
        expected = [
            (partner.id, first, "template.deployed", target),
            (partner.id, second, "template.deployed", target),
        ]
        assert audit_records(db, "template.deployed") == expected
        # Deploying again updates the copy in place (one client at a time): one more record.
        deploy(http, partner, made["id"], client_ids=[first])
        assert audit_records(db, "template.deployed") == [expected[0], *expected]
        (created,) = db.scalars(select(AuditEvent).where(AuditEvent.action == "template.created")).all()
        deployed = db.scalars(select(AuditEvent).where(AuditEvent.action == "template.deployed")).all()
        assert {r.actor for r in deployed} == {created.actor}
        assert deployed[0].details["version"] == 1
        assert deployed[0].details["dashboard_ids"] == answer["deployed"][0]["dashboard_ids"]

    def test_a_dry_run_leaves_no_audit_record(self, http, partner, db):
        made = create(http, partner)
        client_id = make_client(http, partner, "setup")
        deploy(http, partner, made["id"], client_ids=[client_id], dry_run=True)
        assert audit_records(db, "template.deployed") == []

    def test_the_clients_audit_log_in_the_console_shows_the_deployment(
        self, http, partner, make_partner, partner_session
    ):
        made = create(http, partner)
        client_id = make_client(http, partner, "setup")
        deploy(http, partner, made["id"], client_ids=[client_id])
        page = http.get(f"/partner/clients/{client_id}")
        assert page.status_code == 200
        assert "template.deployed" in page.text and f"template:{made['id']}" in page.text
        other = make_partner()
        theirs = make_client(http, other, "setup")
        assert "template.deployed" not in http.get(f"/partner/clients/{theirs}").text

    def test_another_partners_client_is_skipped_as_not_found(self, http, partner, make_partner, db):
        made = create(http, partner)
        other = make_partner()
        theirs = make_client(http, other, "setup")
        answer = deploy(http, partner, made["id"], client_ids=[theirs])
        assert answer["deployed"] == []
        assert answer["skipped"][0]["code"] == "not_found"
        assert count(db, DataSource, client_id=theirs) == 0


class TestInstances:
    def deployed(self, http, partner):
        made = create(http, partner)
        client_id = make_client(http, partner, "active")
        answer = deploy(http, partner, made["id"], client_ids=[client_id])["deployed"][0]
        return made, client_id, answer["dashboard_ids"][0]

    def test_an_edit_by_hand_shows_as_drift(self, http, partner):
        made, _, dashboard_id = self.deployed(http, partner)
        assert instances(http, partner, made["id"])[0]["drift"] is False
        http.patch(f"/api/1/dashboards/{dashboard_id}", json={"name": "Mine now"}, headers=partner.headers)
        assert instances(http, partner, made["id"])[0]["drift"] is True

    def test_a_drifted_copy_is_updated_only_with_force(self, http, partner):
        made, client_id, dashboard_id = self.deployed(http, partner)
        http.patch(f"/api/1/dashboards/{dashboard_id}", json={"name": "Mine now"}, headers=partner.headers)
        http.put(f"/api/1/templates/{made['id']}", json=body(name="v2"), headers=partner.headers)
        path = f"/api/1/templates/{made['id']}/update-instances"
        answer = http.post(path, json={}, headers=partner.headers).json()
        assert [(s["client_id"], s["code"]) for s in answer["skipped"]] == [(client_id, "drift")]
        assert dashboards_of(http, partner, client_id)[0]["name"] == "Mine now"
        answer = http.post(path, json={"force": True}, headers=partner.headers).json()
        assert [d["client_id"] for d in answer["deployed"]] == [client_id]
        assert dashboards_of(http, partner, client_id)[0]["name"] == "Overview"
        assert instances(http, partner, made["id"]) == [
            {"client_id": client_id, "version": 2, "drift": False, "detached": False}
        ]

    def test_each_copy_updated_has_an_audit_record_and_a_skipped_one_none(self, http, partner, db):
        made, client_id, _ = self.deployed(http, partner)
        drifted = make_client(http, partner, "active")
        (dashboard_id,) = deploy(http, partner, made["id"], client_ids=[drifted])["deployed"][0][
            "dashboard_ids"
        ]
        http.patch(f"/api/1/dashboards/{dashboard_id}", json={"name": "Mine now"}, headers=partner.headers)
        http.put(f"/api/1/templates/{made['id']}", json=body(name="v2"), headers=partner.headers)
        answer = http.post(
            f"/api/1/templates/{made['id']}/update-instances", json={}, headers=partner.headers
        ).json()
        assert [d["client_id"] for d in answer["deployed"]] == [client_id]
        assert audit_records(db, "template.instance_updated") == [
            (partner.id, client_id, "template.instance_updated", f"template:{made['id']}")
        ]
        (record,) = db.scalars(select(AuditEvent).where(AuditEvent.action == "template.instance_updated"))
        assert record.details["version"] == 2

    def test_an_update_keeps_the_rows_a_source_has_fetched(self, http, partner, db):
        made, client_id, _ = self.deployed(http, partner)
        crm = db.scalars(
            select(DataSource).where(DataSource.client_id == client_id, DataSource.kind == "url")
        ).one()
        crm.rows, crm.row_count, crm.version = [{"deal": 1}], 1, "fetched"
        db.commit()
        http.put(
            f"/api/1/templates/{made['id']}",
            json=body(datasources=[SALES, {**CRM, "format": "csv"}]),
            headers=partner.headers,
        )
        answer = http.post(
            f"/api/1/templates/{made['id']}/update-instances", json={}, headers=partner.headers
        )
        assert answer.json()["deployed"][0]["client_id"] == client_id
        db.expire_all()
        assert (crm.rows, crm.version, crm.format) == ([{"deal": 1}], "fetched", "csv")

    def test_a_detached_copy_is_never_updated(self, http, partner):
        made, client_id, dashboard_id = self.deployed(http, partner)
        response = http.post(f"/api/1/dashboards/{dashboard_id}/detach", headers=partner.headers)
        assert response.status_code == 200, response.text
        assert response.json()["detached"] is True
        http.put(f"/api/1/templates/{made['id']}", json=body(name="v2"), headers=partner.headers)
        answer = http.post(
            f"/api/1/templates/{made['id']}/update-instances", json={"force": True}, headers=partner.headers
        ).json()
        assert [(s["client_id"], s["code"]) for s in answer["skipped"]] == [(client_id, "detached")]
        assert instances(http, partner, made["id"])[0] == {
            "client_id": client_id,
            "version": 1,
            "drift": False,
            "detached": True,
        }

    def test_detaching_a_dashboard_not_from_a_template_is_not_found(self, http, partner):
        client_id = make_client(http, partner, "setup")
        dashboard_id = create_dashboard(
            http, partner, client_id, inline_source(http, partner, client_id)
        ).json()["id"]
        assert (
            http.post(f"/api/1/dashboards/{dashboard_id}/detach", headers=partner.headers).status_code == 404
        )


class TestCapture:
    def test_a_dashboard_becomes_a_template_with_its_klips_and_sources(self, http, partner):
        client_id = make_client(http, partner, "setup")
        source_id = inline_source(http, partner, client_id)
        dashboard = create_dashboard(http, partner, client_id, source_id).json()
        response = http.post(f"/api/1/templates/from-dashboard/{dashboard['id']}", headers=partner.headers)
        assert response.status_code == 201, response.text
        made = response.json()
        assert made["version"] == 1
        assert [s["ref"] for s in made["datasources"]] == ["source_1"]
        assert made["datasources"][0]["rows"] == ROWS
        klips = made["dashboards"][0]["klips"]
        assert [k["title"] for k in klips] == [k["title"] for k in dashboard["klips"]]
        assert {k["datasource_ref"] for k in klips} == {"source_1"}
        other = make_client(http, partner, "setup")
        answer = deploy(http, partner, made["id"], client_ids=[other])
        assert len(answer["deployed"]) == 1

    def test_another_partners_dashboard_cannot_be_captured(self, http, partner, make_partner):
        client_id = make_client(http, partner, "setup")
        dashboard_id = create_dashboard(
            http, partner, client_id, inline_source(http, partner, client_id)
        ).json()["id"]
        other = make_partner()
        response = http.post(f"/api/1/templates/from-dashboard/{dashboard_id}", headers=other.headers)
        assert response.status_code == 404


class TestWhoMay:
    def test_another_partners_template_is_not_found(self, http, partner, make_partner):
        made = create(http, partner)
        other = make_partner()
        base = f"/api/1/templates/{made['id']}"
        assert http.get(base, headers=other.headers).status_code == 404
        assert http.put(base, json=body(), headers=other.headers).status_code == 404
        assert http.delete(base, headers=other.headers).status_code == 404
        assert http.get(f"{base}/instances", headers=other.headers).status_code == 404
        theirs = make_client(http, other, "setup")
        assert (
            http.post(f"{base}/deploy", json={"client_ids": [theirs]}, headers=other.headers).status_code
            == 404
        )
        assert http.get("/api/1/templates", headers=other.headers).json()["items"] == []

    def test_client_users_are_refused(self, http, partner, clock):
        made = create(http, partner)
        client_id, _, headers = client_with_user(http, partner, clock, "active", "admin@client.test")
        base = f"/api/1/templates/{made['id']}"
        assert http.get("/api/1/templates", headers=headers).status_code == 403
        assert http.post("/api/1/templates", json=body(), headers=headers).status_code == 403
        assert http.get(base, headers=headers).status_code == 403
        assert (
            http.post(f"{base}/deploy", json={"client_ids": [client_id]}, headers=headers).status_code == 403
        )


class TestEvents:
    def test_deploying_and_updating_reach_a_webhook(self, http, partner, receiver, worker):
        response = http.post(
            "/api/1/webhooks",
            json={"url": receiver.url, "events": ["template.deployed", "template.updated"]},
            headers=partner.headers,
        )
        assert response.status_code == 201, response.text
        made = create(http, partner)
        client_id = make_client(http, partner, "setup")
        deployed = deploy(http, partner, made["id"], client_ids=[client_id])["deployed"][0]
        http.post(f"/api/1/templates/{made['id']}/update-instances", json={}, headers=partner.headers)
        worker.run_once()
        received = sorted(receiver.received, key=lambda r: r.json["type"])
        assert [r.json["type"] for r in received] == ["template.deployed", "template.updated"]
        data = received[0].json["data"]
        assert data["template_id"] == made["id"]
        assert data["client_id"] == client_id
        assert data["dashboard_ids"] == deployed["dashboard_ids"]
        # Like every event, both carry the client as the API shows it (SPEC §9).
        shown = http.get(f"/api/1/clients/{client_id}", headers=partner.headers).json()
        for delivery in received:
            assert delivery.json["data"]["client"]["id"] == client_id
            assert delivery.json["data"]["client"]["name"] == shown["name"]
            assert delivery.json["data"]["client"]["status"] == "setup"


class TestRacing:
    def test_deployments_racing_on_one_client_leave_one_copy(self, server_url, make_partner, db):
        partner = make_partner()
        with httpx.Client(base_url=server_url, headers=partner.headers, timeout=60) as http:
            made = create(http, partner)
            client_id = make_client(http, partner, "setup")

            def deploy_once(_: int) -> tuple[int, list[int]]:
                with httpx.Client(base_url=server_url, headers=partner.headers, timeout=60) as own:
                    response = own.post(
                        f"/api/1/templates/{made['id']}/deploy", json={"client_ids": [client_id]}
                    )
                    return response.status_code, [d["client_id"] for d in response.json()["deployed"]]

            with ThreadPoolExecutor(max_workers=6) as pool:
                codes = list(pool.map(deploy_once, range(6)))
        # Each waited for the one before (the partner lock) and updated its copy: none was refused.
        assert codes == [(200, [client_id])] * 6
        assert count(db, TemplateInstance, client_id=client_id) == 1
        assert count(db, Dashboard, client_id=client_id) == 1
        assert count(db, DataSource, client_id=client_id) == 2


class TestPartnerViewers:
    def test_a_partner_viewer_reads_templates_but_cannot_change_or_deploy_them(
        self, http, partner, db, clock
    ):
        made = create(http, partner)
        client_id = make_client(http, partner, "setup")
        headers = partner_user_headers(db, clock, partner)
        db.commit()
        base = f"/api/1/templates/{made['id']}"
        assert http.get(base, headers=headers).status_code == 200
        assert http.put(base, json=body(), headers=headers).status_code == 403
        assert (
            http.post(f"{base}/deploy", json={"client_ids": [client_id]}, headers=headers).status_code == 403
        )
        assert count(db, TemplateInstance) == 0
