"""Request and response bodies of the dashboards API. Unknown fields are refused (422)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from tenantry.charts.svg import REQUIRED_COLUMNS
from tenantry.fields import Column, Name, RowId, Strict

if TYPE_CHECKING:
    from tenantry.db.dashboard_models import Klip
    from tenantry.db.models import Dashboard

KlipKind = Literal["value", "table", "bar", "line", "pie"]


class KlipColumns(Strict):
    x: Column | None = None
    y: Column | None = None
    label: Column | None = None
    value: Column | None = None
    # `table` shows all columns, or only these.
    fields: Annotated[list[Column], Field(max_length=20)] | None = None


class KlipIn(Strict):
    title: Name
    kind: KlipKind
    datasource_id: RowId
    columns: KlipColumns = KlipColumns()

    @model_validator(mode="after")
    def _columns_for_kind(self) -> KlipIn:
        missing = [c for c in REQUIRED_COLUMNS[self.kind] if getattr(self.columns, c) is None]
        if missing:
            raise ValueError(f"a {self.kind} klip needs columns.{' and columns.'.join(missing)}")
        return self


# At most 50 a dashboard: a limit of the product (409 `limit_reached`), checked by the service.
Klips = list[KlipIn]


class DashboardCreate(Strict):
    name: Name
    klips: Klips = []


class DashboardUpdate(Strict):
    name: Name | None = None
    klips: Klips | None = None


class KlipOut(BaseModel):
    id: int
    position: int
    title: str
    kind: str
    datasource_id: int
    columns: dict[str, Any]

    @classmethod
    def of(cls, klip: Klip) -> KlipOut:
        return cls(
            id=klip.id,
            position=klip.position,
            title=klip.title,
            kind=klip.kind,
            datasource_id=klip.datasource_id,
            columns=klip.columns,
        )


class DashboardOut(BaseModel):
    id: int
    client_id: int | None
    name: str
    klips: list[KlipOut]
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
