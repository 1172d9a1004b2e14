"""Branding use cases: read and change a partner's brand, set and remove its logo and its clients'.
Services flush, never commit. Partner admins change the brand; every partner user reads it."""

from __future__ import annotations

import base64
from datetime import datetime

from sqlalchemy.orm import Session

from tenantry import branding
from tenantry.audit import audit
from tenantry.auth.principal import Principal
from tenantry.branding import repository as repo
from tenantry.branding.logos import Logo, reencode
from tenantry.branding.schemas import BrandingOut, BrandingUpdate, LogoOut
from tenantry.clients import repository as clients_repo
from tenantry.clock import Clock
from tenantry.db.branding_models import Branding, ClientLogo
from tenantry.partners import repository as partners_repo


def read_branding(db: Session, principal: Principal) -> BrandingOut:
    row = repo.get_branding(db, principal.partner_id)
    brand = branding.read_brand(db, principal.partner_id)
    return BrandingOut(
        product_name=brand.product_name,
        primary_color=brand.primary_color,
        accent_color=brand.accent_color,
        email_from_name=brand.email_from_name,
        support_email=brand.support_email,
        footer_text=brand.footer_text,
        logo_url=brand.logo_url,
        updated_at=row.updated_at if row is not None else None,
    )


def _own_row(db: Session, principal: Principal, clock: Clock) -> Branding:
    """The partner's branding row, made with the default brand the first time. The partner row is
    locked first, so two first changes at once cannot both insert."""
    partners_repo.lock_partner(db, principal.partner_id)
    row = repo.get_branding(db, principal.partner_id)
    if row is None:
        default = branding.DEFAULT_BRAND
        row = Branding(
            partner_id=principal.partner_id,
            product_name=default.product_name,
            primary_color=default.primary_color,
            updated_at=clock.now(),
        )
        db.add(row)
    return row


def update_branding(db: Session, clock: Clock, principal: Principal, data: BrandingUpdate) -> BrandingOut:
    """Change the brand's names, colours, support address or footer (admins only)."""
    principal.require_admin()
    row = _own_row(db, principal, clock)
    changed = {}
    for name in data.model_fields_set:
        value = getattr(data, name)
        if value != getattr(row, name):
            changed[name] = value
            setattr(row, name, value)
    if changed:
        row.updated_at = clock.now()
        audit(
            db,
            partner_id=principal.partner_id,
            actor=principal.actor,
            action="branding.updated",
            target=f"partner:{principal.partner_id}",
            at=row.updated_at,
            details=changed,
        )
    db.flush()
    branding.forget(db, principal.partner_id)
    return read_branding(db, principal)


def set_partner_logo(db: Session, clock: Clock, principal: Principal, upload: bytes) -> LogoOut:
    """Replace the partner's logo with `upload` (PNG or JPEG, re-encoded to PNG; admins only)."""
    principal.require_admin()
    logo = reencode(upload)
    row = _own_row(db, principal, clock)
    replaced = row.logo_sha256
    row.logo_sha256, row.updated_at = logo.sha256, clock.now()
    repo.store_logo(db, logo, row.updated_at)
    _audit_logo(db, principal, row.updated_at, f"partner:{principal.partner_id}", logo)
    db.flush()
    if replaced != logo.sha256:
        repo.drop_logo_if_unused(db, replaced)
    branding.forget(db, principal.partner_id)
    return LogoOut(logo_url=branding.logo_url(logo.sha256), width=logo.width, height=logo.height)


def delete_partner_logo(db: Session, clock: Clock, principal: Principal) -> None:
    principal.require_admin()
    # The partner first, as a new logo takes it (`_own_row`): the two take turns, never deadlock.
    partners_repo.lock_partner(db, principal.partner_id)
    row = repo.get_branding(db, principal.partner_id)
    if row is not None and row.logo_sha256 is not None:
        removed = row.logo_sha256
        row.logo_sha256, row.updated_at = None, clock.now()
        _audit_logo(db, principal, row.updated_at, f"partner:{principal.partner_id}", None)
        db.flush()
        repo.drop_logo_if_unused(db, removed)
    branding.forget(db, principal.partner_id)


def set_client_logo(
    db: Session, clock: Clock, principal: Principal, client_id: int, upload: bytes
) -> LogoOut:
    """Replace a client's own logo (shown in its portal before the partner's)."""
    principal.require_write()
    # Uploads of one client's logo at once take turns (one row per client), and a client deleted
    # meanwhile is not found: the partner first, as every change of a client takes it.
    partners_repo.lock_partner(db, principal.partner_id)
    # Another partner's client, or one this caller may not see, is not found (404, never 403).
    client = clients_repo.get_client(db, principal, client_id)
    logo = reencode(upload)
    now = clock.now()
    repo.store_logo(db, logo, now)
    row = repo.get_client_logo(db, client.id)
    replaced = None
    if row is None:
        db.add(
            ClientLogo(
                partner_id=client.partner_id, client_id=client.id, logo_sha256=logo.sha256, updated_at=now
            )
        )
    else:
        replaced = row.logo_sha256
        row.logo_sha256, row.updated_at = logo.sha256, now
    _audit_logo(db, principal, now, f"client:{client.id}", logo, client_id=client.id)
    db.flush()
    if replaced != logo.sha256:
        repo.drop_logo_if_unused(db, replaced)
    branding.forget(db, principal.partner_id)
    return LogoOut(logo_url=branding.logo_url(logo.sha256), width=logo.width, height=logo.height)


def delete_client_logo(db: Session, clock: Clock, principal: Principal, client_id: int) -> None:
    principal.require_write()
    partners_repo.lock_partner(db, principal.partner_id)
    client = clients_repo.get_client(db, principal, client_id)
    removed = repo.delete_client_logo(db, client.id)
    if removed is not None:
        _audit_logo(db, principal, clock.now(), f"client:{client.id}", None, client_id=client.id)
        db.flush()
        repo.drop_logo_if_unused(db, removed)
    branding.forget(db, principal.partner_id)


def _audit_logo(
    db: Session,
    principal: Principal,
    now: datetime,
    target: str,
    logo: Logo | None,
    client_id: int | None = None,
) -> None:
    audit(
        db,
        partner_id=principal.partner_id,
        actor=principal.actor,
        action="branding.logo_set" if logo is not None else "branding.logo_removed",
        target=target,
        at=now,
        client_id=client_id,
        details={"sha256": logo.sha256} if logo is not None else {},
    )


def logo_png(db: Session, sha256: str) -> bytes | None:
    """A stored logo's PNG bytes, by the sha256 they hash to."""
    return repo.logo_png(db, sha256)


# Logos by their hash, as exports embed them (an address never changes what it holds).
_export_logos: dict[str, str] = {}
_EXPORT_LOGOS_KEPT = 256


def export_logo(db: Session, brand: branding.Brand) -> str | None:
    """The logo a page shows (the client's before the partner's) as an SVG that holds the PNG, for
    the exports' Typst template; None without a logo (or when it is gone)."""
    url = brand.shown_logo_url
    if url is None:
        return None
    sha256 = url.rsplit("/", 1)[1].removesuffix(".png")
    svg = _export_logos.get(sha256)
    if svg is None:
        png = repo.logo_png(db, sha256)
        if png is None:
            return None
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        data = base64.b64encode(png).decode()
        svg = (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}"><image width="{width}" height="{height}" '
            f'href="data:image/png;base64,{data}"/></svg>'
        )
        if len(_export_logos) >= _EXPORT_LOGOS_KEPT:
            _export_logos.clear()
        _export_logos[sha256] = svg
    return svg
