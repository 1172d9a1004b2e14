"""A partner's brand: the name, colours, sender name, support address, footer and logos a client
or a partner user sees on every page, e-mail and export (SPEC §16).

`brand_for` is the one place a brand is looked up; pages, e-mails and exports take what it
answers and never read branding rows themselves. Without branding the product's own brand applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Brand:
    product_name: str = "Tenantry"
    primary_color: str = "#1f4e79"
    accent_color: str | None = None
    email_from_name: str | None = None
    support_email: str | None = None
    footer_text: str | None = None
    # Where the re-encoded PNG logos are served from, when there are any.
    logo_url: str | None = None
    client_logo_url: str | None = None
    partner_id: int | None = None


DEFAULT_BRAND = Brand()


def brand_for(db: Session, partner_id: int | None, client_id: int | None = None) -> Brand:
    """The brand a partner's users and its clients see (a client's logo before the partner's)."""
    return DEFAULT_BRAND


def email_html(brand: Brand, text: str, *, link: str | None = None, link_text: str | None = None) -> str:
    """The HTML part of an e-mail whose plain-text part is `text`, in the partner's brand."""
    paragraphs = "".join(f"<p>{escape(p)}</p>" for p in text.split("\n\n") if p.strip())
    button = f'<p><a href="{escape(link)}">{escape(link_text or link)}</a></p>' if link else ""
    heading = f"<h1>{escape(brand.product_name)}</h1>"
    return f"<!doctype html><html><body>{heading}{paragraphs}{button}</body></html>"
