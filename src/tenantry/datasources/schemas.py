"""Request and response bodies of the data-sources API. Unknown fields are refused (422)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Field, HttpUrl, StrictBool, StrictFloat, StrictInt, StrictStr

from tenantry.datasources.fetch import MAX_ROWS
from tenantry.fields import Name, Strict

if TYPE_CHECKING:
    from tenantry.db.dashboard_models import DataSource

Interval = Annotated[StrictInt, Field(ge=60, le=31 * 24 * 3600, description="Seconds (at least 60).")]
Cell = StrictStr | StrictInt | StrictFloat | StrictBool | None
# At most 50,000 rows (as a url source keeps) and 5 MB as JSON (checked by the service).
InlineRows = Annotated[list[dict[str, Cell]], Field(max_length=MAX_ROWS)]


class UrlSourceCreate(Strict):
    name: Name
    kind: Literal["url"]
    url: HttpUrl
    format: Literal["csv", "json"]
    refresh_interval: Interval | None = None


class InlineSourceCreate(Strict):
    name: Name
    kind: Literal["inline"]
    rows: InlineRows


DataSourceCreate = Annotated[UrlSourceCreate | InlineSourceCreate, Field(discriminator="kind")]


class DataSourceUpdate(Strict):
    name: Name | None = None
    url: HttpUrl | None = None
    format: Literal["csv", "json"] | None = None
    refresh_interval: Interval | None = None
    rows: InlineRows | None = None


class DataSourceOut(BaseModel):
    id: int
    client_id: int | None
    name: str
    kind: str
    url: str | None
    format: str | None
    refresh_interval: int | None
    next_refresh_at: datetime | None
    refresh_requested_at: datetime | None
    last_refreshed_at: datetime | None
    last_error: str | None
    refresh_fail_count: int
    row_count: int
    version: str
    created_at: datetime

    @classmethod
    def of(cls, source: DataSource) -> DataSourceOut:
        """A data source with its refresh state and the size of its last good snapshot (not its rows)."""
        return cls(
            id=source.id,
            client_id=source.client_id,
            name=source.name,
            kind=source.kind,
            url=source.url,
            format=source.format,
            refresh_interval=source.refresh_interval,
            next_refresh_at=source.next_refresh_at,
            refresh_requested_at=source.refresh_requested_at,
            last_refreshed_at=source.last_refreshed_at,
            last_error=source.last_error,
            refresh_fail_count=source.refresh_fail_count,
            row_count=source.row_count,
            version=source.version,
            created_at=source.created_at,
        )


class DataSourceList(BaseModel):
    items: list[DataSourceOut]
    total: int
    limit: int
    offset: int


class RowsOut(BaseModel):
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int
    version: str


class Queued(BaseModel):
    queued: bool
