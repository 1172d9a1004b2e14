"""Request and response bodies of the dashboards API. Unknown fields are refused (422).

A klip's own models (kinds, sizes, queries, formats, filters) are `klips.spec`'s, shared with the
console's and portal's builder and with what the klips table stores.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, Field, model_validator

from tenantry.fields import Name, RowId, Strict
from tenantry.klips.spec import (
    DashboardFilter,
    KlipBody,
    KlipIn,
    KlipPatch,
    LayoutIn,
    PreviewIn,
    Size,
    stored_definition,
)

if TYPE_CHECKING:
    from tenantry.db.dashboard_models import Klip
    from tenantry.db.models import Dashboard

__all__ = [
    "DashboardCreate",
    "DashboardFilter",
    "DashboardList",
    "DashboardOut",
    "DashboardUpdate",
    "KlipBody",
    "KlipIn",
    "KlipOut",
    "KlipPatch",
    "LayoutIn",
    "PreviewIn",
    "PreviewOut",
    "SharesIn",
    "SharesOut",
]

# At most 50 a dashboard: a limit of the product (409 `limit_reached`), checked by the service.
Klips = list[KlipIn]
# A dashboard's filters: ids unique, at most 10 (a filter bar, not a query language).
Filters = Annotated[list[DashboardFilter], Field(max_length=10)]


def _unique_ids(filters: list[DashboardFilter] | None) -> None:
    ids = [f.id for f in filters or []]
    if len(ids) != len(set(ids)):
        raise ValueError("filters: each filter needs its own id")


class DashboardCreate(Strict):
    name: Name
    klips: Klips = []
    filters: Filters = []

    @model_validator(mode="after")
    def _filter_ids(self) -> DashboardCreate:
        _unique_ids(self.filters)
        return self


class DashboardUpdate(Strict):
    name: Name | None = None
    klips: Klips | None = None
    filters: Filters | None = None

    @model_validator(mode="after")
    def _filter_ids(self) -> DashboardUpdate:
        _unique_ids(self.filters)
        return self


class FiltersIn(Strict):
    filters: Filters

    @model_validator(mode="after")
    def _filter_ids(self) -> FiltersIn:
        _unique_ids(self.filters)
        return self


class KlipOut(BaseModel):
    """A klip: its place and size, and its whole definition (unset fields at their defaults)."""

    id: int
    position: int
    title: str
    kind: str
    datasource_id: int | None
    size: Size
    columns: dict[str, Any] = {}
    series: list[dict[str, Any]] | None = None
    query: dict[str, Any] | None = None
    format: dict[str, Any] | None = None
    compare: str | dict[str, Any] | None = None
    sparkline: bool = False
    min: float | None = None
    max: float | None = None
    target: float | None = None
    text: str | None = None
    stacked: bool = False
    orientation: str = "vertical"

    @classmethod
    def of(cls, klip: Klip) -> KlipOut:
        return cls(
            id=klip.id,
            position=klip.position,
            title=klip.title,
            kind=klip.kind,
            datasource_id=klip.datasource_id,
            size=Size(w=klip.size_w, h=klip.size_h),
            **stored_definition(klip.definition),
        )


class DashboardOut(BaseModel):
    id: int
    client_id: int | None
    name: str
    klips: list[KlipOut]
    filters: list[DashboardFilter]
    shared_with: list[int]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, dashboard: Dashboard, klips: Sequence[Klip], shared_with: list[int]) -> DashboardOut:
        """A dashboard with its klips in order and the client users it is shared with."""
        return cls(
            id=dashboard.id,
            client_id=dashboard.client_id,
            name=dashboard.name,
            klips=[KlipOut.of(k) for k in klips],
            filters=[DashboardFilter.model_validate(f) for f in dashboard.filters or []],
            shared_with=shared_with,
            created_at=dashboard.created_at,
            updated_at=dashboard.updated_at,
        )


class DashboardList(BaseModel):
    items: list[DashboardOut]
    total: int
    limit: int
    offset: int


class SharesIn(Strict):
    user_ids: Annotated[list[RowId], Field(max_length=1000)]


class SharesOut(BaseModel):
    dashboard_id: int
    user_ids: list[int]


class PreviewOut(BaseModel):
    """A klip drawn without saving it: its query's output (the first rows) and its drawing."""

    rows: list[dict[str, Any]]
    columns: list[str]
    svg: str
    # Whether the output had more rows than `rows` shows.
    truncated: bool = False
