"""Everything one fetch of a data source needs, with its secrets opened: built from a stored
source (the worker's refresh) or from a request body (the "Test connection" button).

A `SourceRequest` lives only as long as the fetch: it is never stored, logged or sent back
(its `repr` hides the secrets, so that even an error report that prints it shows none).
Placeholders (`{{client.…}}`) are NOT yet expanded: the fetch expands them with `context`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tenantry.datasources.fetch import FetchError
from tenantry.vault import Vault, VaultError

if TYPE_CHECKING:
    from tenantry.datasources.placeholders import Context
    from tenantry.datasources.schemas import SqlSourceCreate, UrlSourceCreate
    from tenantry.db.dashboard_models import DataSource

# What the source shows as `last_error` when its secrets cannot be opened (a wrong or lost key,
# or a damaged text): the operator's matter, said plainly, with nothing of the secret in it.
SECRETS_UNREADABLE = "The stored secrets cannot be opened with the configured keys."


@dataclass(frozen=True)
class SourceRequest:
    kind: str
    url: str | None
    format: str | None
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    query: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    # {"type": "basic", "username", "password"} or {"type": "bearer", "token"}.
    auth: dict[str, str] | None = field(default=None, repr=False)
    records: str | None = None
    paginate: dict[str, Any] | None = None
    # engine, host, port, database, username, password, query (for a sql source).
    sql: dict[str, Any] | None = field(default=None, repr=False)
    # The client's values for the placeholders (None for the partner's own source).
    context: Context | None = None


def open_secrets(sealed: str | None, vault: Vault) -> dict[str, Any]:
    """The secrets of a source as stored (see `seal_secrets`); FetchError when they cannot be opened."""
    if not sealed:
        return {}
    try:
        secrets = json.loads(vault.open(sealed))
    except (VaultError, ValueError):
        raise FetchError(SECRETS_UNREADABLE) from None
    if not isinstance(secrets, dict):
        raise FetchError(SECRETS_UNREADABLE)
    return secrets


def seal_secrets(secrets: dict[str, Any], vault: Vault) -> str | None:
    """`{"headers": {name: value}, "auth.password", "auth.token", "password"}` (only those set),
    sealed as one text; None when there is no secret."""
    kept = {key: value for key, value in secrets.items() if value}
    return vault.seal(json.dumps(kept, ensure_ascii=False, sort_keys=True)) if kept else None


def request_of(source: DataSource, vault: Vault, context: Context | None) -> SourceRequest:
    """The request a stored `url` or `sql` source makes, its secrets opened (FetchError with
    SECRETS_UNREADABLE when the configured keys cannot open them)."""
    config = source.config or {}
    secrets = open_secrets(source.secrets, vault)
    if source.kind == "sql":
        sql = {
            "engine": config.get("engine"),
            "host": config.get("host"),
            "port": config.get("port"),
            "database": config.get("database"),
            "username": config.get("username"),
            "password": secrets.get("password"),
            "query": config.get("query"),
        }
        return SourceRequest(kind="sql", url=None, format=None, sql=sql, context=context)
    if source.kind != "url":
        raise FetchError("Only a url or sql data source can be fetched.")
    header_values = secrets.get("headers") or {}
    headers = {name: header_values.get(name, "") for name in config.get("headers") or []}
    return SourceRequest(
        kind="url",
        url=source.url,
        format=source.format,
        method=config.get("method") or "GET",
        headers=headers,
        query=dict(config.get("query") or {}),
        body=config.get("body"),
        auth=_auth(config.get("auth"), secrets),
        records=config.get("records"),
        paginate=config.get("paginate"),
        context=context,
    )


def _auth(auth: dict[str, Any] | None, secrets: dict[str, Any]) -> dict[str, str] | None:
    if not auth:
        return None
    if auth.get("type") == "basic":
        return {
            "type": "basic",
            "username": auth.get("username") or "",
            "password": secrets.get("auth.password") or "",
        }
    return {"type": "bearer", "token": secrets.get("auth.token") or ""}


def request_from_body(body: UrlSourceCreate | SqlSourceCreate, context: Context | None) -> SourceRequest:
    """The request a source would make with these settings, before anything is stored (for
    "Test connection"). Secrets are taken as sent: a "*****" here has no stored value to stand
    for, so the caller resolves it first."""
    from tenantry.datasources.schemas import SqlSourceCreate

    if isinstance(body, SqlSourceCreate):
        sql = {
            "engine": body.engine,
            "host": body.host,
            "port": body.port,
            "database": body.database,
            "username": body.username,
            "password": body.password,
            "query": body.query,
        }
        return SourceRequest(kind="sql", url=None, format=None, sql=sql, context=context)
    auth: dict[str, str] | None = None
    if body.auth is not None:
        auth = body.auth.model_dump()
    return SourceRequest(
        kind="url",
        url=body.url,
        format=body.format,
        method=body.method,
        headers=dict(body.headers),
        query=dict(body.query),
        body=body.body,
        auth=auth,
        records=body.records,
        paginate=body.paginate.model_dump() if body.paginate is not None else None,
        context=context,
    )
