"""The SQL a block of a test sends to the database, as the driver gets it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa


@contextmanager
def statements_sent(engine: sa.Engine) -> Iterator[list[str]]:
    """The statements `engine` runs inside the block, in order (filled when the block ends)."""
    with executions_sent(engine) as executions:
        sent: list[str] = []
        yield sent
        sent.extend(statement for statement, _ in executions)


@contextmanager
def executions_sent(engine: sa.Engine) -> Iterator[list[tuple[str, int]]]:
    """The statements `engine` runs inside the block, in order, each with how many times the server
    runs it: its number of parameter sets (one, but for an `executemany`)."""
    sent: list[tuple[str, int]] = []

    def remember(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        sent.append((statement, len(parameters) if many else 1))

    sa.event.listen(engine, "before_cursor_execute", remember)
    try:
        yield sent
    finally:
        sa.event.remove(engine, "before_cursor_execute", remember)
