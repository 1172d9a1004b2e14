"""All SQL about partners: loading one, locking it for pool changes, its meter calendar, and the
pool lines kept on its row."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from tenantry.db.models import Client, Partner
from tenantry.errors import NotFound
from tenantry.meter.calendar import MeterCalendar
from tenantry.pool import RESOURCES, PoolLine


def get_partner(db: Session, partner_id: int) -> Partner:
    partner = db.get(Partner, partner_id)
    if partner is None:
        raise NotFound(f"No partner {partner_id}.")
    return partner


def days_timezone(db: Session, partner_id: int, client_id: int | None) -> str:
    """The timezone a dashboard's days are in (its date filters, day buckets, the day an export is
    named after): its client's own when set, else the partner's (SPEC §13). A partner's own
    dashboard (no client) has the partner's. Rows the session holds already are not read again."""
    client = db.get(Client, client_id) if client_id is not None else None
    if client is not None and client.partner_id == partner_id and client.timezone is not None:
        return client.timezone
    return get_partner(db, partner_id).timezone


_PARTNER_TIMEZONES = select(Partner.timezone, Partner.previous_timezone, Partner.timezone_from).where(
    Partner.id == bindparam("partner_id")
)


def partner_meter_calendar(db: Session, partner_id: int) -> MeterCalendar:
    """Only the timezones (the meter's days): cheaper than loading the partner. When this
    transaction locked the partner (`lock_partner`, as every pool change does), from that row,
    without reading it again."""
    kept = db.info.get(_LOCKED)
    if kept is not None and kept[0] is db.get_transaction() and kept[1].id == partner_id:
        return MeterCalendar.of(kept[1])
    row = db.execute(_PARTNER_TIMEZONES, {"partner_id": partner_id}).one_or_none()
    if row is None:
        raise NotFound(f"No partner {partner_id}.")
    return MeterCalendar.of(row)


def lock_partner(db: Session, partner_id: int) -> Partner:
    """Serialise pool changes per partner.

    PostgreSQL: the partner row is locked until the transaction ends (FOR NO KEY UPDATE: other
    transactions' rows that refer to the partner, such as an audit record, are still written
    meanwhile, so a request holding a dashboard's row and writing its audit record never waits for
    one holding the partner, which may be waiting for that dashboard). SQLite: write requests
    already hold the database's write lock from BEGIN IMMEDIATE (see db.session), and the
    FOR UPDATE clause is simply not rendered.
    """
    partner = db.scalars(
        select(Partner)
        .where(Partner.id == partner_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).one_or_none()
    if partner is None:
        raise NotFound(f"No partner {partner_id}.")
    # Kept for the rest of this transaction (the session holds a clean row only weakly), for
    # `partner_meter_calendar`: no one else can change the row until the transaction ends.
    db.info[_LOCKED] = (db.get_transaction(), partner)
    return partner


# Where `lock_partner` keeps (its transaction, the partner it locked) in the session's `info`.
_LOCKED = "tenantry.locked_partner"


def pool_lines(partner: Partner) -> dict[str, PoolLine]:
    return {
        r: PoolLine(
            resource=r,
            total=getattr(partner, f"plan_{r}"),
            used_by_partner=0 if r == "api_calls_per_day" else getattr(partner, f"used_{r}"),
            allocated=getattr(partner, f"allocated_{r}"),
        )
        for r in RESOURCES
    }


def add_to_allocated(partner: Partner, change: dict[str, int]) -> None:
    for r, delta in change.items():
        if delta:
            setattr(partner, f"allocated_{r}", getattr(partner, f"allocated_{r}") + delta)
