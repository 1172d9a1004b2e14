"""A snapshot split into pages of JSON text, so a listing decodes only the pages it shows.

A page holds at most `PAGE_MAX_ROWS` rows and about `PAGE_MAX_CHARS` characters of JSON (a single
larger row gets a page of its own): listing 50 rows of a 50,000-row snapshot decodes one or two
small pages instead of five megabytes, and wide rows cannot make a page as large as the snapshot.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

PAGE_MAX_ROWS = 500
PAGE_MAX_CHARS = 64 * 1024

Row = dict[str, Any]


def split_into_pages(rows: Sequence[Row]) -> list[tuple[int, int, str]]:
    """The snapshot as pages: (index of the first row, number of rows, the rows as a JSON array)."""
    pages: list[tuple[int, int, str]] = []
    parts: list[str] = []
    size = first = 0
    for index, row in enumerate(rows):
        text = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
        if parts and (len(parts) >= PAGE_MAX_ROWS or size + len(text) > PAGE_MAX_CHARS):
            pages.append((first, len(parts), "[" + ",".join(parts) + "]"))
            parts, size, first = [], 0, index
        parts.append(text)
        size += len(text) + 1
    if parts:
        pages.append((first, len(parts), "[" + ",".join(parts) + "]"))
    return pages


def rows_in(pages: Iterable[tuple[int, str]], offset: int, limit: int) -> list[Row]:
    """The rows offset..offset+limit-1, from the pages (first row, JSON text) that hold them."""
    found: list[Row] = []
    for first, text in pages:
        rows: list[Row] = json.loads(text)
        start = max(offset - first, 0)
        stop = max(min(offset + limit - first, len(rows)), 0)
        found.extend(rows[start:stop])
    return found
