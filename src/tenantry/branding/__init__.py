"""A partner's brand: the name, colours, sender name, support address, footer and logos a client
or a partner user sees on every page, e-mail and export (SPEC §16).

`brand_for` is the one place a brand is looked up; pages, e-mails and exports take what it
answers and never read branding rows themselves. Without branding the product's own brand applies.

Brands are read on every page, so `brand_for` keeps what it read in a small in-process cache per
database, for `CACHE_SECONDS`: a change made in this process is seen at once, one made by another
process within a few seconds. Entries are keyed by partner and client, so two partners' brands
never mix.

"At once" holds while other requests read the brand during the change: the write forgets the
partner's entries (`forget`), and again when its transaction ends, committed or not. A read that
began before a forget does not keep what it read, and a session that changed a brand does not cache
it before it is committed. Otherwise a page drawn while the change was being saved would put the
old brand back, for `CACHE_SECONDS`, just after the "saved" page.
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass
from functools import cached_property
from html import escape
from typing import Any

from sqlalchemy import bindparam, event, select
from sqlalchemy.orm import Session, SessionTransaction

from tenantry.charts.svg import PALETTE
from tenantry.db.branding_models import Branding, ClientLogo

# How long another process's change may take to show here.
CACHE_SECONDS = 5.0
LOGO_PATH = "/brand/logo/"
DEFAULT_PRIMARY = "#1f4e79"
DARK_TEXT, LIGHT_TEXT = "#1d2330", "#ffffff"


@dataclass(frozen=True)
class Brand:
    product_name: str = "Tenantry"
    primary_color: str = DEFAULT_PRIMARY
    accent_color: str | None = None
    email_from_name: str | None = None
    support_email: str | None = None
    footer_text: str | None = None
    # Where the re-encoded PNG logos are served from, when there are any.
    logo_url: str | None = None
    client_logo_url: str | None = None
    partner_id: int | None = None

    @cached_property
    def key(self) -> str:
        """Everything the brand is, as one string: what a page drawn in it is cached under (made
        once per brand read, which the cache then hands out many times)."""
        return repr(self)

    @property
    def shown_logo_url(self) -> str | None:
        """The logo a page shows: the client's before the partner's."""
        return self.client_logo_url or self.logo_url

    @property
    def sender_name(self) -> str:
        """The display name of the e-mails sent in this brand."""
        return self.email_from_name or self.product_name

    @property
    def on_primary(self) -> str:
        """The text colour (dark or white) with the higher contrast on the primary colour (WCAG)."""
        background = _luminance(self.primary_color) + 0.05
        on_dark = (_luminance(LIGHT_TEXT) + 0.05) / background
        on_light = background / (_luminance(DARK_TEXT) + 0.05)
        return LIGHT_TEXT if on_dark >= on_light else DARK_TEXT

    @property
    def css(self) -> str:
        """The brand's colours as CSS custom properties (the colours are `#RRGGBB`, checked on write);
        empty for the product's own colours, which the style sheet already has."""
        if self.primary_color == DEFAULT_PRIMARY and self.accent_color is None:
            return ""
        accent = self.accent_color or self.primary_color
        return f":root{{--primary:{self.primary_color};--on-primary:{self.on_primary};--accent:{accent}}}"


def _luminance(colour: str) -> float:
    """Relative luminance of `#RRGGBB` (WCAG), 0 (black) to 1 (white); 0 for anything else."""
    try:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    except (ValueError, IndexError):
        return 0.0
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


DEFAULT_BRAND = Brand()


def logo_url(sha256: str | None) -> str | None:
    return f"{LOGO_PATH}{sha256}.png" if sha256 else None


_BRAND = select(
    Branding.product_name,
    Branding.primary_color,
    Branding.accent_color,
    Branding.email_from_name,
    Branding.support_email,
    Branding.footer_text,
    Branding.logo_sha256,
).where(Branding.partner_id == bindparam("partner_id"))
_CLIENT_LOGO = select(ClientLogo.logo_sha256).where(
    ClientLogo.partner_id == bindparam("partner_id"),
    ClientLogo.client_id == bindparam("client_id"),
)


class _Brands:
    """One database's cached brands: (partner id, client id) -> (read at, brand); and how many
    times each partner's were forgotten, so a read that began before a forget is not kept."""

    __slots__ = ("entries", "forgotten")

    def __init__(self) -> None:
        self.entries: dict[tuple[int, int | None], tuple[float, Brand]] = {}
        self.forgotten: dict[int, int] = {}

    def fresh(self, partner_id: int, client_id: int | None) -> Brand | None:
        """The brand if it was read in the last `CACHE_SECONDS`, else None."""
        hit = self.entries.get((partner_id, client_id))
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        return None

    def forget(self, partner_id: int) -> None:
        with _lock:
            self.forgotten[partner_id] = self.forgotten.get(partner_id, 0) + 1
            for key in [key for key in list(self.entries) if key[0] == partner_id]:
                self.entries.pop(key, None)


# Per database (its connection pool, which an engine's option copies share).
_cache: weakref.WeakKeyDictionary[Any, _Brands] = weakref.WeakKeyDictionary()
_lock = threading.Lock()
# In a session's `info`: the partners whose brands it changed (partner id -> their cache), forgotten
# again when its transaction ends.
_CHANGED = "tenantry.branding.changed"


def _brands(engine: Any) -> _Brands:
    pool = engine.engine.pool  # an Engine, an option copy of it or a Connection
    brands = _cache.get(pool)
    if brands is None:
        with _lock:
            brands = _cache.setdefault(pool, _Brands())
    return brands


def cached_brand(engine: Any, partner_id: int | None, client_id: int | None = None) -> Brand | None:
    """The brand if this process read it in the last `CACHE_SECONDS` (no query), else None."""
    if partner_id is None:
        return DEFAULT_BRAND
    return _brands(engine).fresh(partner_id, client_id)


def brand_for(db: Session, partner_id: int | None, client_id: int | None = None) -> Brand:
    """The brand a partner's users and its clients see (a client's logo before the partner's)."""
    if partner_id is None:
        return DEFAULT_BRAND
    brands = _brands(db.get_bind())
    hit = brands.fresh(partner_id, client_id)
    if hit is not None:
        return hit
    forgotten = brands.forgotten.get(partner_id, 0)
    brand = read_brand(db, partner_id, client_id)
    if partner_id in db.info.get(_CHANGED, ()):
        return brand  # this session's own change, not committed yet: not for other requests
    with _lock:
        if brands.forgotten.get(partner_id, 0) == forgotten:  # else it may be from before a change
            brands.entries[(partner_id, client_id)] = (time.monotonic(), brand)
    return brand


def read_brand(db: Session, partner_id: int, client_id: int | None = None) -> Brand:
    """The brand as stored now (no cache)."""
    row = db.execute(_BRAND, {"partner_id": partner_id}).one_or_none()
    client_logo = None
    if client_id is not None:
        # Scoped by partner too: a client id of another partner names no logo here.
        client_logo = db.scalar(_CLIENT_LOGO, {"partner_id": partner_id, "client_id": client_id})
    if row is None:
        if client_logo is None:
            return Brand(partner_id=partner_id)
        return Brand(partner_id=partner_id, client_logo_url=logo_url(client_logo))
    return Brand(
        product_name=row.product_name,
        primary_color=row.primary_color,
        accent_color=row.accent_color,
        email_from_name=row.email_from_name,
        support_email=row.support_email,
        footer_text=row.footer_text,
        logo_url=logo_url(row.logo_sha256),
        client_logo_url=logo_url(client_logo),
        partner_id=partner_id,
    )


def forget(db: Session, partner_id: int) -> None:
    """Drop this process's cached brands of a partner (after a change to them in `db`), now and
    again when `db`'s transaction ends: what other requests read meanwhile was the old brand."""
    brands = _brands(db.get_bind())
    brands.forget(partner_id)
    db.info.setdefault(_CHANGED, {})[partner_id] = brands


@event.listens_for(Session, "after_transaction_end")
def _forget_changed(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None:  # a savepoint: the change is not committed yet
        return
    changed = session.info.pop(_CHANGED, None)
    if changed:
        for partner_id, brands in changed.items():
            brands.forget(partner_id)


def email_html(
    brand: Brand,
    text: str,
    *,
    link: str | None = None,
    link_text: str | None = None,
    base_url: str | None = None,
) -> str:
    """The HTML part of an e-mail whose plain-text part is `text`, in the partner's brand.

    Inline styles only (mail clients drop style sheets); everything from users is escaped. The logo
    is shown only with an absolute `base_url` (http or https) to load it from.
    """
    primary = escape(brand.primary_color)
    font = "font-family:Helvetica,Arial,sans-serif;"
    paragraphs = "".join(
        f'<p style="{font}font-size:15px;line-height:1.5;color:#222;margin:0 0 14px">'
        f"{escape(p).replace(chr(10), '<br>')}</p>"
        for p in text.split("\n\n")
        if p.strip()
    )
    button = ""
    if link:
        button = (
            f'<p style="margin:22px 0"><a href="{escape(link)}" style="{font}background:{primary};'
            "color:#ffffff;text-decoration:none;padding:10px 18px;border-radius:4px;"
            f'display:inline-block;font-weight:bold">{escape(link_text or link)}</a></p>'
        )
    logo = ""
    shown = brand.shown_logo_url
    if shown and base_url and base_url.startswith(("https://", "http://")):
        src = escape(base_url.rstrip("/") + shown)
        logo = (
            f'<img src="{src}" alt="{escape(brand.product_name)}" height="40" '
            'style="height:40px;vertical-align:middle;margin-right:10px;border:0">'
        )
    heading = (
        f'<div style="background:{primary};padding:14px 24px">{logo}'
        f'<span style="{font}color:#ffffff;font-size:20px;font-weight:bold;vertical-align:middle">'
        f"{escape(brand.product_name)}</span></div>"
    )
    footer_lines = []
    if brand.footer_text:
        footer_lines.append(escape(brand.footer_text))
    if brand.support_email:
        address = escape(brand.support_email)
        footer_lines.append(f'Support: <a href="mailto:{address}" style="color:{primary}">{address}</a>')
    footer = ""
    if footer_lines:
        footer = (
            f'<div style="{font}font-size:12px;color:#666;padding:14px 24px;border-top:1px solid #ddd">'
            + "<br>".join(footer_lines)
            + "</div>"
        )
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<title>{escape(brand.product_name)}</title></head>"
        '<body style="margin:0;padding:0;background:#f4f4f4">'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f4f4f4">'
        '<tr><td align="center" style="padding:24px 8px">'
        '<table role="presentation" width="600" cellpadding="0" cellspacing="0" '
        'style="max-width:600px;width:100%;background:#ffffff;border:1px solid #ddd">'
        f'<tr><td>{heading}</td></tr><tr><td style="padding:24px">{paragraphs}{button}</td></tr>'
        f"<tr><td>{footer}</td></tr></table></td></tr></table></body></html>"
    )


def forget_all() -> None:
    """Drop every cached brand of this process (a database whose ids start again, in tests)."""
    with _lock:
        for brands in list(_cache.values()):
            brands.entries.clear()


# The first series colour of every chart drawing, as the drawings write it in their attributes: a
# user's text is escaped there (quotes included), so it can never hold these.
_FIRST_SERIES = (f'fill="{PALETTE[0]}"', f'stroke="{PALETTE[0]}"')


def recolour(svg: str, brand: Brand) -> str:
    """A klip drawing with the brand's primary colour as its first series colour.

    Drawings are cached unbranded (one cache entry serves every brand); the brand's colour is put
    in after the cache, so two partners' exports can never share a drawing in the wrong colour.
    """
    if brand.primary_color == DEFAULT_PRIMARY:
        return svg
    fill, stroke = _FIRST_SERIES
    return svg.replace(fill, f'fill="{brand.primary_color}"').replace(
        stroke, f'stroke="{brand.primary_color}"'
    )
