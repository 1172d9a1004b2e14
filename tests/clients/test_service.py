"""The client use cases (SPEC §3 statuses and transitions, §5 the trial clock, §6 the pool), called
directly with a session: no HTTP, no app. Tables read like the SPEC's; each refusal is checked in
the same session, where nothing the refused call would have changed may have been written."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tenantry.auth.principal import Principal
from tenantry.clients.service import (
    activation_check,
    delete_client,
    effective_status,
    extend_trial,
)
from tenantry.db.models import AuditEvent, Client, StatusChange
from tenantry.errors import (
    ActivationRequirementsUnmet,
    AllocationBelowUsage,
    Duplicate,
    Forbidden,
    InvalidTransition,
    NotFound,
    PoolExhausted,
    TenantryError,
    TrialExtensionUnavailable,
)
from tenantry.policy import EffectiveStatus
from tests.services import DAY, ROOMY, SECOND, Clients, as_role, stored, table

# Every write goes through the `session` fixture and is rolled back with it.
pytestmark = pytest.mark.rolled_back

# SPEC §3, read from the client's effective status to the status asked for: ✓ the status changes
# (history, event), — a no-op (nothing written), ✗ refused with `invalid_transition`.
SPEC_3 = """
| from \\ to     | setup | trial | active | disabled |
|---------------|-------|-------|--------|----------|
| setup         | —     | ✓     | ✓      | ✓        |
| trial         | ✗     | —     | ✓      | ✓        |
| trial_expired | ✗     | —     | ✓      | ✓        |
| active        | ✗     | ✗     | —      | ✓        |
| disabled      | ✗     | ✗     | ✓      | —        |
"""
TRANSITIONS = [
    pytest.param(source, target, mark, id=f"{source}->{target}")
    for source, *marks in table(SPEC_3)
    for target, mark in zip(("setup", "trial", "active", "disabled"), marks, strict=True)
]


class TestStatusChanges:
    @pytest.mark.parametrize(("source", "target", "mark"), TRANSITIONS)
    def test_a_status_change_is_made_refused_or_a_no_op_as_spec_3_says(self, clients, source, target, mark):
        service = clients()
        client = service.in_status(source)
        before, history = stored(client), service.history(client)
        changes = service.events("client.status_changed")
        if mark == "✗":
            with pytest.raises(InvalidTransition) as refused:
                service.update(client, status=target)
            assert refused.value.extensions["to"] == target
            assert stored(client) == before
            assert service.history(client) == history
        elif mark == "—":
            service.update(client, status=target)
            assert stored(client) == before
            assert service.history(client) == history
            assert service.events("client.status_changed") == changes
        else:
            service.update(client, status=target)
            assert client.status == target
            assert service.history(client) == [*history, (before["status"], target)]
            assert service.events("client.status_changed") == changes + 1

    @pytest.mark.parametrize("status", ["setup", "trial", "active"])
    def test_a_client_is_created_in_setup_trial_or_active_with_its_first_history_row(self, clients, status):
        service = clients()
        client = service.create(status, resources=ROOMY)
        assert client.status == status
        assert service.history(client) == [(None, status)]
        assert service.events("client.status_changed") == 1

    def test_a_status_change_is_audited_with_its_actor_and_reason(self, clients, session):
        service = clients()
        client = service.in_status("trial")
        service.update(client, status="active", reason="Signed the contract")
        change = session.scalars(select(StatusChange).where(StatusChange.to_status == "active")).one()
        assert (change.actor, change.reason) == (service.admin.actor, "Signed the contract")
        audited = session.scalars(select(AuditEvent).where(AuditEvent.action == "client.updated")).one()
        assert audited.details["status"] == {"from": "trial", "to": "active"}


# SPEC §3 "Activation requirement": at least one dashboard and one user allocated before Active;
# the allocation may be given in the same request, and a refusal applies none of it.
ACTIVATION = [
    pytest.param({}, {}, ["dashboards", "users"], id="nothing allocated"),
    pytest.param({"dashboards": 1}, {}, ["users"], id="no user"),
    pytest.param({"users": 1}, {}, ["dashboards"], id="no dashboard"),
    pytest.param({"dashboards": 1, "users": 1}, {}, None, id="one of each"),
    pytest.param({}, {"dashboards": 1, "users": 1}, None, id="both given with the change"),
    pytest.param({"dashboards": 1}, {"users": 1}, None, id="the user given with the change"),
    pytest.param({"dashboards": 1, "users": 1}, {"users": 0}, ["users"], id="the user taken away with it"),
]


class TestActivation:
    @pytest.mark.parametrize(("allocated", "given", "missing"), ACTIVATION)
    def test_a_client_becomes_active_only_with_a_dashboard_and_a_user_allocated(
        self, clients, allocated, given, missing
    ):
        service = clients()
        client = service.create("setup", resources=allocated) if allocated else service.create("setup")
        before, pool = stored(client), service.allocated()
        body: dict[str, Any] = {"status": "active", **({"resources": given} if given else {})}
        if missing is None:
            service.update(client, **body)
            assert client.status == "active"
            return
        with pytest.raises(ActivationRequirementsUnmet) as refused:
            service.update(client, **body)
        assert refused.value.extensions["missing"] == missing
        assert stored(client) == before
        assert service.allocated() == pool

    @pytest.mark.parametrize(
        ("status", "resources", "missing"),
        [
            pytest.param(
                "setup", {"dashboards": 0, "users": 0}, ["dashboards", "users"], id="setup, nothing"
            ),
            pytest.param("setup", {}, [], id="setup, ready"),
            pytest.param("trial", {}, [], id="trial"),
            pytest.param("trial_expired", {}, [], id="expired trial"),
            pytest.param("active", {}, [], id="active"),
            pytest.param("disabled", {}, [], id="disabled"),
            pytest.param("setup", {"dashboards": 9}, ["pool:dashboards"], id="setup, more than the pool"),
        ],
    )
    def test_the_activation_check_names_what_stands_in_the_way_and_changes_nothing(
        self, clients, status, resources, missing
    ):
        service = clients(dashboards=5)
        client = service.in_status(status, **resources)
        before, pool = stored(client), service.allocated()
        assert activation_check(service.session, service.admin, client.id) == {
            "ready": not missing,
            "missing": missing,
        }
        assert stored(client) == before
        assert service.allocated() == pool

    def test_the_activation_check_names_more_dashboards_built_than_allocated(self, clients, session):
        service = clients()
        client = service.in_status("setup", dashboards=1)
        client.usage_dashboards = 3  # built in Setup, where dashboards do not count
        session.flush()
        assert activation_check(session, service.admin, client.id) == {
            "ready": False,
            "missing": ["allocation_below_usage:dashboards"],
        }


# SPEC §6 with a plan of 5 dashboards: an allocation counts against the pool only in trial and
# active, and no change may leave it below zero. `others` is what another trial client holds,
# taken once the client is in its first status; `(create)` creates the client in the second.
SPEC_6 = """
| from     | dashboards | others | to       | dashboards | outcome              |
|----------|------------|--------|----------|------------|----------------------|
| (create) |            | 0      | setup    | 9          | ✓                    |
| (create) |            | 0      | trial    | 5          | ✓                    |
| (create) |            | 0      | trial    | 6          | pool_exhausted 6 / 5 |
| (create) |            | 2      | active   | 4          | pool_exhausted 4 / 3 |
| setup    | 9          | 0      | setup    | 12         | ✓                    |
| setup    | 6          | 0      | trial    | 6          | pool_exhausted 6 / 5 |
| setup    | 5          | 0      | active   | 5          | ✓                    |
| trial    | 4          | 0      | trial    | 5          | ✓                    |
| trial    | 4          | 1      | trial    | 5          | pool_exhausted 1 / 0 |
| trial    | 4          | 1      | active   | 4          | ✓                    |
| trial    | 4          | 1      | trial    | 1          | ✓                    |
| active   | 5          | 0      | disabled | 5          | ✓                    |
| disabled | 5          | 3      | active   | 2          | ✓                    |
| disabled | 5          | 3      | active   | 5          | pool_exhausted 5 / 2 |
"""
POOL = [
    pytest.param(
        None if start == "(create)" else start,
        int(held or 0),
        int(others),
        target,
        int(asked),
        outcome,
        id=f"{start} {held or ''} to {target} {asked}, others {others}",
    )
    for start, held, others, target, asked, outcome in table(SPEC_6)
]


class TestThePool:
    @pytest.mark.parametrize(("start", "held", "others", "target", "asked", "outcome"), POOL)
    def test_allocations_count_against_the_pool_in_trial_and_active_and_never_overdraw_it(
        self, clients, start, held, others, target, asked, outcome
    ):
        service = clients(dashboards=5)
        client = service.in_status(start, dashboards=held, users=1) if start else None
        if others:
            service.create("trial", resources={"dashboards": others})
        before, pool = (stored(client) if client else None), service.allocated()
        resources = {"dashboards": asked, "users": 1}

        def change() -> Client:
            if client is None:
                return service.create(target, resources=resources)
            return service.update(client, status=target, resources=resources)

        if outcome == "✓":
            changed = change()
            counted = asked if target in ("trial", "active") else 0
            assert (changed.status, changed.alloc_dashboards) == (target, asked)
            assert service.allocated()["dashboards"] == counted + others
            return
        asked_more, remaining = (int(n) for n in outcome.removeprefix("pool_exhausted").split("/"))
        with pytest.raises(PoolExhausted) as refused:
            change()
        assert refused.value.extensions == {
            "resource": "dashboards",
            "asked": asked_more,
            "remaining": remaining,
        }
        assert service.allocated() == pool
        if client is not None:  # (a refused create leaves its pending row to the caller's rollback)
            assert stored(client) == before

    def test_the_partners_own_dashboards_count_against_the_pool_too(self, clients, session):
        service = clients(dashboards=5)
        service.partner.used_dashboards = 4
        session.flush()
        with pytest.raises(PoolExhausted) as refused:
            service.create("trial", resources={"dashboards": 2})
        assert refused.value.extensions["remaining"] == 1
        assert service.create("trial", resources={"dashboards": 1}).alloc_dashboards == 1

    def test_an_unlimited_pool_takes_any_allocation(self, clients):
        service = clients(dashboards=-1)
        service.create("trial", resources={"dashboards": 1_000_000})
        assert service.allocated()["dashboards"] == 1_000_000

    # SPEC §6: in trial and active, usage may not exceed the allocation.
    @pytest.mark.parametrize(
        ("start", "used", "target", "allocated", "refused"),
        [
            pytest.param("trial", 2, "trial", 1, True, id="lowering below usage in trial"),
            pytest.param("trial", 2, "trial", 2, False, id="lowering to usage in trial"),
            pytest.param("setup", 3, "setup", 1, False, id="setup builds freely"),
            pytest.param("setup", 3, "trial", 2, True, id="entering trial with more built"),
            pytest.param("setup", 3, "active", 3, False, id="entering active with as many"),
            pytest.param("disabled", 3, "active", 2, True, id="re-activating with more built"),
        ],
    )
    def test_usage_may_not_exceed_the_allocation_in_trial_and_active(
        self, clients, session, start, used, target, allocated, refused
    ):
        service = clients()
        client = service.in_status(start, dashboards=3)
        client.usage_dashboards = used
        session.flush()
        before = stored(client)
        body = {"status": target, "resources": {"dashboards": allocated}}
        if not refused:
            assert service.update(client, **body).alloc_dashboards == allocated
            return
        with pytest.raises(AllocationBelowUsage) as refusal:
            service.update(client, **body)
        assert refusal.value.extensions == {"resource": "dashboards", "allocated": allocated, "used": used}
        assert stored(client) == before

    def test_deleting_a_client_returns_its_allocation_and_keeps_its_history(self, clients, session):
        service = clients(dashboards=5)
        client = service.in_status("active", dashboards=3)
        client_id = client.id
        delete_client(session, service.clock, service.admin, client_id)
        assert service.allocated()["dashboards"] == 0
        assert service.partner.client_count == 0
        assert session.get(Client, client_id) is None
        assert session.scalars(
            select(StatusChange.to_status).where(StatusChange.client_id == client_id)
        ).all() == ["active"]


# SPEC §5 with a plan of 7 trial days and 10 extension days.
class TestTheTrialClock:
    def test_entering_trial_starts_the_clock_now_for_the_plans_days(self, clients):
        service = clients(trial_days=7)
        client = service.create("setup", resources=ROOMY)
        service.clock.advance(days=3)
        service.update(client, status="trial")
        assert (client.trial_started_at, client.trial_ends_at) == (
            service.clock.now(),
            service.clock.now() + 7 * DAY,
        )

    @pytest.mark.parametrize(
        ("elapsed", "status"),
        [
            pytest.param(timedelta(0), EffectiveStatus.TRIAL, id="at the start"),
            pytest.param(7 * DAY - SECOND, EffectiveStatus.TRIAL, id="a second before the end"),
            pytest.param(7 * DAY, EffectiveStatus.TRIAL_EXPIRED, id="at the end"),
            pytest.param(30 * DAY, EffectiveStatus.TRIAL_EXPIRED, id="long after"),
        ],
    )
    def test_a_trial_expires_exactly_at_its_end_without_any_job(self, clients, elapsed, status):
        service = clients(trial_days=7)
        client = service.create("trial", resources=ROOMY)
        service.clock.advance(elapsed)
        assert effective_status(client, service.clock.now()) is status
        assert client.status == "trial"

    @pytest.mark.parametrize(
        ("elapsed", "extended_before", "outcome"),
        [
            pytest.param(timedelta(0), False, "extended", id="at once"),
            pytest.param(7 * DAY - SECOND, False, "extended", id="a second before the end"),
            pytest.param(7 * DAY, False, "refused", id="at the end"),
            pytest.param(9 * DAY, False, "refused", id="after the end"),
            pytest.param(DAY, True, "refused", id="a second extension"),
        ],
    )
    def test_one_extension_strictly_before_the_first_trial_ends(
        self, clients, elapsed, extended_before, outcome
    ):
        service = clients(trial_days=7, trial_extension_days=10)
        client = service.create("trial", resources=ROOMY)
        ends = client.trial_ends_at
        assert ends is not None
        if extended_before:
            extend_trial(service.session, service.clock, service.admin, client.id)
            ends += 10 * DAY
        service.clock.advance(elapsed)
        before = stored(client)
        if outcome == "extended":
            extend_trial(service.session, service.clock, service.admin, client.id)
            assert (client.trial_ends_at, client.trial_extended_at) == (ends + 10 * DAY, service.clock.now())
            assert service.events("client.trial_extended") == 1
            return
        with pytest.raises(TrialExtensionUnavailable):
            extend_trial(service.session, service.clock, service.admin, client.id)
        assert stored(client) == before
        assert client.trial_ends_at == ends

    @pytest.mark.parametrize("status", ["setup", "active", "disabled"])
    def test_only_a_client_in_trial_has_its_trial_extended(self, clients, status):
        service = clients()
        client = service.in_status(status)
        with pytest.raises(TrialExtensionUnavailable):
            extend_trial(service.session, service.clock, service.admin, client.id)

    def test_leaving_trial_keeps_the_trial_fields_as_history(self, clients):
        service = clients(trial_days=7)
        client = service.create("trial", resources=ROOMY)
        started, ends = client.trial_started_at, client.trial_ends_at
        service.clock.advance(days=2)
        service.update(client, status="active")
        assert (client.trial_started_at, client.trial_ends_at) == (started, ends)


# Who may do what to a client: partner viewers read, editors change, admins also delete; a client's
# own admin may extend its trial, a member may not; nobody reaches another partner's client.
ROLES = """
| caller         | create | update | extend trial | delete |
|----------------|--------|--------|--------------|--------|
| partner admin  | ✓      | ✓      | ✓            | ✓      |
| partner editor | ✓      | ✓      | ✓            | ✗      |
| partner viewer | ✗      | ✗      | ✗            | ✗      |
| client admin   |        |        | ✓            |        |
| client member  |        |        | ✗            |        |
"""
ACTIONS: dict[str, Callable[[Clients, Principal, Client], object]] = {
    "create": lambda s, by, client: s.create("trial", by=by, resources=ROOMY),
    "update": lambda s, by, client: s.update(client, by=by, name="Renamed"),
    "extend trial": lambda s, by, client: extend_trial(s.session, s.clock, by, client.id),
    "delete": lambda s, by, client: delete_client(s.session, s.clock, by, client.id),
}
ROLE_ROWS = [
    pytest.param(caller, action, mark == "✓", id=f"{caller} {action}")
    for caller, *marks in table(ROLES)
    for action, mark in zip(ACTIONS, marks, strict=True)
    if mark
]


class TestWhoMay:
    @pytest.mark.parametrize(("caller", "action", "allowed"), ROLE_ROWS)
    def test_each_caller_may_do_what_its_role_allows(self, clients, caller, action, allowed):
        service = clients()
        client = service.in_status("trial")
        kind, role = caller.split()
        by = as_role(service.admin, role, client if kind == "client" else None)
        if allowed:
            ACTIONS[action](service, by, client)
            return
        before = stored(client)
        with pytest.raises(Forbidden):
            ACTIONS[action](service, by, client)
        assert stored(client) == before

    @pytest.mark.parametrize("action", ["update", "extend trial", "delete"])
    def test_another_partners_client_is_not_found(self, clients, action):
        ours, theirs = clients(), clients()
        client = theirs.in_status("trial")
        with pytest.raises(NotFound):
            ACTIONS[action](ours, ours.admin, client)

    def test_an_external_id_is_unique_within_a_partner_only(self, clients):
        first, second = clients(), clients()
        first.create(external_id="crm-1")
        with pytest.raises(Duplicate) as refused:
            first.create(external_id="crm-1")
        assert refused.value.extensions == {"field": "external_id"}
        assert second.create(external_id="crm-1").external_id == "crm-1"

    def test_every_refusal_is_a_tenantry_error_with_a_sentence(self, clients):
        service = clients()
        client = service.in_status("active")
        with pytest.raises(TenantryError) as refused:
            service.update(client, status="setup")
        assert refused.value.detail == "A client in Active mode cannot be moved to Setup mode."
