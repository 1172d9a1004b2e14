"""Request and response bodies of the data-sources API. Unknown fields are refused (422)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

import jmespath
import jmespath.exceptions
from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

from tenantry.datasources.fetch import MAX_ROWS
from tenantry.datasources.records import check_records
from tenantry.fields import Lines, Name, OneLine, Strict

if TYPE_CHECKING:
    from tenantry.db.dashboard_models import DataSource

Interval = Annotated[StrictInt, Field(ge=60, le=31 * 24 * 3600, description="Seconds (at least 60).")]
Cell = StrictStr | StrictInt | StrictFloat | StrictBool | None
# At most 50,000 rows (as a url source keeps) and 5 MB as JSON (checked by the service).
InlineRows = Annotated[list[dict[str, Cell]], Field(max_length=MAX_ROWS)]


# What every answer shows in place of a secret; sent back, it keeps the stored value.
MASK = "*****"

# The `{{client.…}}` placeholders a template may hold (tenantry.datasources.placeholders expands
# them); checked here only for shape: a template with `{{` that names nothing known is refused.
_PLACEHOLDER = re.compile(r"\{\{\s*client\.(id|external_id|name|prop\.[a-z][a-z0-9_]{0,39})\s*\}\}")

# A secret: a header value, a password, a token. One line (a header value cannot hold a line break).
Secret = Annotated[str, StringConstraints(min_length=1, max_length=4000), OneLine]
# RFC 9110 token characters.
HeaderName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")]
Headers = Annotated[dict[HeaderName, Secret], Field(max_length=30)]
QueryValue = Annotated[str, StringConstraints(max_length=2000), OneLine]
QueryName = Annotated[str, StringConstraints(min_length=1, max_length=200), OneLine]
Query = Annotated[dict[QueryName, QueryValue], Field(max_length=50)]
Body = Annotated[str, StringConstraints(max_length=100_000), Lines]
Records = Annotated[str, StringConstraints(min_length=1, max_length=500), OneLine]
Host = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=253), OneLine]
Port = Annotated[StrictInt, Field(ge=1, le=65535)]
DbName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), OneLine]
SqlText = Annotated[str, StringConstraints(min_length=1, max_length=100_000), Lines]


def _template_url(value: Any) -> Any:
    """An http(s) URL that may hold placeholders: checked as it will be once they are filled in."""
    if not isinstance(value, str):
        return value
    for braces in re.findall(r"\{\{.*?\}\}", value):
        if not _PLACEHOLDER.fullmatch(braces):
            raise PydanticCustomError("placeholder", f"unknown placeholder {braces}")
    sample = _PLACEHOLDER.sub("x", value)
    try:
        parts = urlsplit(sample)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise PydanticCustomError("url_parsing", "not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise PydanticCustomError("url_scheme", "an http:// or https:// URL with a host is expected")
    return value


def sample_url(template: str) -> str:
    """The template with every placeholder filled by a plain letter: what the outgoing guard
    checks at creation (the filled-in URL is checked again at every fetch)."""
    return _PLACEHOLDER.sub("x", template)


UrlTemplate = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    AfterValidator(_template_url),
    OneLine,
]


def _jmespath(value: str) -> str:
    try:
        jmespath.compile(value)
    except jmespath.exceptions.JMESPathError:
        raise PydanticCustomError("jmespath", "not a valid JMESPath expression") from None
    refusal = check_records(value)
    if refusal is not None:
        # Passed as context, so that braces in the sentence are not read as placeholders.
        raise PydanticCustomError("jmespath_records", "{refusal}", {"refusal": refusal})
    return value


RecordsPath = Annotated[Records, AfterValidator(_jmespath)]


class BasicAuth(Strict):
    type: Literal["basic"]
    username: Annotated[str, StringConstraints(min_length=1, max_length=200), OneLine]
    password: Secret


class BearerAuth(Strict):
    type: Literal["bearer"]
    token: Secret


Auth = Annotated[BasicAuth | BearerAuth, Field(discriminator="type")]


class LinkHeaderPaging(Strict):
    type: Literal["link_header"]


class PageParamPaging(Strict):
    type: Literal["page_param"]
    param: QueryName
    max_pages: Annotated[StrictInt, Field(ge=1, le=20)] = 20


Paginate = Annotated[LinkHeaderPaging | PageParamPaging, Field(discriminator="type")]


class UrlSourceCreate(Strict):
    name: Name
    kind: Literal["url"]
    url: UrlTemplate
    format: Literal["csv", "json", "xlsx"]
    refresh_interval: Interval | None = None
    method: Literal["GET", "POST"] = "GET"
    headers: Headers = Field(default_factory=dict)
    query: Query = Field(default_factory=dict)
    body: Body | None = None
    auth: Auth | None = None
    records: RecordsPath | None = None
    paginate: Paginate | None = None


class InlineSourceCreate(Strict):
    name: Name
    kind: Literal["inline"]
    rows: InlineRows


class SqlSourceCreate(Strict):
    name: Name
    kind: Literal["sql"]
    engine: Literal["postgresql", "mysql"]
    host: Host
    port: Port | None = None
    database: DbName
    username: DbName
    password: Secret | None = None
    query: SqlText
    refresh_interval: Interval | None = None


DataSourceCreate = Annotated[
    UrlSourceCreate | InlineSourceCreate | SqlSourceCreate, Field(discriminator="kind")
]


class DataSourceUpdate(Strict):
    """Only the fields sent change. A secret sent as "*****" keeps its stored value; `headers`
    replaces the whole set (a header sent as "*****" keeps its value). `query` is a map of URL
    parameters for a url source and the SQL text for a sql source."""

    name: Name | None = None
    url: UrlTemplate | None = None
    format: Literal["csv", "json", "xlsx"] | None = None
    refresh_interval: Interval | None = None
    rows: InlineRows | None = None
    method: Literal["GET", "POST"] | None = None
    headers: Headers | None = None
    query: Query | SqlText | None = None
    body: Body | None = None
    auth: Auth | None = None
    records: RecordsPath | None = None
    paginate: Paginate | None = None
    engine: Literal["postgresql", "mysql"] | None = None
    host: Host | None = None
    port: Port | None = None
    database: DbName | None = None
    username: DbName | None = None
    password: Secret | None = None


def masked_config(source: DataSource) -> dict[str, Any] | None:
    """A source's settings as answers show them: every secret as "*****". Built from the
    non-secret `config` alone (it names the headers and the kind of auth), so showing a source
    never opens the vault, and a source whose secrets cannot be opened still shows."""
    config = source.config
    if not config:
        return None
    shown = dict(config)
    if source.kind == "url":
        shown["headers"] = {name: MASK for name in config.get("headers") or []}
        auth = config.get("auth")
        if auth:
            secret = "password" if auth.get("type") == "basic" else "token"
            shown["auth"] = {**auth, secret: MASK}
    elif source.kind == "sql":
        shown["password"] = MASK if source.secrets else None
    return shown


class DataSourceOut(BaseModel):
    id: int
    client_id: int | None
    name: str
    kind: str
    url: str | None
    format: str | None
    # The request settings of a url or sql source; every secret shows as "*****".
    config: dict[str, Any] | None
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
            config=masked_config(source),
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
