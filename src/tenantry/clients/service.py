"""Client use cases: create, change, activate, extend a trial, delete.

Services flush, never commit: the request, worker job or command around them commits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tenantry import lifecycle, pool
from tenantry.audit import audit, audit_many, emit, emit_many
from tenantry.auth.principal import Principal
from tenantry.clients import repository as repo
from tenantry.clients.schemas import ClientCreate, ClientUpdate, event_client
from tenantry.clock import Clock
from tenantry.db.models import AuditEvent, Client, Partner, StatusChange
from tenantry.db.statements_models import ClientRename
from tenantry.errors import AllocationBelowUsage, Duplicate, PoolExhausted
from tenantry.events import repository as events_repo
from tenantry.meter.calendar import MeterCalendar
from tenantry.partners import repository as partners_repo
from tenantry.policy import EffectiveStatus, Status, counts_against_pool


def effective_status(client: repo.ClientFields, now: datetime) -> EffectiveStatus:
    return lifecycle.effective_status(Status(client.status), lifecycle.trial_of(client), now)


def _audit_and_publish(
    db: Session, client: Client, actor: str, action: str, now: datetime, details: dict[str, Any]
) -> None:
    """Audit a change to a client and publish it as the event of the same name."""
    audit(
        db,
        partner_id=client.partner_id,
        client_id=client.id,
        actor=actor,
        action=action,
        target=f"client:{client.id}",
        at=now,
        details=details,
    )
    emit(
        db,
        partner_id=client.partner_id,
        client_id=client.id,
        type=action,
        at=now,
        data={"client": event_client(client, now)},
    )


def _apply_status_and_allocation(
    db: Session,
    partner: Partner,
    client: Client,
    old_status: Status | None,
    target: Status,
    new_allocation: Mapping[str, int],
    now: datetime,
    actor: str,
    reason: str,
) -> None:
    """Check and apply a status change and an allocation change together, atomically.

    The caller holds the partner lock. Nothing is written until every check has passed.
    """
    lifecycle.check_transition(old_status, target)
    status_changes = old_status is not target
    if target is Status.ACTIVE and status_changes:
        lifecycle.check_activation(new_allocation)

    old_allocation = repo.allocation_of(client) if old_status is not None else pool.zero()
    counted_before = old_status is not None and counts_against_pool(old_status)
    counted_after = counts_against_pool(target)
    if counted_after:
        pool.check_usage_within(new_allocation, repo.usage_of(client), entering=not counted_before)
    change = pool.deltas(
        pool.counted_allocation(old_allocation, counted_before),
        pool.counted_allocation(new_allocation, counted_after),
    )
    pool.check_fits(partners_repo.pool_lines(partner), change)

    # All checks passed: write.
    if status_changes and old_status is Status.TRIAL:
        _trial_ended_notice(db, partner, client, now)
    partners_repo.add_to_allocated(partner, change)
    allocation_changes = dict(old_allocation) != dict(new_allocation) or old_status is None
    repo.set_allocation(client, dict(new_allocation))
    if status_changes:
        client.status = target.value
        client.status_changed_at = now
        if target is Status.TRIAL:
            repo.set_trial(client, lifecycle.start_trial(now, partner.trial_days))
    if client.id is None:
        db.flush()  # a new client needs its id for the history rows (a change's rows go with it)
    if allocation_changes:
        repo.record_allocation_change(db, client, now)
    if status_changes:
        repo.record_status_change(
            db, client, old_status.value if old_status else None, target.value, now, actor, reason
        )
        emit(
            db,
            partner_id=partner.id,
            client_id=client.id,
            type="client.status_changed",
            at=now,
            data={
                "client": event_client(client, now),
                "from": old_status.value if old_status else None,
                "to": target.value,
                "actor": actor,
                "reason": reason,
            },
        )


def _trial_ended_notice(db: Session, partner: Partner, client: Client, now: datetime) -> None:
    """`client.trial_ended` for a trial that ended before the worker wrote its notice, written as
    the client leaves Trial (SPEC §5: once at the end, whoever notices first; the notice's key
    keeps the worker from writing it again)."""
    ends_at = client.trial_ends_at
    if (
        ends_at is None
        or ends_at > now
        or not events_repo.record_notice(db, client.id, "ended", ends_at, now)
    ):
        return
    emit(
        db,
        partner_id=partner.id,
        client_id=client.id,
        type="client.trial_ended",
        at=now,
        data={"client": event_client(client, now), "ends_at": ends_at.isoformat()},
    )


def move_to(
    db: Session, partner: Partner, client: Client, target: Status, now: datetime, actor: str, reason: str
) -> None:
    """Change a client's status, keeping its allocation (the caller holds the partner lock)."""
    allocation = repo.allocation_of(client)
    _apply_status_and_allocation(
        db, partner, client, Status(client.status), target, allocation, now, actor, reason
    )


def client_page(
    db: Session,
    principal: Principal,
    now: datetime,
    *,
    status: str | None,
    external_id: str | None,
    q: str | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[Client], int, MeterCalendar]:
    """A page of the partner's clients, oldest first, their total, and the meter's calendar (today's
    API calls are counted on it)."""
    partner = partners_repo.get_partner(db, principal.partner_id)
    items, total = repo.list_clients(
        db, partner, now=now, status=status, external_id=external_id, q=q, limit=limit, offset=offset
    )
    return items, total, MeterCalendar.of(partner)


def with_calendar(db: Session, client: Client) -> tuple[Client, MeterCalendar]:
    """A client and the meter's calendar its API calls are counted on."""
    return client, partners_repo.partner_meter_calendar(db, client.partner_id)


def status_history(
    db: Session, principal: Principal, client_id: int, limit: int, offset: int
) -> tuple[Sequence[StatusChange], int]:
    """The client's status changes, oldest first, and how many there are."""
    client = repo.get_client(db, principal, client_id)
    return repo.status_history(db, client.partner_id, client.id, limit, offset)


def audit_log(
    db: Session, principal: Principal, client_id: int, limit: int, offset: int
) -> tuple[Sequence[AuditEvent], int]:
    """The client's audit records, newest first, and how many there are."""
    client = repo.get_client(db, principal, client_id)
    return repo.audit_log(db, client.partner_id, client.id, limit, offset)


def create_client(db: Session, clock: Clock, principal: Principal, data: ClientCreate) -> Client:
    principal.require_write()
    now = clock.now()
    partner = partners_repo.lock_partner(db, principal.partner_id)
    if data.external_id is not None and repo.external_id_taken(db, partner.id, data.external_id):
        raise Duplicate(
            f"A client with external_id {data.external_id!r} already exists.", field="external_id"
        )
    return add_client(db, partner, data, now, principal.actor)


def add_client(db: Session, partner: Partner, data: ClientCreate, now: datetime, actor: str) -> Client:
    """Write a new client of `partner`, which the caller has locked, after the status and pool checks.

    The external id's uniqueness is the caller's to check (one client, or a whole file at once).
    """
    allocation = {**pool.zero(), **(data.resources.given() if data.resources else {})}
    client = Client(
        partner_id=partner.id,
        name=data.name,
        description=data.description,
        external_id=data.external_id,
        timezone=data.timezone,
        status=Status.SETUP.value,
        created_at=now,
        status_changed_at=now,
        **{f"alloc_{r}": 0 for r in pool.RESOURCES},
        usage_dashboards=0,
        usage_users=0,
        usage_published_links=0,
    )
    # A refused create raises before the flush; the request's transaction is rolled back.
    db.add(client)
    partner.client_count += 1
    _apply_status_and_allocation(
        db, partner, client, None, Status(data.status), allocation, now, actor, data.reason
    )
    audit(
        db,
        partner_id=partner.id,
        client_id=client.id,
        actor=actor,
        action="client.created",
        target=f"client:{client.id}",
        at=now,
        details={"name": client.name, "status": client.status, "resources": allocation},
    )
    return client


def add_clients(
    db: Session, partner: Partner, datas: Sequence[ClientCreate], now: datetime, actor: str
) -> list[Client]:
    """Write many new clients of `partner` at once (an import), each as `add_client` would.

    The caller holds the partner lock and has checked everything `add_client` checks, for the whole
    set: each status may be entered at creation, an Active one has a dashboard and a user
    allocated, and the pool holds the sum of what they take (checked once). Written in a few
    batched statements rather than one round trip per row.
    """
    clients: list[Client] = []
    taken = pool.zero()
    for data in datas:
        target = Status(data.status)
        allocation = {**pool.zero(), **(data.resources.given() if data.resources else {})}
        counted = pool.counted_allocation(allocation, counts_against_pool(target))
        taken = {r: taken[r] + counted[r] for r in pool.RESOURCES}
        client = Client(
            partner_id=partner.id,
            name=data.name,
            description=data.description,
            external_id=data.external_id,
            timezone=data.timezone,
            status=target.value,
            created_at=now,
            status_changed_at=now,
            **{f"alloc_{r}": allocation[r] for r in pool.RESOURCES},
            usage_dashboards=0,
            usage_users=0,
            usage_published_links=0,
        )
        if target is Status.TRIAL:
            repo.set_trial(client, lifecycle.start_trial(now, partner.trial_days))
        clients.append(client)
    db.add_all(clients)
    partner.client_count += len(clients)
    partners_repo.add_to_allocated(partner, taken)
    db.flush()  # one batched INSERT; the history rows need the ids
    # The history rows go in as a few batched statements, not one ORM object each.
    allocations, statuses, events, audits = [], [], [], []
    for client, data in zip(clients, datas, strict=True):
        allocation = repo.allocation_of(client)
        allocations.append({"partner_id": partner.id, "client_id": client.id, "at": now, **allocation})
        statuses.append(
            {
                "partner_id": partner.id,
                "client_id": client.id,
                "from_status": None,
                "to_status": client.status,
                "at": now,
                "actor": actor,
                "reason": data.reason,
            }
        )
        events.append(
            {
                "partner_id": partner.id,
                "client_id": client.id,
                "type": "client.status_changed",
                "at": now,
                "data": {
                    "client": event_client(client, now),
                    "from": None,
                    "to": client.status,
                    "actor": actor,
                    "reason": data.reason,
                },
            }
        )
        audits.append(
            {
                "partner_id": partner.id,
                "client_id": client.id,
                "actor": actor,
                "action": "client.created",
                "target": f"client:{client.id}",
                "at": now,
                "details": {"name": client.name, "status": client.status, "resources": allocation},
            }
        )
    repo.record_changes(db, allocations, statuses)
    emit_many(db, events)
    audit_many(db, audits)
    return clients


def update_client(
    db: Session, clock: Clock, principal: Principal, client_id: int, data: ClientUpdate
) -> Client:
    principal.require_write()
    now = clock.now()
    partner = partners_repo.lock_partner(db, principal.partner_id)
    client = repo.get_client(db, principal, client_id)
    fields = data.model_fields_set
    changed: dict[str, Any] = {}
    if "external_id" in fields and data.external_id != client.external_id:
        if data.external_id is not None and repo.external_id_taken(
            db, partner.id, data.external_id, client.id
        ):
            raise Duplicate(
                f"A client with external_id {data.external_id!r} already exists.", field="external_id"
            )
        changed["external_id"] = data.external_id
    if "timezone" in fields and data.timezone != client.timezone:
        changed["timezone"] = data.timezone  # None: the partner's again
    for name in ("name", "description"):
        value = getattr(data, name)
        if name in fields and value is not None and value != getattr(client, name):
            changed[name] = value

    if "name" in changed:  # statements of the months already over keep the name they had
        db.add(ClientRename(partner_id=partner.id, client_id=client.id, old_name=client.name, at=now))
    # Before the status changes: its event carries the client as it is after this request.
    for name in ("external_id", "timezone", "name", "description"):
        if name in changed:
            setattr(client, name, changed[name])
    old_status = Status(client.status)
    target = Status(data.status) if data.status is not None else old_status
    allocation = {**repo.allocation_of(client), **(data.resources.given() if data.resources else {})}
    if target is not old_status or allocation != repo.allocation_of(client):
        _apply_status_and_allocation(
            db, partner, client, old_status, target, allocation, now, principal.actor, data.reason
        )
        if target is not old_status:
            changed["status"] = {"from": old_status.value, "to": target.value}
        if allocation != repo.allocation_of(client) or data.resources:
            changed["resources"] = allocation
    if changed:
        audit(
            db,
            partner_id=partner.id,
            client_id=client.id,
            actor=principal.actor,
            action="client.updated",
            target=f"client:{client.id}",
            at=now,
            details=changed,
        )
    db.flush()
    return client


def activation_check(db: Session, principal: Principal, client_id: int) -> dict[str, Any]:
    """What stands between the client and Active, without changing anything."""
    client = repo.get_client(db, principal, client_id)
    status = Status(client.status)
    if status is Status.ACTIVE:
        return {"ready": True, "missing": []}
    allocation = repo.allocation_of(client)
    missing: list[str] = []
    if Status.ACTIVE not in lifecycle.TRANSITIONS[status]:
        missing.append("status")
    missing += lifecycle.activation_missing(allocation)
    try:
        pool.check_usage_within(allocation, repo.usage_of(client), entering=True)
    except AllocationBelowUsage as refusal:
        missing.append(f"allocation_below_usage:{refusal.extensions['resource']}")
    if not counts_against_pool(status):
        try:
            pool.check_fits(
                partners_repo.pool_lines(partners_repo.get_partner(db, principal.partner_id)), allocation
            )
        except PoolExhausted as refusal:
            missing.append(f"pool:{refusal.extensions['resource']}")
    return {"ready": not missing, "missing": missing}


def extend_trial(db: Session, clock: Clock, principal: Principal, client_id: int) -> Client:
    """One extension, strictly before the first trial ends (seed); by a partner user or client admin."""
    principal.require_write()
    if not principal.is_partner:
        principal.require_admin()
    now = clock.now()
    partner = partners_repo.lock_partner(db, principal.partner_id)
    client = repo.get_client(db, principal, client_id)
    trial = lifecycle.extend_trial(
        lifecycle.trial_of(client), now, partner.trial_extension_days, Status(client.status)
    )
    repo.set_trial(client, trial)
    _audit_and_publish(
        db, client, principal.actor, "client.trial_extended", now, {"ends_at": trial.ends_at.isoformat()}
    )
    db.flush()
    return client


def delete_client(db: Session, clock: Clock, principal: Principal, client_id: int) -> None:
    """Remove the client and everything in it; its allocation returns to the pool.

    Its status and allocation histories are kept, so no statement changes; the month in progress
    counts the client up to now.
    """
    principal.require_admin()
    now = clock.now()
    partner = partners_repo.lock_partner(db, principal.partner_id)
    client = repo.get_client(db, principal, client_id)
    counted = pool.counted_allocation(repo.allocation_of(client), counts_against_pool(Status(client.status)))
    partners_repo.add_to_allocated(partner, {r: -v for r, v in counted.items()})
    partner.client_count -= 1
    if client.status == Status.TRIAL:
        # A trial that ended before the worker noticed gets its notice now: once deleted, the
        # client is never found by the worker's search for ended trials again.
        _trial_ended_notice(db, partner, client, now)
    _audit_and_publish(
        db, client, principal.actor, "client.deleted", now, {"name": client.name, "status": client.status}
    )
    db.flush()
    repo.delete_client(db, client, now, principal.actor)
    db.expunge(client)
