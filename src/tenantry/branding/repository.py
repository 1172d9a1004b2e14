"""All SQL about brands: a partner's branding row, clients' logos and the stored logo images."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tenantry.branding.logos import Logo
from tenantry.db.branding_models import Branding, BrandLogo, ClientLogo


def get_branding(db: Session, partner_id: int) -> Branding | None:
    return db.scalars(select(Branding).where(Branding.partner_id == partner_id)).one_or_none()


def store_logo(db: Session, logo: Logo, now: datetime) -> None:
    """Keep the image once per content (two uploads of the same picture share one row).

    The row found is locked (shared: PostgreSQL's `FOR SHARE`) until the caller commits, so a
    removal elsewhere that would find the picture unused (`drop_logo_if_unused`) waits for the
    reference the caller is writing, and then sees it."""
    for _ in range(3):
        found = select(BrandLogo.id).where(BrandLogo.sha256 == logo.sha256).with_for_update(read=True)
        if db.scalar(found) is not None:
            return
        try:
            with db.begin_nested():
                db.add(
                    BrandLogo(
                        sha256=logo.sha256,
                        data=logo.data,
                        width=logo.width,
                        height=logo.height,
                        created_at=now,
                    )
                )
            return
        except IntegrityError:
            continue  # stored at the same moment by another request: lock theirs
    raise RuntimeError("a logo could be neither found nor stored")


def drop_logo_if_unused(db: Session, sha256: str | None) -> bool:
    """Delete a stored picture that no brand and no client logo refers to any more, so that its
    public address stops serving it and replaced logos do not pile up. The row is locked first:
    a request storing the same picture at that moment (`store_logo`) is waited for, and the
    reference it wrote is then seen (each statement of a PostgreSQL transaction sees what was
    committed before it began)."""
    if sha256 is None:
        return False
    locked = select(BrandLogo.id).where(BrandLogo.sha256 == sha256).with_for_update()
    if db.scalar(locked) is None:
        return False
    used = or_(
        exists().where(Branding.logo_sha256 == sha256), exists().where(ClientLogo.logo_sha256 == sha256)
    )
    if db.scalar(select(used)):
        return False
    db.execute(delete(BrandLogo).where(BrandLogo.sha256 == sha256))
    return True


def logo_png(db: Session, sha256: str) -> bytes | None:
    return db.scalar(select(BrandLogo.data).where(BrandLogo.sha256 == sha256))


def get_client_logo(db: Session, client_id: int) -> ClientLogo | None:
    return db.scalars(select(ClientLogo).where(ClientLogo.client_id == client_id)).one_or_none()


def delete_client_logo(db: Session, client_id: int) -> str | None:
    """Remove the client's own logo; the picture it used (its sha256), if it had one."""
    removed = db.scalar(
        delete(ClientLogo).where(ClientLogo.client_id == client_id).returning(ClientLogo.logo_sha256)
    )
    return str(removed) if removed is not None else None
