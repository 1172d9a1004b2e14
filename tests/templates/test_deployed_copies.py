"""A client's copy of a template after it is deployed: its klips draw and can be edited like any
other, deploying again respects edits by hand, and an update gives inline sources the template's
name and rows (SPEC §15)."""

from __future__ import annotations

from sqlalchemy import select, update

from tenantry.db.dashboard_models import DataSource, Klip
from tests.content import ROWS, make_client, path_of, publish
from tests.templates.test_api import CRM, KLIPS, SALES, body, create, deploy, instances

# What a published page draws in place of a klip whose stored definition no longer fits.
NOT_VALID = "no longer valid"


def deployed_dashboard(http, partner, template_id, status="active"):
    client_id = make_client(http, partner, status)
    answer = deploy(http, partner, template_id, client_ids=[client_id])
    (dashboard_id,) = answer["deployed"][0]["dashboard_ids"]
    return client_id, dashboard_id


def klips_of(http, partner, dashboard_id):
    response = http.get(f"/api/1/dashboards/{dashboard_id}", headers=partner.headers)
    assert response.status_code == 200, response.text
    return response.json()["klips"]


def published_page(http, partner, dashboard_id):
    link = publish(http, partner, dashboard_id, name="Board")
    assert link.status_code == 201, link.text
    page = http.get(path_of(link.json()))
    assert page.status_code == 200
    return page.text


def put_template(http, partner, template_id, **changes):
    response = http.put(f"/api/1/templates/{template_id}", json=body(**changes), headers=partner.headers)
    assert response.status_code == 200, response.text


def update_instances(http, partner, template_id, **request):
    response = http.post(
        f"/api/1/templates/{template_id}/update-instances", json=request, headers=partner.headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def sources_of(db, client_id):
    db.rollback()  # a fresh read: what the app committed since
    return db.scalars(
        select(DataSource).where(DataSource.client_id == client_id).order_by(DataSource.id)
    ).all()


class TestADeployedKlip:
    def test_draws_on_the_published_page(self, http, partner):
        made = create(http, partner)
        _, dashboard_id = deployed_dashboard(http, partner, made["id"])
        page = published_page(http, partner, dashboard_id)
        assert "By month" in page
        assert NOT_VALID not in page

    def test_can_be_edited_like_any_klip(self, http, partner):
        made = create(http, partner)
        _, dashboard_id = deployed_dashboard(http, partner, made["id"])
        klip = klips_of(http, partner, dashboard_id)[0]
        response = http.patch(
            f"/api/1/dashboards/{dashboard_id}/klips/{klip['id']}",
            json={"title": "Total sales"},
            headers=partner.headers,
        )
        assert response.status_code == 200, response.text
        assert klips_of(http, partner, dashboard_id)[0]["title"] == "Total sales"

    def test_is_shown_without_the_templates_source_ref(self, http, partner):
        made = create(http, partner)
        _, dashboard_id = deployed_dashboard(http, partner, made["id"])
        assert all("datasource_ref" not in klip for klip in klips_of(http, partner, dashboard_id))

    def test_kept_with_the_templates_source_ref_in_its_definition_draws_and_can_be_edited(
        self, http, partner, db
    ):
        # Klips deployed by earlier versions kept `datasource_ref` in their stored definition.
        made = create(http, partner)
        _, dashboard_id = deployed_dashboard(http, partner, made["id"])
        klip = klips_of(http, partner, dashboard_id)[1]
        stored = db.get(Klip, klip["id"])
        db.execute(
            update(Klip)
            .where(Klip.id == klip["id"])
            .values(definition={**stored.definition, "datasource_ref": "sales"})
        )
        db.commit()
        assert NOT_VALID not in published_page(http, partner, dashboard_id)
        response = http.patch(
            f"/api/1/dashboards/{dashboard_id}/klips/{klip['id']}",
            json={"title": "Sales by month"},
            headers=partner.headers,
        )
        assert response.status_code == 200, response.text
        assert "datasource_ref" not in response.json()


class TestDeployingAgain:
    def test_leaves_a_copy_changed_by_hand_as_it_is_and_says_so(self, http, partner):
        made = create(http, partner)
        client_id, dashboard_id = deployed_dashboard(http, partner, made["id"])
        renamed = http.patch(
            f"/api/1/dashboards/{dashboard_id}", json={"name": "Mine"}, headers=partner.headers
        )
        assert renamed.status_code == 200, renamed.text
        put_template(http, partner, made["id"], name="Starter v2")
        answer = deploy(http, partner, made["id"], client_ids=[client_id])
        assert answer["deployed"] == []
        assert [(s["client_id"], s["code"]) for s in answer["skipped"]] == [(client_id, "drift")]
        shown = http.get(f"/api/1/dashboards/{dashboard_id}", headers=partner.headers).json()
        assert shown["name"] == "Mine"
        assert instances(http, partner, made["id"])[0] == {
            "client_id": client_id,
            "version": 1,
            "drift": True,
            "detached": False,
        }

    def test_updates_a_copy_nobody_changed(self, http, partner):
        made = create(http, partner)
        client_id, dashboard_id = deployed_dashboard(http, partner, made["id"])
        dashboards = [{"name": "Overview v2", "klips": KLIPS}]
        put_template(http, partner, made["id"], dashboards=dashboards)
        answer = deploy(http, partner, made["id"], client_ids=[client_id])
        assert [d["client_id"] for d in answer["deployed"]] == [client_id]
        shown = http.get(f"/api/1/dashboards/{dashboard_id}", headers=partner.headers).json()
        assert shown["name"] == "Overview v2"


class TestUpdatingAnInlineSource:
    def test_gives_the_copy_the_templates_new_name(self, http, partner, db):
        made = create(http, partner)
        client_id, _ = deployed_dashboard(http, partner, made["id"])
        put_template(http, partner, made["id"], datasources=[{**SALES, "name": "Sales v2"}, CRM])
        answer = update_instances(http, partner, made["id"])
        assert [d["client_id"] for d in answer["deployed"]] == [client_id]
        assert sorted(s.name for s in sources_of(db, client_id)) == ["CRM", "Sales v2"]

    def test_gives_the_copy_the_templates_new_rows(self, http, partner, db):
        made = create(http, partner)
        client_id, _ = deployed_dashboard(http, partner, made["id"])
        rows = [{**row, "sales": row["sales"] + 1} for row in ROWS]
        put_template(http, partner, made["id"], datasources=[{**SALES, "rows": rows}, CRM])
        update_instances(http, partner, made["id"])
        (inline,) = [s for s in sources_of(db, client_id) if s.kind == "inline"]
        assert (inline.rows, inline.row_count) == (rows, len(rows))
        assert instances(http, partner, made["id"])[0]["drift"] is False
