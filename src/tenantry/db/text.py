"""Text comparisons that answer alike on PostgreSQL and SQLite.

SQLite's `lower()` and `LIKE` fold only A-Z, where PostgreSQL's fold every alphabet: a search for
"école" found "ÉCOLE Lyon" on one database and not on the other. `folded` is PostgreSQL's
`lower()`, and on SQLite `unicode_lower()`, which every SQLite connection gets (`db.session`).
Both are `fold`: PostgreSQL lowers letter by letter, where Python's `str.lower` writes a word's
last Σ as ς and İ as i with a combining dot, so those two are written as PostgreSQL has them (and
a ς typed as such is a σ on both sides).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


def fold(text: str) -> str:
    """The text in lower case in every alphabet, letter by letter, as PostgreSQL's lower() gives it."""
    return text.lower().replace("i\u0307", "i").replace("ς", "σ")


def unicode_lower(value: Any) -> Any:
    """SQLite's `unicode_lower(x)`: `fold` (NULL stays NULL)."""
    return fold(value) if isinstance(value, str) else value


class folded(FunctionElement[str]):
    """A text in lower case in every alphabet, on either database."""

    type = String()
    inherit_cache = True
    name = "folded"


@compiles(folded)
def _lower(element: folded, compiler: Any, **kw: Any) -> str:
    return f"translate(lower({compiler.process(element.clauses, **kw)}), 'ς', 'σ')"


@compiles(folded, "sqlite")
def _unicode_lower(element: folded, compiler: Any, **kw: Any) -> str:
    return f"unicode_lower({compiler.process(element.clauses, **kw)})"


def contains_text(column: Any, text: str) -> ColumnElement[bool]:
    """Whether `column` holds `text`, whatever the case of either, in every alphabet (`%`, `_` and
    `\\` in `text` are themselves)."""
    escaped = fold(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return folded(column).like(f"%{escaped}%", escape="\\")
