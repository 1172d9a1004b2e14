"""A picture of a brand, for the Branding page's preview: header, text, button and footer drawn in
the brand's colours as an SVG, which a page shows as a `data:` image (the pages' policy allows no
inline style, and a picture needs none). Every text is escaped."""

from __future__ import annotations

import base64
from xml.sax.saxutils import escape, quoteattr

from tenantry.branding import Brand


def preview_svg(brand: Brand, logo_png: bytes | None = None) -> str:
    primary, on_primary = brand.primary_color, brand.on_primary
    accent = brand.accent_color or brand.primary_color
    x = 16
    logo = ""
    if logo_png is not None:
        data = base64.b64encode(logo_png).decode()
        logo = (
            '<image x="16" y="10" height="36" width="108" preserveAspectRatio="xMinYMid meet" '
            f'href="data:image/png;base64,{data}"/>'
        )
        x = 132
    footer = " · ".join(t for t in (brand.footer_text, brand.support_email) if t)
    font = 'font-family="system-ui, sans-serif"'
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="480" height="220" viewBox="0 0 480 220" role="img">'
        f'<rect width="480" height="220" fill="#ffffff" stroke="#d1d5db"/>'
        f'<rect width="480" height="56" fill="{primary}"/>{logo}'
        f'<text x="{x}" y="34" {font} font-size="18" font-weight="600" fill="{on_primary}">'
        f"{escape(brand.product_name)}</text>"
        f'<text x="16" y="92" {font} font-size="14" fill="#1d2330">Your dashboards, in your brand.</text>'
        f'<text x="16" y="116" {font} font-size="14" fill="{accent}" '
        'text-decoration="underline">A link</text>'
        f'<rect x="16" y="132" width="120" height="34" rx="4" fill="{primary}"/>'
        f'<text x="76" y="154" {font} font-size="14" text-anchor="middle" fill="{on_primary}">Sign in</text>'
        f'<line x1="0" y1="186" x2="480" y2="186" stroke="#e5e7eb"/>'
        f'<text x="16" y="207" {font} font-size="12" fill="#4b5563">{escape(footer)}</text>'
        "</svg>"
    )


def preview_img(brand: Brand, logo_png: bytes | None = None) -> str:
    """An <img> of the preview, as HTML."""
    data = base64.b64encode(preview_svg(brand, logo_png).encode()).decode()
    alt = quoteattr(f"Preview of {brand.product_name}")
    src = f"data:image/svg+xml;base64,{data}"
    return f'<img class="brand-preview-image" src="{src}" alt={alt} width="480" height="220">'
