"""The data-source forms the partner console and the client portal share: one form per kind (a
file at a URL, a SQL database, rows pasted as CSV), the "Test connection" answer, and a client's
properties table.

A form's fields become the same body the API takes (`DataSourceCreate`), checked by the same
schema, so a refused field reads as the API's sentence naming it. Secrets are write-only here as
in the API: a page never carries a stored secret, only `MASK`, and sending `MASK` back keeps it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from html import escape
from typing import Annotated, Any

import anyio
from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from tenantry.api.deps import Work, services
from tenantry.auth.principal import Principal
from tenantry.auth.sessions import SignedIn
from tenantry.clients.schemas import Properties
from tenantry.clock import Clock
from tenantry.datasources import probe
from tenantry.datasources import service as sources_service
from tenantry.datasources.fetch import FetchError, parse_csv
from tenantry.datasources.request import SourceRequest
from tenantry.datasources.schemas import (
    DataSourceUpdate,
    InlineSourceCreate,
    SqlSourceCreate,
    UrlSourceCreate,
)
from tenantry.errors import InvalidInput
from tenantry.outbound import Guard
from tenantry.vault import Vault
from tenantry.web.pages import Refused, Visit, amount, page

# Blank name/value rows a form offers for headers, query parameters and properties (a page without
# script cannot add rows; saving shows the saved ones plus these again).
BLANK_ROWS = 3

REFRESH_CHOICES = {
    "": "Manual only",
    "60": "Every minute",
    "300": "Every 5 minutes",
    "900": "Every 15 minutes",
    "3600": "Every hour",
    "86400": "Every day",
}

Short = Annotated[str, Form(max_length=200)]
Long = Annotated[str, Form(max_length=2000)]
# Name/value rows: `max_length` of a list field counts its rows (at most 200 here); each name and
# value is then checked by the API's schema (its lengths, its characters, how many it takes).
Rows = Annotated[list[str] | None, Form(max_length=200)]

_SCHEMAS: dict[str, type[UrlSourceCreate | SqlSourceCreate | InlineSourceCreate]] = {
    "url": UrlSourceCreate,
    "sql": SqlSourceCreate,
    "inline": InlineSourceCreate,
}
_PROPERTIES: TypeAdapter[dict[str, str]] = TypeAdapter(Properties)


def pairs(names: list[str] | None, values: list[str] | None, what: str) -> dict[str, str]:
    """Name/value rows as a mapping: a row without a name is left out (that is how a row is
    removed); a name given twice is refused, naming it."""
    names, values = names or [], values or []
    found: dict[str, str] = {}
    for name, value in zip(names, values + [""] * len(names), strict=False):
        name = name.strip()
        if not name:
            continue
        if name in found:
            raise InvalidInput(f"{what} {name!r} is given twice.", field=what.lower())
        found[name] = value
    return found


@dataclass(frozen=True)
class SourceFields:
    """A data-source form as typed; `body()` is the API's body for it."""

    name: str = ""
    kind: str = "url"
    refresh_interval: str = ""
    # A file at a URL
    url: str = ""
    format: str = "csv"
    method: str = "GET"
    header_names: tuple[str, ...] = ()
    header_values: tuple[str, ...] = ()
    query_names: tuple[str, ...] = ()
    query_values: tuple[str, ...] = ()
    request_body: str = ""
    auth_type: str = ""
    auth_username: str = ""
    auth_password: str = ""
    auth_token: str = ""
    records: str = ""
    paginate_type: str = ""
    paginate_param: str = ""
    paginate_max_pages: str = ""
    # A SQL database
    engine: str = "postgresql"
    host: str = ""
    port: str = ""
    database: str = ""
    username: str = ""
    password: str = ""
    sql: str = ""
    # Rows pasted as CSV
    csv_text: str = ""

    def body(self) -> dict[str, Any]:
        """The API's body for this form (only what was given, so the schema's defaults apply)."""
        body: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind == "inline":
            try:
                body["rows"] = parse_csv(self.csv_text)
            except FetchError as exc:
                raise InvalidInput(str(exc), field="rows") from None
            return body
        interval = amount(self.refresh_interval)
        if interval is not None:
            body["refresh_interval"] = interval
        if self.kind == "sql":
            return body | self._sql()
        return body | self._url()

    def _url(self) -> dict[str, Any]:
        body: dict[str, Any] = {"url": self.url.strip(), "format": self.format, "method": self.method}
        headers = pairs(list(self.header_names), list(self.header_values), "Header")
        if headers:
            body["headers"] = headers
        query = pairs(list(self.query_names), list(self.query_values), "Query")
        if query:
            body["query"] = query
        if self.request_body.strip():
            body["body"] = self.request_body
        if self.auth_type == "basic":
            body["auth"] = {"type": "basic", "username": self.auth_username, "password": self.auth_password}
        elif self.auth_type == "bearer":
            body["auth"] = {"type": "bearer", "token": self.auth_token}
        if self.records.strip():
            body["records"] = self.records.strip()
        if self.paginate_type == "link_header":
            body["paginate"] = {"type": "link_header"}
        elif self.paginate_type == "page_param":
            paginate: dict[str, Any] = {"type": "page_param", "param": self.paginate_param.strip()}
            max_pages = amount(self.paginate_max_pages)
            if max_pages is not None:
                paginate["max_pages"] = max_pages
            body["paginate"] = paginate
        return body

    def _sql(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "engine": self.engine,
            "host": self.host.strip(),
            "database": self.database.strip(),
            "username": self.username.strip(),
            "query": self.sql,
        }
        port = amount(self.port)
        if port is not None:
            body["port"] = port
        if self.password:
            body["password"] = self.password
        return body

    def create(self) -> UrlSourceCreate | SqlSourceCreate | InlineSourceCreate:
        """The body checked by the API's schema of its kind (a refused field raises, naming it)."""
        schema = _SCHEMAS.get(self.kind)
        if schema is None:
            raise InvalidInput("Kind: choose a URL, a SQL database or pasted rows.", field="kind")
        return schema.model_validate(self.body())

    def update(self) -> DataSourceUpdate:
        """The change of a stored url or sql source to what the form holds: every setting is sent
        (an emptied one is cleared); a secret left as "*****" keeps its stored value, and an empty
        SQL password keeps the stored one."""
        if self.kind not in ("url", "sql"):
            raise InvalidInput("Only a url or sql data source has settings to change here.")
        body = self.body()
        del body["kind"]
        if self.kind == "url":
            for cleared in ("body", "auth", "records", "paginate"):
                body.setdefault(cleared, None)
            body.setdefault("headers", {})
            body.setdefault("query", {})
        else:
            body.setdefault("port", None)
        return DataSourceUpdate.model_validate(body)

    def probe(self) -> UrlSourceCreate | SqlSourceCreate:
        """The body to test a connection with: only a URL or a database can be dialled."""
        if self.kind not in ("url", "sql"):
            raise InvalidInput("Pasted rows need no connection; only a URL or a database can be tested.")
        checked = self.create()
        assert isinstance(checked, UrlSourceCreate | SqlSourceCreate)
        return checked


def source_fields(
    name: Short = "",
    kind: Annotated[str, Form(max_length=10)] = "url",
    refresh_interval: Annotated[str, Form(max_length=10)] = "",
    url: Long = "",
    format: Annotated[str, Form(max_length=10)] = "csv",
    method: Annotated[str, Form(max_length=10)] = "GET",
    header_name: Rows = None,
    header_value: Rows = None,
    query_name: Rows = None,
    query_value: Rows = None,
    request_body: Annotated[str, Form(max_length=100_000)] = "",
    auth_type: Annotated[str, Form(max_length=10)] = "",
    auth_username: Short = "",
    auth_password: Long = "",
    auth_token: Long = "",
    records: Long = "",
    paginate_type: Annotated[str, Form(max_length=20)] = "",
    paginate_param: Short = "",
    paginate_max_pages: Annotated[str, Form(max_length=10)] = "",
    engine: Annotated[str, Form(max_length=20)] = "postgresql",
    host: Long = "",
    port: Annotated[str, Form(max_length=10)] = "",
    database: Short = "",
    username: Short = "",
    password: Long = "",
    sql: Annotated[str, Form(max_length=100_000)] = "",
    csv_text: Annotated[str, Form(max_length=1_000_000)] = "",
) -> SourceFields:
    return SourceFields(
        name=name,
        kind=kind,
        refresh_interval=refresh_interval,
        url=url,
        format=format,
        method=method,
        header_names=tuple(header_name or ()),
        header_values=tuple(header_value or ()),
        query_names=tuple(query_name or ()),
        query_values=tuple(query_value or ()),
        request_body=request_body,
        auth_type=auth_type,
        auth_username=auth_username,
        auth_password=auth_password,
        auth_token=auth_token,
        records=records,
        paginate_type=paginate_type,
        paginate_param=paginate_param,
        paginate_max_pages=paginate_max_pages,
        engine=engine,
        host=host,
        port=port,
        database=database,
        username=username,
        password=password,
        sql=sql,
        csv_text=csv_text,
    )


SourceFieldsDep = Annotated[SourceFields, Depends(source_fields)]


def property_rows(
    key: Rows = None,
    value: Rows = None,
) -> dict[str, str]:
    """The properties table as typed: a row without a key is left out (clearing a key removes it)."""
    return pairs(key, value, "Property")


def checked_properties(values: dict[str, str]) -> dict[str, str]:
    """The table checked by the API's schema; a refusal names the property it is about."""
    try:
        checked: dict[str, str] = _PROPERTIES.validate_python(values)
    except ValidationError as invalid:
        first = invalid.errors()[0]
        where = [str(part) for part in first["loc"]]
        if not where:
            raise InvalidInput(f"Properties: {first['msg']}.", field="properties") from None
        if where[-1] == "[key]":
            raise InvalidInput(
                f"Property key {where[0]!r}: lower-case letters, digits and _, starting with a letter, "
                "at most 40.",
                field="properties",
            ) from None
        raise InvalidInput(f"Property {where[0]!r}: {first['msg']}.", field="properties") from None
    return checked


PropertyRowsDep = Annotated[dict[str, str], Depends(property_rows)]


def fragment_refusal(visit: Visit, refusal: Refused) -> Response:
    """A refused test answers in place of its result: the sentence naming the field."""
    return HTMLResponse(
        f'<p class="error" role="alert">{escape(refusal.sentence)}</p>', status_code=refusal.status
    )


# Reads the caller and the request to fetch: `(db, visit, vault, *args) -> (signed_in, request)`.
Prepare = Callable[..., tuple[SignedIn, SourceRequest]]


async def connection_test(request: Request, visit: Visit, prepare: Prepare, *args: Any) -> Response:
    """ "Test connection": fetch once with the form's settings and show the first rows or why not;
    nothing is saved. Read only, and the fetch runs after the transaction: a slow server must not
    hold the database's write lock for its whole deadline."""
    visit.refused = fragment_refusal
    svc = services(request)
    read = Work(svc.database, write=False)
    signed_in, fetch = await read(prepare, visit, svc.vault, *args)
    result = await anyio.to_thread.run_sync(partial(probe.run, fetch, guard=svc.guard))
    return page(request, signed_in, "_source_test.html", result=result)


def change_settings(
    db: Session,
    principal: Principal,
    clock: Clock,
    guard: Guard,
    vault: Vault,
    source_id: int,
    form: SourceFields,
) -> str:
    """A stored source's settings changed from its form (what "*****" stands for is kept)."""
    source = sources_service.update_source(db, clock, principal, source_id, form.update(), guard, vault)
    return f"Settings of {source.name} saved."
