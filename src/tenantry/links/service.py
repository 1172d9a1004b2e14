"""Published links: create, list, revoke, and open one from the public page.

A token carries 256 random bits and is stored only as its SHA-256 (like API keys: nothing to
guess, so a fast hash is enough). The client's status is checked on every request, never
cached: disabling a client closes its links at once, and re-activating it opens them again.
Revoked links stay dead.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tenantry.auth import throttle
from tenantry.auth.addresses import throttled_address
from tenantry.auth.passwords import check_password
from tenantry.auth.principal import Principal
from tenantry.auth.secrets import hash_password
from tenantry.clock import Clock
from tenantry.dashboards import repository as dashboards_repo
from tenantry.db.dashboard_models import PublishedLink
from tenantry.db.reads import Reads
from tenantry.errors import LinkUnavailable
from tenantry.links import repository as repo
from tenantry.links.repository import PublicLink
from tenantry.links.schemas import LinkCreate
from tenantry.owners import audit_change, changing, content_status, give_back, require_link_manager, take_one
from tenantry.partners import repository as partners_repo
from tenantry.policy import Capability, allows

MAX_FAILURES_PER_ADDRESS = 5
MAX_FAILURES_PER_LINK = 100
# Writing last_accessed_at on every view would turn each public read into a write.
ACCESS_RESOLUTION = timedelta(minutes=1)


def hash_link_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_link(
    db: Session, clock: Clock, principal: Principal, dashboard_id: int, data: LinkCreate
) -> tuple[PublishedLink, str]:
    """Seed: refused in Setup, when disabled and in an expired trial; limited by the allocation."""
    now = clock.now()
    # The partner, then the dashboard, as a deletion takes them: a dashboard deleted meanwhile is
    # not found (not a 500), and the client's status is read after any change of it has committed.
    partners_repo.lock_partner(db, principal.partner_id)
    dashboard = dashboards_repo.get_dashboard(db, principal, dashboard_id, lock=True)
    require_link_manager(principal)
    owner = changing(db, principal, dashboard, Capability.CREATE_PUBLISHED_LINKS, now)
    if data.password is not None:
        check_password(data.password)  # a link has no e-mail to compare with
    take_one(db, owner, "published_links")
    token = secrets.token_urlsafe(32)
    link = PublishedLink(
        partner_id=dashboard.partner_id,
        client_id=dashboard.client_id,
        dashboard_id=dashboard.id,
        name=data.name,
        token_hash=hash_link_token(token),
        token_prefix=token[:8],
        password_hash=hash_password(data.password) if data.password is not None else None,
        allowed_origins=data.allowed_origins,
        created_by=principal.actor,
        created_at=now,
    )
    db.add(link)
    db.flush()
    audit_change(
        db,
        principal,
        link,
        "published_link.created",
        now,
        {"name": link.name, "protected": bool(data.password), "allowed_origins": data.allowed_origins},
    )
    return link, token


def links_of(
    db: Session, principal: Principal, dashboard_id: int, limit: int, offset: int
) -> tuple[Sequence[PublishedLink], int]:
    """A dashboard's links, for those who manage them: a member sees the dashboard, not its links."""
    dashboard = dashboards_repo.get_dashboard(db, principal, dashboard_id)
    require_link_manager(principal, write=False)
    return repo.list_links(db, dashboard.id, limit, offset)


def revoke_link(db: Session, clock: Clock, principal: Principal, link_id: int) -> None:
    """Revoke for good and give the link back to the allocation; revoking twice changes nothing."""
    now = clock.now()
    # The partner first, as a dashboard's deletion takes it (which gives its live links back), then
    # the link: a link is given back once, whoever comes first.
    partners_repo.lock_partner(db, principal.partner_id)
    link = repo.get_link(db, principal, link_id, lock=True)
    require_link_manager(principal)
    # Revoking is always allowed: closing a link must never wait for a status change.
    owner = changing(db, principal, link, Capability.BUILD_CONTENT, now)
    if link.revoked_at is not None:
        return
    link.revoked_at = now
    give_back(db, owner, "published_links")
    audit_change(db, principal, link, "published_link.revoked", now, {"name": link.name})
    db.flush()


def open_public(db: Connection, token: str, now: datetime, partner_id: int | None = None) -> PublicLink:
    """The read behind every public view: two small queries, the status checked every time.

    With `partner_id` (the partner whose own domain the view came to), another partner's link is
    not found (404), whatever its status: nothing about it is told there.
    """
    found = repo.public_link(db, hash_link_token(token)) if 20 <= len(token) <= 100 else None
    return _viewable(found, now, partner_id)


def _viewable(found: PublicLink | None, now: datetime, partner_id: int | None) -> PublicLink:
    if found is None or found.revoked_at is not None:
        raise LinkUnavailable(404)
    if partner_id is not None and found.partner_id != partner_id:
        raise LinkUnavailable(404)
    if not allows(Capability.VIEW_PUBLISHED_LINKS, content_status(found.client_status, found.trial, now)):
        raise LinkUnavailable(403)
    return found


async def open_public_async(
    reads: Reads, token: str, now: datetime, partner_id: int | None = None
) -> PublicLink:
    """`open_public`, read without leaving the event loop (`db.reads`)."""
    found = await repo.public_link_async(reads, hash_link_token(token)) if 20 <= len(token) <= 100 else None
    return _viewable(found, now, partner_id)


def needs_touch(link: PublicLink, now: datetime) -> bool:
    """Whether this view should be recorded (`last_accessed_at` is kept to the minute)."""
    return link.last_accessed_at is None or now - link.last_accessed_at >= ACCESS_RESOLUTION


def touch(db: Connection, link: PublicLink, now: datetime) -> None:
    """Record the view in `last_accessed_at`, to the minute; the caller commits.

    Give it a transaction of its own, begun after the read transaction has ended: on SQLite a
    read transaction that turns into a write fails at once if another request wrote meanwhile,
    while a fresh one simply waits its turn. Of several views racing at the turn of a minute,
    only the first one writes.
    """
    if needs_touch(link, now):
        repo.mark_accessed(db, link.id, now, not_since=now - ACCESS_RESOLUTION)


def access_proof(link: PublishedLink | PublicLink, secret_key: str) -> str:
    """What the cookie holds once the password was given; changes if the password does."""
    message = f"published-link:{link.id}:{link.password_hash}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def has_access(link: PublishedLink | PublicLink, secret_key: str, cookie: str | None) -> bool:
    if link.password_hash is None:
        return True
    return cookie is not None and hmac.compare_digest(cookie, access_proof(link, secret_key))


def password_limits(link_id: int, address: str) -> list[throttle.Limit]:
    """Wrong passwords are counted per link and address, so a guesser locks out only their own
    address, never the link's viewers elsewhere; a far higher ceiling per link caps a guesser who
    spreads over many addresses."""
    counted = throttled_address(address)
    return [
        throttle.Limit("link-pair", f"{link_id}\0{counted}", MAX_FAILURES_PER_ADDRESS),
        throttle.Limit("link", str(link_id), MAX_FAILURES_PER_LINK),
    ]


def conclude_password(db: Session, attempt: throttle.Reservation, right: bool, now: datetime) -> bool:
    """After the password was checked: a right one was no failure, a wrong one stays counted."""
    if right:
        throttle.release(db, attempt)
    else:
        throttle.fail(db, attempt, now)
    return right
