"""A deployment writes the first copies of many clients together: each client still gets exactly
what deploying to it alone gives (its own sources with their rows, dashboard, klips, instance and
event, its allocation counted), and the clients that cannot take it (no room, a copy already,
another partner's, at a cap) are answered as one by one, in the order asked."""

from __future__ import annotations

from sqlalchemy import func, select

from tenantry import limits
from tenantry.db.dashboard_models import DataSource, DataSourcePage
from tenantry.db.models import Client, Event
from tenantry.db.template_models import TemplateInstance
from tenantry.templates import service
from tests.content import make_client
from tests.factories import new_client
from tests.templates.test_api import count, create, deploy, instances

SMALL = {"dashboards": 1, "users": 1, "published_links": 0, "api_calls_per_day": 10}


def test_a_mixed_deployment_answers_each_client_in_the_order_asked(http, partner, make_partner, db):
    made = create(http, partner)
    first = make_client(http, partner, "trial")
    no_room = make_client(http, partner, "active", resources={**SMALL, "dashboards": 1})
    deploy(http, partner, made["id"], client_ids=[no_room])  # takes its one dashboard
    other = make_partner(dashboards=10, users=10, published_links=10, api_calls_per_day=1000)
    theirs = make_client(http, other, "setup")
    full = make_client(http, partner, "active", resources=SMALL)
    http.post(f"/api/1/clients/{full}/dashboards", json={"name": "Own", "klips": []}, headers=partner.headers)
    last = make_client(http, partner, "setup")
    answer = deploy(http, partner, made["id"], client_ids=[first, theirs, no_room, full, last, first])
    assert [d["client_id"] for d in answer["deployed"]] == [first, no_room, last]
    assert [(s["client_id"], s["code"]) for s in answer["skipped"]] == [
        (theirs, "not_found"),
        (full, "allocation_exceeded"),
    ]
    assert count(db, DataSource, client_id=full) == 0
    copies = {i["client_id"]: i for i in instances(http, partner, made["id"])}
    assert set(copies) == {first, no_room, last}
    assert not any(c["drift"] for c in copies.values())


def test_each_batched_copy_is_what_a_lone_deployment_makes(http, partner, db):
    made = create(http, partner)
    alone = new_client(http, partner, "trial", users=1)
    deploy(http, partner, made["id"], client_ids=[alone])
    together = [new_client(http, partner, "trial", users=1) for _ in range(3)]
    answer = deploy(http, partner, made["id"], client_ids=together)
    assert [d["client_id"] for d in answer["deployed"]] == together
    db.expire_all()
    prints = {i.client_id: i.fingerprint for i in db.scalars(select(TemplateInstance))}
    assert len(set(prints.values())) == 1  # one template version: one content
    for deployed in answer["deployed"]:
        client_id = deployed["client_id"]
        assert db.get(Client, client_id).usage_dashboards == 1
        sales_id = deployed["datasource_ids"][0]
        rows = http.get(f"/api/1/datasources/{sales_id}/rows", headers=partner.headers)
        assert rows.status_code == 200 and rows.json()["total"] == 3, rows.text
        pages = db.scalar(
            select(func.count()).select_from(DataSourcePage).where(DataSourcePage.data_source_id == sales_id)
        )
        assert pages == 1
        events = db.scalars(
            select(Event).where(Event.client_id == client_id, Event.type == service.DEPLOYED)
        ).all()
        assert [e.data["dashboard_ids"] for e in events] == [deployed["dashboard_ids"]]
    versions = db.scalars(
        select(DataSource.version).where(DataSource.client_id.in_(together), DataSource.kind == "inline")
    ).all()
    assert len(set(versions)) == len(versions)  # each snapshot its own version


def test_a_client_at_its_data_source_cap_is_skipped_as_limit_reached(http, partner, db, database, clock):
    made = create(http, partner)
    capped, roomy = make_client(http, partner, "setup"), make_client(http, partner, "setup")
    with database.session(write=True) as session:
        now = clock.now()
        session.add_all(
            DataSource(
                partner_id=partner.id,
                client_id=capped,
                name=f"S{n}",
                kind="inline",
                rows=[],
                row_count=0,
                version="",
                refresh_fail_count=0,
                created_at=now,
                updated_at=now,
            )
            for n in range(limits.DATA_SOURCES_PER_OWNER.maximum - 1)
        )
        session.commit()
    answer = deploy(http, partner, made["id"], client_ids=[capped, roomy])
    assert [d["client_id"] for d in answer["deployed"]] == [roomy]
    assert [(s["client_id"], s["code"]) for s in answer["skipped"]] == [(capped, "limit_reached")]
    assert count(db, DataSource, client_id=capped) == limits.DATA_SOURCES_PER_OWNER.maximum - 1
