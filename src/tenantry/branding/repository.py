"""All SQL about brands: a partner's branding row, clients' logos and the stored logo images."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tenantry.branding.logos import Logo
from tenantry.db.branding_models import Branding, BrandLogo, ClientLogo


def get_branding(db: Session, partner_id: int) -> Branding | None:
    return db.scalars(select(Branding).where(Branding.partner_id == partner_id)).one_or_none()


def store_logo(db: Session, logo: Logo, now: datetime) -> None:
    """Keep the image once per content (two uploads of the same picture share one row)."""
    if db.scalar(select(BrandLogo.id).where(BrandLogo.sha256 == logo.sha256)) is not None:
        return
    try:
        with db.begin_nested():
            db.add(
                BrandLogo(
                    sha256=logo.sha256, data=logo.data, width=logo.width, height=logo.height, created_at=now
                )
            )
    except IntegrityError:
        pass  # stored at the same moment by another request: the same bytes


def logo_png(db: Session, sha256: str) -> bytes | None:
    return db.scalar(select(BrandLogo.data).where(BrandLogo.sha256 == sha256))


def get_client_logo(db: Session, client_id: int) -> ClientLogo | None:
    return db.scalars(select(ClientLogo).where(ClientLogo.client_id == client_id)).one_or_none()


def delete_client_logo(db: Session, client_id: int) -> bool:
    return bool(db.execute(delete(ClientLogo).where(ClientLogo.client_id == client_id)).rowcount)  # type: ignore[attr-defined]
