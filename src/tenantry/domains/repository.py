"""All SQL about partners' domains. A partner's lookups go through `scoped_domains`."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, func, select, true
from sqlalchemy.orm import Session

from tenantry.auth.principal import Principal
from tenantry.db.domain_models import PartnerDomain
from tenantry.db.prepared import PreparedSelect
from tenantry.errors import NotFound

# Read by every process every few seconds (tenantry.domains.routing), on the event loop.
VERIFIED_HOSTS = PreparedSelect(
    select(PartnerDomain.hostname, PartnerDomain.partner_id).where(PartnerDomain.verified.is_(true()))
)


def scoped_domains(principal: Principal) -> Select[PartnerDomain]:
    """The domains of the caller's partner: another partner's domain is not found (404)."""
    return select(PartnerDomain).where(PartnerDomain.partner_id == principal.partner_id)


def get_domain(db: Session, principal: Principal, domain_id: int, *, lock: bool = False) -> PartnerDomain:
    """A domain of the caller's partner (else 404); with `lock`, held until the transaction ends,
    so requests removing it at once take turns, and all but the first find nothing."""
    query = scoped_domains(principal).where(PartnerDomain.id == domain_id)
    if lock:
        query = query.with_for_update(of=PartnerDomain)
    domain = db.scalars(query).one_or_none()
    if domain is None:
        raise NotFound(f"No domain {domain_id}.")
    return domain


def list_domains(
    db: Session, principal: Principal, limit: int, offset: int
) -> tuple[Sequence[PartnerDomain], int]:
    query = scoped_domains(principal)
    items = db.scalars(query.order_by(PartnerDomain.id).limit(limit).offset(offset)).all()
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    return items, total


def count_domains(db: Session, partner_id: int) -> int:
    return (
        db.scalar(
            select(func.count()).select_from(PartnerDomain).where(PartnerDomain.partner_id == partner_id)
        )
        or 0
    )


def find_by_hostname(db: Session, hostname: str) -> PartnerDomain | None:
    """Any partner's domain of this name (names are unique across partners)."""
    return db.scalars(select(PartnerDomain).where(PartnerDomain.hostname == hostname)).one_or_none()


def all_domains(db: Session) -> Sequence[PartnerDomain]:
    return db.scalars(select(PartnerDomain).order_by(PartnerDomain.id)).all()


def first_verified_hostname(db: Session, partner_id: int) -> str | None:
    """The partner's oldest verified domain (by id), which e-mails link to."""
    return db.scalar(
        select(PartnerDomain.hostname)
        .where(PartnerDomain.partner_id == partner_id, PartnerDomain.verified.is_(true()))
        .order_by(PartnerDomain.id)
        .limit(1)
    )
