"""`templates.service.deploy` called directly, as the bulk import does: the same answer as the API's."""

from __future__ import annotations

from sqlalchemy import func, select

from tenantry.auth.principal import Principal
from tenantry.db.models import Dashboard
from tenantry.templates import service
from tenantry.templates.schemas import DeployOut
from tenantry.vault import load_vault
from tests.content import make_client
from tests.templates.test_api import create


class TestDeployCalledDirectly:
    def test_it_deploys_within_the_callers_transaction_and_only_its_commit_keeps_it(
        self, http, partner, database, clock, settings
    ):
        made = create(http, partner)
        client_id = make_client(http, partner, "setup")
        caller = Principal("partner_user", partner.id, partner.admin_user_id, "admin")
        vault = load_vault(settings)
        with database.session(write=True) as db:
            answer = service.deploy(db, clock, caller, made["id"], [client_id], vault=vault)
            assert isinstance(answer, DeployOut)
            assert [d.client_id for d in answer.deployed] == [client_id]
            db.rollback()
        with database.session() as db:
            held = db.scalar(
                select(func.count()).select_from(Dashboard).where(Dashboard.client_id == client_id)
            )
            assert held == 0

    def test_a_dry_run_names_the_same_dashboards_count_and_keeps_nothing(
        self, http, partner, database, clock, settings
    ):
        made = create(http, partner)
        client_id = make_client(http, partner, "setup")
        caller = Principal("partner_user", partner.id, partner.admin_user_id, "admin")
        with database.session(write=True) as db:
            answer = service.deploy(
                db,
                clock,
                caller,
                made["id"],
                [client_id, client_id],
                dry_run=True,
                vault=load_vault(settings),
            )
            db.commit()
        assert [(d.client_id, len(d.dashboard_ids)) for d in answer.deployed] == [(client_id, 1)]
        with database.session() as db:
            held = db.scalar(
                select(func.count()).select_from(Dashboard).where(Dashboard.client_id == client_id)
            )
            assert held == 0
