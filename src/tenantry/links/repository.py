"""All SQL about published links. API lookups go through `owners.scoped`; the public page
finds a link only by the hash of its token."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tenantry.auth.principal import Principal
from tenantry.db.dashboard_models import PublishedLink
from tenantry.errors import NotFound
from tenantry.owners import scoped


def get_link(db: Session, principal: Principal, link_id: int) -> PublishedLink:
    link = db.scalars(
        scoped(select(PublishedLink), PublishedLink, principal).where(PublishedLink.id == link_id)
    ).one_or_none()
    if link is None:
        raise NotFound(f"No published link {link_id}.")
    return link


def list_links(
    db: Session, dashboard_id: int, limit: int, offset: int
) -> tuple[Sequence[PublishedLink], int]:
    where = PublishedLink.dashboard_id == dashboard_id
    items = db.scalars(
        select(PublishedLink).where(where).order_by(PublishedLink.id).limit(limit).offset(offset)
    ).all()
    total = db.scalar(select(func.count()).select_from(PublishedLink).where(where)) or 0
    return items, total


def link_by_token_hash(db: Session, token_hash: str) -> PublishedLink | None:
    return db.scalars(select(PublishedLink).where(PublishedLink.token_hash == token_hash)).one_or_none()
