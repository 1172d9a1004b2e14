"""Domain use cases: a partner adds, lists and removes its host names; the operator verifies them
(`tenantry domain verify`). Services flush, never commit."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tenantry.audit import audit
from tenantry.auth.principal import CLI_ACTOR, Principal
from tenantry.clock import Clock
from tenantry.db.domain_models import PartnerDomain
from tenantry.domains import repository as repo
from tenantry.domains.names import BadHostname, normalised, operator_host
from tenantry.domains.schemas import DomainCreate
from tenantry.errors import Duplicate, InvalidInput, NotFound
from tenantry.limits import Limit, check_room
from tenantry.partners import repository as partners_repo

DOMAINS_PER_PARTNER = Limit("domains_per_partner", 20, "domains", "A partner")
TAKEN = "This host name is already in use."


def add_domain(
    db: Session, clock: Clock, principal: Principal, data: DomainCreate, base_url: str
) -> PartnerDomain:
    """Add a host name, unverified: it serves nothing until the operator has verified it."""
    principal.require_admin()
    if data.hostname == operator_host(base_url):
        raise InvalidInput("This is the server's own address, not a partner's domain.", field="hostname")
    # Under the partner lock, so concurrent requests cannot both take the last place.
    partners_repo.lock_partner(db, principal.partner_id)
    check_room(DOMAINS_PER_PARTNER, repo.count_domains(db, principal.partner_id))
    # Whoever holds it (this partner or another), the answer is the same: it is taken.
    if repo.find_by_hostname(db, data.hostname) is not None:
        raise Duplicate(TAKEN, field="hostname")
    domain = PartnerDomain(
        partner_id=principal.partner_id, hostname=data.hostname, verified=False, created_at=clock.now()
    )
    try:
        with db.begin_nested():
            db.add(domain)
            db.flush()
    except IntegrityError:
        # Another partner added the same name at the same moment: the unique index decided.
        raise Duplicate(TAKEN, field="hostname") from None
    _audit(db, domain, principal.actor, "domain.added", clock)
    return domain


def domains_of(
    db: Session, principal: Principal, limit: int, offset: int
) -> tuple[Sequence[PartnerDomain], int]:
    """The partner's domains, oldest first, and how many there are."""
    return repo.list_domains(db, principal, limit, offset)


def remove_domain(db: Session, clock: Clock, principal: Principal, domain_id: int) -> None:
    """Remove a host name: it stops serving the partner within seconds (every process's copy)."""
    principal.require_admin()
    domain = repo.get_domain(db, principal, domain_id, lock=True)
    _audit(db, domain, principal.actor, "domain.removed", clock)
    db.delete(domain)
    db.flush()


def verify_domain(db: Session, clock: Clock, hostname: str) -> PartnerDomain:
    """The operator's check is done: the name serves its partner (`tenantry domain verify`)."""
    try:
        name = normalised(hostname)
    except BadHostname as bad:
        raise InvalidInput(f"Not a host name: {bad}.", field="hostname") from None
    domain = repo.find_by_hostname(db, name)
    if domain is None:
        raise NotFound(f"No partner has added the domain {name}.")
    if not domain.verified:
        domain.verified, domain.verified_at = True, clock.now()
        db.flush()
        _audit(db, domain, CLI_ACTOR, "domain.verified", clock)
    return domain


def all_domains(db: Session) -> Sequence[PartnerDomain]:
    """Every partner's domains, for the operator (`tenantry domain list`)."""
    return repo.all_domains(db)


def _audit(db: Session, domain: PartnerDomain, actor: str, action: str, clock: Clock) -> None:
    audit(
        db,
        partner_id=domain.partner_id,
        actor=actor,
        action=action,
        target=f"domain:{domain.id}",
        at=clock.now(),
        details={"hostname": domain.hostname},
    )
