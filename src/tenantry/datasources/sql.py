"""Load rows from a `sql` data source: one read-only query on PostgreSQL or MySQL/MariaDB."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tenantry.datasources.fetch import MAX_ROWS, TIMEOUT_SECONDS, FetchError, Row
from tenantry.outbound import Guard

if TYPE_CHECKING:
    from tenantry.datasources.request import SourceRequest


def fetch_sql(
    request: SourceRequest,
    *,
    guard: Guard,
    timeout: float = TIMEOUT_SECONDS,
    max_rows: int = MAX_ROWS,
) -> list[Row]:
    """Run the source's query read-only within `timeout` seconds and answer at most `max_rows`
    rows; every failure is a `FetchError` with a plain message and no secret in it."""
    raise FetchError("SQL sources are not available yet.")
