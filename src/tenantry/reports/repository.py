"""All SQL of scheduled reports: schedules scoped to their caller, their runs, and the worker's
claims (leases, and the one run per schedule and slot)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tenantry.auth.principal import Principal
from tenantry.db import leases
from tenantry.db.locks import lock_row
from tenantry.db.models import ClientUser, Dashboard, PartnerUser, StatusChange
from tenantry.db.report_models import ReportRun, ReportSchedule
from tenantry.errors import NotFound
from tenantry.owners import scoped


def get_schedule(
    db: Session, principal: Principal, schedule_id: int, *, lock: bool = False
) -> ReportSchedule:
    """The schedule if the caller's tenant owns it; another partner's or client's is not found.
    With `lock`, held until the transaction ends (a change or deletion, which take turns)."""
    query = scoped(select(ReportSchedule), ReportSchedule, principal).where(ReportSchedule.id == schedule_id)
    if lock:
        query = query.with_for_update(of=ReportSchedule).execution_options(populate_existing=True)
    schedule = db.scalars(query).one_or_none()
    if schedule is None:
        raise NotFound(f"No schedule {schedule_id}.")
    return schedule


def schedules_of(
    db: Session, dashboard_id: int, limit: int, offset: int
) -> tuple[Sequence[ReportSchedule], int]:
    where = ReportSchedule.dashboard_id == dashboard_id
    items = db.scalars(
        select(ReportSchedule).where(where).order_by(ReportSchedule.id).limit(limit).offset(offset)
    ).all()
    total = db.scalar(select(func.count()).select_from(ReportSchedule).where(where)) or 0
    return items, total


def lock_schedules_of(db: Session, dashboard_id: int) -> int:
    """Serialise changes to one dashboard's schedules (its row, on PostgreSQL; SQLite's write
    transaction is already alone), and count them, so two requests cannot both pass its limit."""
    lock_row(db, Dashboard, dashboard_id)
    where = ReportSchedule.dashboard_id == dashboard_id
    return int(db.scalar(select(func.count()).select_from(ReportSchedule).where(where)) or 0)


def runs_of(db: Session, schedule_id: int, limit: int, offset: int) -> tuple[Sequence[ReportRun], int]:
    """A schedule's runs, newest slot first."""
    where = ReportRun.schedule_id == schedule_id
    items = db.scalars(
        select(ReportRun)
        .where(where)
        .order_by(ReportRun.slot.desc(), ReportRun.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    total = db.scalar(select(func.count()).select_from(ReportRun).where(where)) or 0
    return items, total


def run_of_mail(db: Session, mail_id: int) -> ReportRun | None:
    return db.scalars(select(ReportRun).where(ReportRun.mail_id == mail_id).with_for_update()).first()


def delete_schedule(db: Session, schedule_id: int) -> None:
    db.execute(delete(ReportRun).where(ReportRun.schedule_id == schedule_id))
    db.execute(delete(ReportSchedule).where(ReportSchedule.id == schedule_id))


def account_users(db: Session, partner_id: int, client_id: int | None) -> dict[int, str]:
    """The users of an account (a client's, or the partner's own): id -> e-mail address."""
    if client_id is None:
        query = select(PartnerUser.id, PartnerUser.email).where(PartnerUser.partner_id == partner_id)
    else:
        query = select(ClientUser.id, ClientUser.email).where(ClientUser.client_id == client_id)
    return {user_id: email for user_id, email in db.execute(query)}


def partner_role(db: Session, partner_id: int, actor: str) -> str | None:
    """The role in this partner of the partner user `actor` names (`Principal.actor`), held until
    the transaction ends (a change of role then waits for the run); None for anyone else: a client
    user, the command line, or a user removed since."""
    kind, _, user_id = actor.partition(":")
    if kind != "partner_user" or not user_id.isdigit():
        return None
    query = select(PartnerUser.role).where(
        PartnerUser.id == int(user_id), PartnerUser.partner_id == partner_id
    )
    return db.scalars(query.with_for_update()).one_or_none()


def stored_status_at(db: Session, partner_id: int, client_id: int, at: datetime) -> str | None:
    """The client's stored status at `at`: the last change of its status history made then or
    before (None if the history has none)."""
    query = (
        select(StatusChange.to_status)
        .where(
            StatusChange.partner_id == partner_id,
            StatusChange.client_id == client_id,
            StatusChange.at <= at,
        )
        .order_by(StatusChange.at.desc(), StatusChange.id.desc())
        .limit(1)
    )
    return db.scalar(query)


# The worker's side


def due(now: datetime) -> ColumnElement[bool]:
    return and_(ReportSchedule.next_run_at <= now, leases.lease_free(ReportSchedule.lease_expires_at, now))


def claim(
    db: Session, worker_id: str, now: datetime, lease_until: datetime, limit: int, shares: leases.Shares
) -> list[tuple[int, int, datetime]]:
    """Lease up to `limit` due schedules, the longest-waiting first, fairly across partners:
    (id, partner id, next_run_at) of each."""
    waiting = due(now)
    columns = select(ReportSchedule.id, ReportSchedule.partner_id, ReportSchedule.next_run_at)

    def lock(extra: ColumnElement[bool], n: int | None) -> Sequence[Any]:
        query = columns.where(waiting, extra).order_by(ReportSchedule.next_run_at, ReportSchedule.id).limit(n)
        return db.execute(query.with_for_update(skip_locked=True)).all()

    rows = leases.claim_in_turn(
        db,
        ReportSchedule.id,
        ReportSchedule.partner_id,
        ReportSchedule.next_run_at,
        waiting,
        limit,
        shares,
        lock,
        lambda r: (r.id, r.partner_id),
        partner_index=True,
    )
    if rows:
        db.execute(
            update(ReportSchedule)
            .where(ReportSchedule.id.in_([r.id for r in rows]))
            .values(lease_owner=worker_id, lease_expires_at=lease_until)
        )
    return [(r.id, r.partner_id, r.next_run_at) for r in rows]


def leased(db: Session, schedule_id: int, worker_id: str, *, lock: bool = True) -> ReportSchedule | None:
    """The schedule, locked unless told otherwise, if this worker still holds its lease."""
    statement = select(ReportSchedule).where(
        ReportSchedule.id == schedule_id, ReportSchedule.lease_owner == worker_id
    )
    return db.scalars(statement.with_for_update() if lock else statement).one_or_none()


def release(db: Session, ids: Sequence[int], worker_id: str) -> None:
    leases.release(db, ReportSchedule, ids, worker_id)


def claim_slot(
    db: Session, schedule_id: int, partner_id: int, slot: datetime, now: datetime
) -> ReportRun | None:
    """Write the slot's run (as `skipped` until it is settled, in the same transaction) unless one
    exists: the run when this call wrote it (as the INSERT returned it: no second read), None when
    another worker already has. A racing insert of the same slot waits for the first transaction
    and then does nothing."""
    dialect = postgresql if db.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(ReportRun)
        .values(
            schedule_id=schedule_id,
            partner_id=partner_id,
            slot=slot,
            status="skipped",
            recipients=[],
            late=False,
            watermark=False,
            finished_at=now,
        )
        .on_conflict_do_nothing()
        .returning(ReportRun)
    )
    return db.scalars(statement).one_or_none()
