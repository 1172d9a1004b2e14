"""A dashboard's klips on its 12-column grid (SPEC §13), as HTML for the live and published pages.

Sizes are classes (`w-1`…`w-12`, `h-1`…`h-6`), not inline styles: the pages' Content-Security-
Policy allows only this server's stylesheets and nonce-carrying style elements, so a `style`
attribute would be ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tenantry.klips.spec import Size


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
    raise NotImplementedError
