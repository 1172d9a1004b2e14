"""A dashboard's klips on its 12-column grid (SPEC §13), as HTML for the live and published pages.

Sizes are classes (`w-1`…`w-12`, `h-1`…`h-6`), not inline styles: the pages' Content-Security-
Policy allows only this server's stylesheets and nonce-carrying style elements, so a `style`
attribute would be ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from tenantry.klips.spec import GRID_COLUMNS, Size


@dataclass(frozen=True)
class Cell:
    """One klip as laid out: its drawing (`svg`), or for a text klip its HTML (`html`)."""

    klip_id: int
    title: str
    kind: str
    size: Size
    svg: str
    html: str | None = None


def grid_html(cells: Sequence[Cell]) -> str:
    """The klips in order, each spanning its width and height of the grid."""
    if not cells:
        return '<p class="empty">This dashboard has no klips yet.</p>'
    figures = []
    for cell in cells:
        # A text klip's HTML (from `markdown.to_html`, already safe) under its title; a drawing
        # carries its own.
        inner = cell.svg
        if cell.html is not None:
            caption = f'<figcaption class="klip-title">{escape(cell.title)}</figcaption>'
            inner = f'{caption}<div class="klip-body">{cell.html}</div>'
        figures.append(
            f'<figure class="klip klip-{escape(cell.kind)} w-{cell.size.w} h-{cell.size.h}" '
            f'data-klip="{cell.klip_id}" aria-label="{escape(cell.title)}">{inner}</figure>'
        )
    return '<div class="klips grid">' + "".join(figures) + "</div>"


def place(sizes: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The (column, row) of each (w, h) klip, both from 0, as a CSS grid places them: in order,
    each at the first free spot at or after the previous one's, reading left to right, top to
    bottom (CSS's sparse auto-placement). The exports lay klips by it so the PDF matches the page;
    Typst's own placement stops at a spot a wide klip does not fit instead of moving on."""
    taken: set[tuple[int, int]] = set()
    spots = []
    row, column = 0, 0
    for w, h in sizes:
        w = min(max(w, 1), GRID_COLUMNS)
        while True:
            if column + w <= GRID_COLUMNS and not any(
                (column + i, row + j) in taken for i in range(w) for j in range(h)
            ):
                break
            column += 1
            if column + w > GRID_COLUMNS:
                row, column = row + 1, 0
        taken.update((column + i, row + j) for i in range(w) for j in range(h))
        spots.append((column, row))
        column += w
    return spots
