"""Request and response bodies of the templates API (SPEC §15). Unknown fields are refused (422)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, model_validator

from tenantry.dashboards.schemas import Filters, _unique_ids
from tenantry.datasources.schemas import InlineSourceCreate, SqlSourceCreate, UrlSourceCreate
from tenantry.fields import Lines, Name, OneLine, RowId, Strict
from tenantry.klips.spec import KlipIn

# A name the template's klips use for one of its sources: "sales", "crm_contacts".
Ref = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")]
Description = Annotated[str, StringConstraints(max_length=2000), Lines]


class UrlSourceIn(UrlSourceCreate):
    ref: Ref


class InlineSourceIn(InlineSourceCreate):
    ref: Ref


class SqlSourceIn(SqlSourceCreate):
    ref: Ref


TemplateSource = Annotated[UrlSourceIn | InlineSourceIn | SqlSourceIn, Field(discriminator="kind")]


class TemplateKlip(KlipIn):
    """A klip of a template: it names its source by the template's `ref`, never by an id (the
    sources are made for each client when the template is deployed)."""

    datasource_ref: Ref | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and "datasource_id" in data:
            raise ValueError("a template's klip names its source with datasource_ref, not datasource_id")
        if isinstance(data, dict) and data.get("kind") != "text":
            # KlipBody asks a non-text klip for a source: the ref stands for it until deployed
            # (the service names `datasource_ref` when it is missing or names nothing).
            return {**data, "datasource_id": 1}
        return data


class TemplateDashboard(Strict):
    name: Name
    filters: Filters = []
    klips: Annotated[list[TemplateKlip], Field(max_length=50)] = []

    @model_validator(mode="after")
    def _filter_ids(self) -> TemplateDashboard:
        _unique_ids(self.filters)
        return self


class TemplateIn(Strict):
    name: Name
    description: Description | None = None
    datasources: Annotated[list[TemplateSource], Field(max_length=50)] = []
    dashboards: Annotated[list[TemplateDashboard], Field(min_length=1, max_length=20)]


class TemplateOut(BaseModel):
    id: int
    name: str
    description: str | None
    version: int
    # Each source as a data source shows it (secrets as "*****"), with its `ref`.
    datasources: list[dict[str, Any]]
    dashboards: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime


class TemplateList(BaseModel):
    items: list[TemplateOut]
    total: int
    limit: int
    offset: int


class DeployFilter(Strict):
    # The effective status: `trial` is a trial still running, `trial_expired` one whose end has passed.
    status: Literal["setup", "trial", "trial_expired", "active", "disabled"] | None = None
    q: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), OneLine] | None
    ) = None


class DeployIn(Strict):
    client_ids: Annotated[list[RowId], Field(max_length=1000)] | None = None
    filter: DeployFilter | None = None
    dry_run: bool = False


class Deployed(BaseModel):
    client_id: int
    dashboard_ids: list[int]
    datasource_ids: list[int]


class Skipped(BaseModel):
    client_id: int
    code: str
    detail: str


class DeployOut(BaseModel):
    deployed: list[Deployed] = []
    skipped: list[Skipped] = []


class InstanceOut(BaseModel):
    client_id: int
    version: int
    drift: bool
    detached: bool


class UpdateInstancesIn(Strict):
    client_ids: Annotated[list[RowId], Field(max_length=1000)] | None = None
    force: bool = False
