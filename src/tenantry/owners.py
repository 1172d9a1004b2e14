"""Who owns a data source, dashboard or published link: one client, or the partner itself.

Every tenant-owned query of content goes through `scoped()`, and every status question about
content goes through `Owner.status`, which the policy table answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from tenantry import lifecycle, limits, pool
from tenantry.audit import audit
from tenantry.auth.principal import Principal
from tenantry.clients import repository as clients_repo
from tenantry.db.models import Client
from tenantry.errors import Forbidden, NotFound
from tenantry.lifecycle import Trial
from tenantry.partners import repository as partners_repo
from tenantry.policy import (
    Capability,
    Decision,
    EffectiveStatus,
    Status,
    counts_against_pool,
    require,
    stored_status,
)

T = TypeVar("T")


@dataclass
class Owner:
    partner_id: int
    client: Client | None  # None: the partner's own account

    @property
    def client_id(self) -> int | None:
        return self.client.id if self.client is not None else None

    def status(self, now: datetime) -> EffectiveStatus:
        if self.client is None:
            return content_status(None, None, now)
        return content_status(self.client.status, lifecycle.trial_of(self.client), now)

    def require(self, capability: Capability, now: datetime, action: str | None = None) -> Decision:
        return require(capability, self.status(now), action)


def content_status(stored: str | None, trial: Trial | None, now: datetime) -> EffectiveStatus:
    """The status that governs content: its client's, or Active for the partner's own.

    The partner's own account is the paid, operational parent account: it acts as Active.
    """
    if stored is None:
        return EffectiveStatus.ACTIVE
    return lifecycle.effective_status(stored_status(stored), trial, now)


def scoped(query: Select[Any], model: Any, principal: Principal) -> Select[Any]:
    """Limit a query of content to what this caller may see.

    A partner user sees all of its partner's content; a client user only its own client's. So
    another tenant's object is simply not found (404, never 403).
    """
    query = query.where(model.partner_id == principal.partner_id)
    if principal.client_id is not None:
        query = query.where(model.client_id == principal.client_id)
    return query


def client_owner(db: Session, principal: Principal, client_id: int) -> Owner:
    return Owner(principal.partner_id, clients_repo.get_client(db, principal, client_id))


def partner_owner(principal: Principal) -> Owner:
    if not principal.is_partner:
        raise Forbidden("This needs a partner key; client keys reach only their own client's resources.")
    return Owner(principal.partner_id, None)


def owner_of(db: Session, partner_id: int, client_id: int | None) -> Owner:
    """The owner of an object already found through `scoped()`."""
    client = db.get(Client, client_id) if client_id is not None else None
    return Owner(partner_id, client)


# The client roles that build (SPEC §13): an admin also manages users and published links; an
# editor builds data sources, dashboards and klips and shares them; a member sees what is shared.
CLIENT_BUILDERS = ("admin", "editor")


def only_shared(principal: Principal) -> bool:
    """A client member sees the dashboards shared with them and nothing else of the client."""
    return not principal.is_partner and principal.role not in CLIENT_BUILDERS


def require_reader(principal: Principal) -> None:
    """Data sources (their rows and settings) and a client's users are read by partner users and
    the client's admins and editors, never by a member: a source's rows hold more than the
    dashboards shared with them show, and a url source's address may carry credentials."""
    if only_shared(principal):
        raise Forbidden("A member sees the dashboards shared with them and nothing else of the client.")


def require_builder(principal: Principal) -> None:
    """Partner admins and editors build content; among client users, admins and editors."""
    principal.require_write()
    if only_shared(principal):
        raise Forbidden("Only a client's admins and editors build data sources, dashboards and klips.")


def require_link_manager(principal: Principal, *, write: bool = True) -> None:
    """Published links are the partner's users' (viewers only read them) and, among client
    users, the admins' alone: an editor builds and shares inside the account, a link opens a
    dashboard to anyone holding it."""
    if write:
        principal.require_write()
    if not principal.is_partner and principal.role != "admin":
        raise Forbidden("Only a client's admins manage published links.")


class Owned(Protocol):
    """A data source, dashboard or published link: anything a client or the partner owns."""

    @property
    def id(self) -> int: ...
    @property
    def partner_id(self) -> int: ...
    @property
    def client_id(self) -> int | None: ...


def changing(db: Session, principal: Principal, obj: Owned, capability: Capability, now: datetime) -> Owner:
    """A builder may change `obj` only where its owner's status allows `capability`."""
    require_builder(principal)
    owner = owner_of(db, obj.partner_id, obj.client_id)
    owner.require(capability, now)
    return owner


def audit_change(
    db: Session, principal: Principal, obj: Owned, action: str, now: datetime, details: dict[str, Any]
) -> None:
    """Audit a change to owned content; the action's first word names the target's kind."""
    audit(
        db,
        partner_id=obj.partner_id,
        client_id=obj.client_id,
        actor=principal.actor,
        action=action,
        target=f"{action.split('.')[0]}:{obj.id}",
        at=now,
        details=details,
    )


def check_content_limit(db: Session, owner: Owner, model: Any, limit: limits.Limit) -> None:
    """Refuse one more data source or dashboard past its owner's cap (`limit_reached`).

    The partner row is locked first, as for pool checks, so concurrent requests of one partner
    cannot both take the last place.
    """
    partners_repo.lock_partner(db, owner.partner_id)
    mine = model.client_id.is_(None) if owner.client_id is None else model.client_id == owner.client_id
    held = db.scalar(
        select(func.count()).select_from(model).where(model.partner_id == owner.partner_id, mine)
    )
    limits.check_room(limit, held or 0)


def take_one(db: Session, owner: Owner, resource: str) -> None:
    """Count one more dashboard or published link against its owner, or refuse.

    A client in Trial or Active stays within its allocation (allocation_exceeded); the partner's
    own content must fit the plan's pool (pool_exhausted). The partner row is locked first so
    concurrent requests cannot both take the last one.
    """
    partner = partners_repo.lock_partner(db, owner.partner_id)
    if owner.client is None:
        pool.check_fits(partners_repo.pool_lines(partner), {resource: 1})
        setattr(partner, f"used_{resource}", getattr(partner, f"used_{resource}") + 1)
        return
    client = _client_now(db, owner.client)
    if counts_against_pool(Status(client.status)):
        pool.check_room_for_one_more(
            resource, clients_repo.allocation_of(client), clients_repo.usage_of(client)
        )
    setattr(client, f"usage_{resource}", getattr(client, f"usage_{resource}") + 1)


def give_back(db: Session, owner: Owner, resource: str, amount: int = 1) -> None:
    if amount <= 0:
        return
    partner = partners_repo.lock_partner(db, owner.partner_id)
    if owner.client is None:
        setattr(partner, f"used_{resource}", max(0, getattr(partner, f"used_{resource}") - amount))
        return
    client = _client_now(db, owner.client)
    setattr(client, f"usage_{resource}", max(0, getattr(client, f"usage_{resource}") - amount))


def _client_now(db: Session, client: Client) -> Client:
    """The client as it is now that the partner is locked: read again (another request may have
    changed its counts), or 404 when another request deleted it meanwhile."""
    found = db.scalars(
        select(Client).where(Client.id == client.id).execution_options(populate_existing=True)
    ).one_or_none()
    if found is None:
        raise NotFound(f"No client {client.id}.")
    return found
