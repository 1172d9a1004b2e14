"""PDF and PNG from ONE Typst template (`dashboard.typ`): no browser, no system libraries.

Each app has its own `Typesetter` (held by its `Services`): its compiler is built on first use
(it loads the fonts once) and reused; a lock serialises it because one compiler instance holds
mutable state between compilations.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import typst

from tenantry.charts.grid import place
from tenantry.text import scrub

TEMPLATE = Path(__file__).with_name("dashboard.typ")
PNG_PPI = 110.0
# A klip given without a size takes the grid's default (SPEC §13).
DEFAULT_W, DEFAULT_H = 6, 2

Klip = tuple[str, str] | tuple[str, str, int, int]
CONTENT_TYPES = {"pdf": "application/pdf", "png": "image/png"}


class Typesetter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._compiler: Any = None

    def typeset(
        self,
        fmt: str,
        *,
        title: str,
        subtitle: str,
        klips: Sequence[Klip],
        timestamp: datetime | None = None,
        brand: Mapping[str, Any] | None = None,
    ) -> bytes:
        """Typeset a dashboard; `klips` are (title, svg, w, h) in the page's order, laid on the
        same 12-column grid as the page (a (title, svg) pair takes the default size, 6 by 2). A
        Setup watermark is already drawn over each SVG, see `charts.svg.watermarked`.

        Every text is scrubbed first: Typst's JSON and SVG readers refuse lone surrogates and most
        control characters, which older names and drawings may still hold."""
        data = {
            "title": scrub(title),
            "subtitle": scrub(subtitle),
            "format": fmt,
            "klips": laid_out(klips),
            "brand": _brand(brand),
        }
        with self._lock:
            if self._compiler is None:
                self._compiler = typst.Compiler(str(TEMPLATE))
            output = self._compiler.compile(
                format=fmt,
                ppi=PNG_PPI if fmt == "png" else None,
                sys_inputs={"data": json.dumps(data)},
                # Typst takes whole seconds only.
                timestamp=timestamp.replace(microsecond=0) if timestamp is not None else None,
            )
        if isinstance(output, list):  # several pages as PNG: the template keeps PNG to one page
            output = output[0]
        assert isinstance(output, bytes)
        return output


def _brand(brand: Mapping[str, Any] | None) -> dict[str, Any]:
    """The page header's brand: `name`, `color` (#RRGGBB) and `logo` (an SVG holding the PNG, or
    None); without one the product's own."""
    brand = brand or {}
    return {
        "name": scrub(str(brand.get("name") or "Tenantry")),
        "color": str(brand.get("color") or "#1f4e79"),
        "logo": brand.get("logo"),
    }


def laid_out(klips: Sequence[Klip]) -> list[dict[str, Any]]:
    """Each klip with its spot on the grid, placed as the live page's CSS grid places it."""
    sized = []
    for klip in klips:
        title, svg, w, h = klip if len(klip) == 4 else (*klip, DEFAULT_W, DEFAULT_H)
        # Clamped as the grid is: a width beyond 12 columns would make Typst refuse the whole page.
        sized.append((scrub(title), scrub(svg), min(max(int(w), 1), 12), min(max(int(h), 1), 6)))
    spots = place([(w, h) for _, _, w, h in sized])
    return [
        {"title": title, "svg": svg, "w": w, "h": h, "x": x, "y": y}
        for (title, svg, w, h), (x, y) in zip(sized, spots, strict=True)
    ]
