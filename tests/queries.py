"""The SQL a block of a test sends to the database, as the driver gets it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa


@contextmanager
def statements_sent(engine: sa.Engine) -> Iterator[list[str]]:
    """The statements `engine` runs inside the block, in order (filled as they are sent)."""
    sent: list[str] = []

    def remember(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    sa.event.listen(engine, "before_cursor_execute", remember)
    try:
        yield sent
    finally:
        sa.event.remove(engine, "before_cursor_execute", remember)
