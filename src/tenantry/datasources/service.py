"""Data-source use cases: create, change, queue a refresh, refresh one source, delete.

Services flush, never commit. Refreshes are work the platform does for the client, not calls
the client makes: they never count against API Calls per Day (seed).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from tenantry.auth.principal import Principal
from tenantry.clock import Clock
from tenantry.datasources import repository as repo
from tenantry.datasources.fetch import FetchError, check_rows
from tenantry.datasources.request import SourceRequest, open_secrets, request_of, seal_secrets
from tenantry.datasources.schemas import (
    MASK,
    BasicAuth,
    DataSourceUpdate,
    InlineSourceCreate,
    SqlSourceCreate,
    UrlSourceCreate,
    sample_url,
)
from tenantry.db.dashboard_models import DataSource
from tenantry.errors import InvalidInput, TenantryError
from tenantry.limits import DATA_SOURCES_PER_OWNER
from tenantry.outbound import Guard
from tenantry.owners import (
    Owner,
    audit_change,
    changing,
    check_content_limit,
    require_builder,
    require_reader,
)
from tenantry.partners import repository as partners_repo
from tenantry.policy import Capability, allows
from tenantry.vault import Vault, VaultError

Fetch = Callable[[str, str], list[dict[str, Any]]]

# Inline rows are held to the same size as a downloaded file (SPEC §12 "Limits"); the row count
# (50,000) is checked by the schema.
INLINE_MAX_BYTES = 5 * 1024 * 1024


class InUse(TenantryError):
    code, status, title = "in_use", 409, "Still in use"


class NotRefreshable(TenantryError):
    code, status, title = "not_refreshable", 409, "Nothing to refresh"


def readable_source(db: Session, principal: Principal, source_id: int) -> DataSource:
    """A data source with its settings and rows, for those who may read them (not members)."""
    source = repo.get_source(db, principal, source_id)
    require_reader(principal)
    return source


def read_rows(db: Session, principal: Principal, source_id: int, offset: int, limit: int) -> repo.RowsPage:
    """A window of a data source's last good snapshot, for those who may read it."""
    return repo.read_rows(db, readable_source(db, principal, source_id).id, offset, limit)


def sources_of(
    db: Session, principal: Principal, owner: Owner, limit: int, offset: int
) -> tuple[Sequence[DataSource], int]:
    require_reader(principal)
    return repo.list_sources(db, owner, limit, offset)


def store_rows(db: Session, source: DataSource, rows: list[dict[str, Any]], now: datetime) -> None:
    """The one writer of a snapshot: the rows (for drawing) and their pages (for listing)."""
    if source.id is None:
        db.flush()
    repo.replace_pages(db, source.id, rows)
    snapshot(source, rows, now)


def snapshot(source: DataSource, rows: list[dict[str, Any]], now: datetime) -> None:
    """A snapshot's fields on its source (`store_rows` writes its pages too)."""
    source.rows = rows
    source.row_count = len(rows)
    source.version = uuid.uuid4().hex
    source.last_refreshed_at = now
    source.last_error = None
    source.refresh_fail_count = 0


def schedule(source: DataSource, now: datetime) -> None:
    interval = source.refresh_interval
    fetched = source.kind in FETCHED_KINDS
    source.next_refresh_at = now + timedelta(seconds=interval) if interval and fetched else None


# The kinds the worker fetches (the others hold their rows themselves).
FETCHED_KINDS = ("url", "sql")
# What each kind may be sent on top of `name` (anything else is refused with 422).
_URL_FIELDS = {
    "url",
    "format",
    "refresh_interval",
    "method",
    "headers",
    "query",
    "body",
    "auth",
    "records",
    "paginate",
}
_SQL_FIELDS = {"engine", "host", "port", "database", "username", "password", "query", "refresh_interval"}
_FIELDS_OF = {"url": _URL_FIELDS, "sql": _SQL_FIELDS, "inline": {"rows"}}


def _refuse(field: str, message: str) -> InvalidInput:
    """A 422 naming one field of the body, shaped like the schema's own."""
    error = {"loc": ["body", *field.split(".", 1)], "msg": message, "type": "value_error"}
    return InvalidInput(f"{field}: {message}", errors=[error])


def refuse_fields(fields: Sequence[str], message: str) -> InvalidInput:
    """A 422 naming each of `fields` ("headers.X-Key", "auth.token"...), shaped like the schema's own."""
    errors = [
        {"loc": ["body", *field.split(".", 1)], "msg": message, "type": "value_error"} for field in fields
    ]
    return InvalidInput(f"{', '.join(fields)}: {message}", errors=errors)


def url_settings(data: UrlSourceCreate) -> tuple[dict[str, Any], dict[str, Any]]:
    """The non-secret settings (`config`) and the secrets of a new url source."""
    auth: dict[str, Any] | None = None
    secrets: dict[str, Any] = {}
    if data.headers:
        secrets["headers"] = dict(data.headers)
    if isinstance(data.auth, BasicAuth):
        auth = {"type": "basic", "username": data.auth.username}
        secrets["auth.password"] = data.auth.password
    elif data.auth is not None:
        auth = {"type": "bearer"}
        secrets["auth.token"] = data.auth.token
    config = {
        "method": data.method,
        "headers": list(data.headers),
        "query": dict(data.query),
        "body": data.body,
        "auth": auth,
        "records": data.records,
        "paginate": data.paginate.model_dump() if data.paginate is not None else None,
    }
    return config, secrets


def sql_settings(data: SqlSourceCreate) -> tuple[dict[str, Any], dict[str, Any]]:
    config = {
        "engine": data.engine,
        "host": data.host,
        "port": data.port,
        "database": data.database,
        "username": data.username,
        "query": data.query,
    }
    return config, {"password": data.password} if data.password else {}


def secret_fields(secrets: dict[str, Any]) -> list[str]:
    """The body fields that hold these secrets, as a 422 or an audit record names them."""
    names = [f"headers.{name}" for name in secrets.get("headers") or {}]
    return names + [key for key in ("auth.password", "auth.token", "password") if secrets.get(key)]


def _seal(secrets: dict[str, Any], vault: Vault | None) -> str | None:
    if not any(secrets.values()):
        return None
    if vault is None:
        raise RuntimeError("a data source with secrets needs the app's vault")
    return seal_secrets(secrets, vault)


def create_source(
    db: Session,
    clock: Clock,
    principal: Principal,
    owner: Owner,
    data: UrlSourceCreate | InlineSourceCreate | SqlSourceCreate,
    guard: Guard,
    vault: Vault | None = None,
) -> DataSource:
    require_builder(principal)
    now = clock.now()
    owner.require(Capability.BUILD_CONTENT, now)
    check_content_limit(db, owner, DataSource, DATA_SOURCES_PER_OWNER)
    inline = inline_rows(data.rows) if isinstance(data, InlineSourceCreate) else None
    source = DataSource(
        partner_id=owner.partner_id,
        client_id=owner.client_id,
        name=data.name,
        kind=data.kind,
        rows=[],
        row_count=0,
        version="",
        refresh_fail_count=0,
        created_at=now,
        updated_at=now,
    )
    if isinstance(data, UrlSourceCreate | SqlSourceCreate):
        if isinstance(data, UrlSourceCreate):
            guard.require_allowed(sample_url(data.url))
            source.url, source.format = data.url, data.format
            config, secrets = url_settings(data)
        else:
            _require_allowed_host(guard, data.host)
            config, secrets = sql_settings(data)
        masked = [field for field in secret_fields(secrets) if secret_value(secrets, field) == MASK]
        if masked:
            # "*****" stands for a stored value, and a new source has none.
            raise refuse_fields(masked, f'"{MASK}" stands for a stored secret; send the value itself.')
        if data.refresh_interval is not None:
            owner.require(Capability.SET_REFRESH_RATE, now)
        source.refresh_interval = data.refresh_interval
        source.config, source.secrets = config, _seal(secrets, vault)
        source.secrets_set_by = side_of(principal) if source.secrets else None
        schedule(source, now)
        # A new url or sql source is loaded once, by a queued refresh, where the status allows it.
        if allows(Capability.INITIAL_LOAD, owner.status(now)):
            source.refresh_requested_at = now
    db.add(source)
    if inline is not None:
        store_rows(db, source, inline, now)
    db.flush()
    audit_change(db, principal, source, "datasource.created", now, {"name": source.name, "kind": source.kind})
    return source


def secret_value(secrets: dict[str, Any], field: str) -> Any:
    if field.startswith("headers."):
        return (secrets.get("headers") or {}).get(field.removeprefix("headers."))
    return secrets.get(field)


def _require_allowed_host(guard: Guard, host: str) -> None:
    """A database host passes the same check as a URL's (a literal refused address is a 422)."""
    problem = guard.url_problem(f"http://{host if ':' not in host else f'[{host}]'}/")
    if problem is not None:
        raise _refuse("host", problem)


def inline_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    try:
        checked = check_rows(rows)
    except FetchError as exc:
        raise InvalidInput(str(exc), field="rows") from None
    size = len(json.dumps(checked, ensure_ascii=False, separators=(",", ":")).encode())
    if size > INLINE_MAX_BYTES:
        raise InvalidInput(
            f"Inline rows are limited to {INLINE_MAX_BYTES // (1024 * 1024)} MB; "
            f"these take {size / (1024 * 1024):.1f} MB as JSON.",
            field="rows",
            limit_bytes=INLINE_MAX_BYTES,
        )
    return checked


def update_source(
    db: Session,
    clock: Clock,
    principal: Principal,
    source_id: int,
    data: DataSourceUpdate,
    guard: Guard,
    vault: Vault | None = None,
) -> DataSource:
    """Change the fields sent. A secret sent as "*****" keeps its stored value; a secret kept this
    way (or by not sending it) may not follow the source to another server: moving a url source
    to another origin, or a sql source to another host, port or engine, requires sending its
    secrets again. Otherwise whoever may edit a source (a client's admin or editor) could point
    it at their own server and receive the token the partner stored. And a client user who keeps
    secrets the partner set may change only the source's name and refresh interval
    (`require_own_secrets`): the partner's credentials may reach every client's data, and the
    source's settings are what hold them to this client's."""
    now = clock.now()
    # Held until the change commits: two changes (or a change and a refresh) take turns.
    source = repo.get_source(db, principal, source_id, lock=True)
    owner = changing(db, principal, source, Capability.BUILD_CONTENT, now)
    fields = data.model_fields_set - {"name"}
    foreign = sorted(fields - _FIELDS_OF.get(source.kind, set()))
    if foreign:
        raise refuse_fields(
            foreign, f"not a setting of a{'n' if source.kind == 'inline' else ''} {source.kind} data source."
        )
    if "query" in fields and data.query is not None:
        if source.kind == "url" and not isinstance(data.query, dict):
            raise _refuse("query", "a url source's query is an object of parameter names and values.")
        if source.kind == "sql" and not isinstance(data.query, str):
            raise _refuse("query", "a sql source's query is the text of one SQL statement.")
    for required in ("url", "format", "method", "engine", "host", "database", "username", "query"):
        if required in fields and getattr(data, required) is None:
            raise _refuse(required, "may not be null.")
    changed: dict[str, Any] = {}
    if data.name is not None and data.name != source.name:
        source.name = changed["name"] = data.name
    if "refresh_interval" in fields and data.refresh_interval != source.refresh_interval:
        owner.require(Capability.SET_REFRESH_RATE, now)
        source.refresh_interval = changed["refresh_interval"] = data.refresh_interval
        schedule(source, now)
    if source.kind == "url":
        refetch = _update_url(db, principal, source, data, fields, guard, vault, changed)
    elif source.kind == "sql":
        refetch = _update_sql(db, principal, source, data, fields, guard, vault, changed)
    else:
        refetch = False
    if refetch and allows(Capability.QUEUE_REFRESH, owner.status(now)):
        source.refresh_requested_at = now
    if data.rows is not None:
        store_rows(db, source, inline_rows(data.rows), now)
        changed["rows"] = len(data.rows)
    if changed:
        source.updated_at = now
        audit_change(db, principal, source, "datasource.updated", now, changed)
    db.flush()
    return source


def _origin(url: str | None) -> tuple[str, str, int | None]:
    parts = urlsplit(sample_url(url or ""))
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(scheme)


def _update_url(
    db: Session,
    principal: Principal,
    source: DataSource,
    data: DataSourceUpdate,
    fields: set[str],
    guard: Guard,
    vault: Vault | None,
    changed: dict[str, Any],
) -> bool:
    """Apply a url source's new settings; True when its rows should be fetched again."""
    config: dict[str, Any] = dict(source.config or {"method": "GET", "headers": [], "query": {}})
    before = dict(config)
    stored_auth = config.get("auth") or None
    kept: list[str] = []  # the secrets whose stored value stays
    fresh: dict[str, Any] = {}  # the secrets sent
    if "headers" in fields:
        headers = data.headers or {}
        for name, value in headers.items():
            if value != MASK:
                fresh.setdefault("headers", {})[name] = value
            elif name in (config.get("headers") or []):
                kept.append(f"headers.{name}")
            else:
                raise _refuse(f"headers.{name}", f'"{MASK}" stands for a stored value, and there is none.')
        config["headers"] = list(headers)
    else:
        kept += [f"headers.{name}" for name in config.get("headers") or []]
    if "auth" in fields:
        auth = data.auth
        if auth is None:
            config["auth"] = None
        elif isinstance(auth, BasicAuth):
            config["auth"] = {"type": "basic", "username": auth.username}
            if auth.password != MASK:
                fresh["auth.password"] = auth.password
            elif stored_auth and stored_auth.get("type") == "basic":
                kept.append("auth.password")
            else:
                raise _refuse("auth.password", f'"{MASK}" stands for a stored value, and there is none.')
        else:
            config["auth"] = {"type": "bearer"}
            if auth.token != MASK:
                fresh["auth.token"] = auth.token
            elif stored_auth and stored_auth.get("type") == "bearer":
                kept.append("auth.token")
            else:
                raise _refuse("auth.token", f'"{MASK}" stands for a stored value, and there is none.')
    elif stored_auth:
        kept.append("auth.password" if stored_auth.get("type") == "basic" else "auth.token")
    new_url = data.url if data.url is not None else source.url
    if new_url != source.url:
        guard.require_allowed(sample_url(new_url or ""))
        if kept and source.secrets and _origin(new_url) != _origin(source.url):
            raise refuse_fields(
                kept,
                "the URL now points to another server: send this secret again "
                "(a stored secret is only ever sent to the server it was given for).",
            )
    for name in ("method", "body", "records"):
        if name in fields:
            config[name] = getattr(data, name)
    if "query" in fields:
        config["query"] = dict(data.query or {})  # type: ignore[arg-type]
    if "paginate" in fields:
        config["paginate"] = data.paginate.model_dump() if data.paginate is not None else None
    new_format = data.format or source.format
    require_own_secrets(
        db,
        principal,
        source,
        kept,
        _url_changes((source.url, source.format, before), (new_url, new_format, config), fresh),
    )
    refetch = False
    if (new_url, new_format) != (source.url, source.format):
        source.url, source.format = new_url, new_format
        changed.update(url=new_url, format=new_format)
        refetch = True
    if {"headers", "auth"} & fields:
        _store_secrets(principal, source, kept, fresh, vault)
        changed["secrets"] = kept + secret_fields(fresh)
        refetch = True
    if config != (source.config or {}):
        # Only the names of what changed: the settings' values may be long, the secrets' never shown.
        changed["settings"] = sorted(k for k in config if config.get(k) != (source.config or {}).get(k))
        source.config = config
        refetch = True
    return refetch


def _update_sql(
    db: Session,
    principal: Principal,
    source: DataSource,
    data: DataSourceUpdate,
    fields: set[str],
    guard: Guard,
    vault: Vault | None,
    changed: dict[str, Any],
) -> bool:
    config: dict[str, Any] = dict(source.config or {})
    before = dict(config)
    for name in ("engine", "host", "port", "database", "username", "query"):
        if name in fields:
            config[name] = getattr(data, name)
    if "host" in fields and data.host is not None:
        _require_allowed_host(guard, data.host)
    kept, fresh = [], {}
    if "password" in fields and data.password is not None and data.password != MASK:
        fresh["password"] = data.password
    elif "password" in fields and data.password is None:
        pass  # no password any more
    elif source.secrets:
        kept.append("password")
    elif "password" in fields:
        raise _refuse("password", f'"{MASK}" stands for a stored value, and there is none.')
    moved = any(config.get(k) != before.get(k) for k in ("engine", "host", "port"))
    if moved and kept:
        raise _refuse(
            "password",
            "the source now connects to another server: send the password again "
            "(a stored password is only ever sent to the server it was given for).",
        )
    require_own_secrets(db, principal, source, kept, _sql_changes(before, config))
    refetch = False
    if "password" in fields:
        _store_secrets(principal, source, kept, fresh, vault)
        changed["secrets"] = kept + secret_fields(fresh)
        refetch = True
    if config != before:
        changed["settings"] = sorted(k for k in config if config.get(k) != before.get(k))
        source.config = config
        refetch = True
    return refetch


def side_of(principal: Principal) -> str:
    """Whose secrets a caller sets: the partner's (a partner user, in the console or signed in as
    the client) or the client's own."""
    return "partner" if principal.is_partner else "client"


def _store_secrets(
    principal: Principal, source: DataSource, kept: list[str], fresh: dict[str, Any], vault: Vault | None
) -> None:
    """Store the kept and fresh secrets, and who set them: the partner when any of them is the
    partner's (the safe side: a client user must then send every one again to repoint it)."""
    source.secrets = _reseal(source.secrets, kept, fresh, vault)
    sides: set[str] = set()
    if kept:
        # Secrets stored without a record of who set them are taken as the partner's.
        sides.add(source.secrets_set_by or "partner")
    if any(fresh.values()):
        sides.add(side_of(principal))
    if source.secrets is None:
        source.secrets_set_by = None
    else:
        source.secrets_set_by = "partner" if "partner" in sides or not sides else "client"


def _url_changes(
    before: tuple[str | None, str | None, dict[str, Any]],
    after: tuple[str | None, str | None, dict[str, Any]],
    fresh: dict[str, Any],
) -> list[str]:
    """The settings of a url source that differ between `before` and `after` (url, format,
    config), and the secrets sent anew: everything it fetches but its name and refresh interval."""
    (old_url, old_format, old), (new_url, new_format, new) = before, after
    names = [name for name, a, b in (("url", old_url, new_url), ("format", old_format, new_format)) if a != b]
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if key == "headers":  # the order the names are listed in changes nothing sent
            a, b = sorted(a or []), sorted(b or [])
        # Otherwise an empty setting is no setting (a form sends no body as null, the API as "").
        if (a or None) != (b or None):
            names.append(key)
    return names + [name for name in secret_fields(fresh) if name not in names]


def _sql_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    keys = ("engine", "host", "port", "database", "username", "query")
    return [key for key in keys if before.get(key) != after.get(key)]


def require_own_secrets(
    db: Session, principal: Principal, source: DataSource, kept: Sequence[str], changes: Sequence[str]
) -> None:
    """Refuse (422 naming the kept secrets, changing nothing) a client user who keeps secrets the
    partner set while changing what the source fetches (`changes`: the settings that differ).

    A partner often builds a source in a client's account with its own credentials, which reach
    every client's data, and holds them to this client's with a placeholder such as
    `{{client.prop.account}}` in the path, query, body, a header or the SQL (clients may not set
    properties for that reason). Keeping those credentials while rewriting the request would read
    another client's data; sending every secret again makes them the client's own, and then
    anything may change. Partner users are not held by this rule."""
    if principal.is_partner or not kept or not changes or not source.secrets:
        return
    if source.secrets_set_by == "client":
        return
    partner = partners_repo.get_partner(db, source.partner_id)
    raise refuse_fields(
        list(kept),
        f"These credentials were set by {partner.name}: to change what this source fetches "
        f"({', '.join(changes)}), send them again.",
    )


def require_same_definition(
    db: Session,
    principal: Principal,
    source: DataSource,
    body: UrlSourceCreate | SqlSourceCreate,
    kept: list[str],
) -> None:
    """`require_own_secrets` for settings not yet stored (the "Test connection" of a source being
    edited, `kept`: the secrets sent as "*****"): a client user may test the partner's
    credentials only with what the source fetches as stored."""
    stored = dict(source.config or {})
    if isinstance(body, UrlSourceCreate):
        config, secrets = url_settings(body)
        fresh = {key: value for key, value in secrets.items() if key != "headers" and value != MASK}
        headers = {name: value for name, value in (secrets.get("headers") or {}).items() if value != MASK}
        if headers:
            fresh["headers"] = headers
        changes = _url_changes((source.url, source.format, stored), (body.url, body.format, config), fresh)
    else:
        changes = _sql_changes(stored, sql_settings(body)[0])
    require_own_secrets(db, principal, source, kept, changes)


def _reseal(sealed: str | None, kept: list[str], fresh: dict[str, Any], vault: Vault | None) -> str | None:
    """The secrets kept from `sealed` together with the fresh ones, sealed again."""
    secrets: dict[str, Any] = {}
    if kept and sealed:
        if vault is None:
            raise RuntimeError("a data source with secrets needs the app's vault")
        try:
            stored = open_secrets(sealed, vault)
        except FetchError as exc:
            # The key that sealed them is gone: the API says so (the stored value is lost), never 500.
            raise refuse_fields(kept, f"{exc} Send this secret again.") from None
        for field in kept:
            value = secret_value(stored, field)
            if field.startswith("headers."):
                secrets.setdefault("headers", {})[field.removeprefix("headers.")] = value
            else:
                secrets[field] = value
    for key, value in fresh.items():
        if key == "headers":
            secrets.setdefault("headers", {}).update(value)
        else:
            secrets[key] = value
    return _seal(secrets, vault)


def queue_refresh(db: Session, clock: Clock, principal: Principal, source_id: int) -> DataSource:
    """Ask the worker to refresh a source now (seed: allowed in Setup too, not when disabled or expired)."""
    now = clock.now()
    source = repo.get_source(db, principal, source_id)
    changing(db, principal, source, Capability.QUEUE_REFRESH, now)
    if source.kind not in FETCHED_KINDS:
        raise NotRefreshable("An inline data source has nothing to fetch; send new `rows` to change it.")
    if source.refresh_requested_at is None or source.lease_owner is not None:
        # While a worker fetches (a queued refresh among them, whose request is still set), the
        # data asked for may have changed after its fetch began: this request is dated now, so
        # the worker, which keeps a request made after it claimed the source, runs it again.
        source.refresh_requested_at = now
    audit_change(db, principal, source, "datasource.refresh_queued", now, {})
    db.flush()
    return source


def delete_source(db: Session, clock: Clock, principal: Principal, source_id: int) -> None:
    now = clock.now()
    source = repo.get_source(db, principal, source_id, lock=True)  # deletions at once take turns
    changing(db, principal, source, Capability.BUILD_CONTENT, now)
    klips = repo.in_use(db, source.id)
    if klips:
        raise InUse(f"The data source is shown by {klips} klip(s); remove them first.", klips=klips)
    audit_change(db, principal, source, "datasource.deleted", now, {"name": source.name})
    db.delete(source)
    db.flush()


@dataclass(frozen=True)
class RefreshOutcome:
    ok: bool
    row_count: int
    error: str | None = None


def source_request(db: Session, source_id: int, vault: Vault) -> SourceRequest:
    """What fetching a source takes: its settings, its secrets opened and its client's values
    (FetchError when the secrets cannot be opened, or the source is gone)."""
    source = repo.get_for_fetch(db, source_id)
    if source is None:
        raise FetchError("The data source was removed.")
    return request_of(source, vault, repo.context_of(db, source))


def refresh_source(db: Session, source: DataSource, now: datetime, fetch: Fetch) -> RefreshOutcome:
    """Store the outcome of fetching one `url` or `sql` source now (`fetch` is given the URL and
    format, empty for a sql source; the worker fetches outside the transaction and hands over
    what it got). Success stores the rows and a new version; a failure keeps
    the last good snapshot and records `last_error` and `refresh_fail_count`.

    The caller decides whether the status allows it (queued: QUEUE_REFRESH / INITIAL_LOAD when
    queued, AUTO_REFRESH when scheduled) and commits.
    """
    if source.kind not in FETCHED_KINDS:
        raise NotRefreshable("Only a url or sql data source can be refreshed.")
    source.refresh_requested_at = None
    schedule(source, now)
    try:
        rows = fetch(source.url or "", source.format or "")
    except FetchError as exc:
        source.last_error = str(exc)
        source.refresh_fail_count += 1
        db.flush()
        return RefreshOutcome(False, source.row_count, str(exc))
    store_rows(db, source, rows, now)
    db.flush()
    return RefreshOutcome(True, len(rows))


@dataclass(frozen=True)
class Rotation:
    rotated: int  # sealed again under the current key
    current: int  # already under it
    unreadable: list[int]  # ids of sources no configured key opens (left as they are)


def rotate_secrets(db: Session, vault: Vault, batch: int = 500) -> Rotation:
    """Seal every stored secret again under the vault's current key, so the old keys can be
    retired. Idempotent: what is already under the current key is left alone. Reads `batch`
    sources at a time (never the whole table in memory); the caller commits."""
    rotated = current = 0
    unreadable: list[int] = []
    after = 0
    while True:
        found = repo.sealed_secrets(db, after, batch)
        if not found:
            break
        for source_id, sealed in found:
            after = source_id
            try:
                if vault.is_current(sealed):
                    vault.open(sealed)  # a damaged text under the current key is still reported
                    current += 1
                    continue
                repo.set_secrets(db, source_id, vault.rotate(sealed))
                rotated += 1
            except VaultError:
                unreadable.append(source_id)
        db.flush()
    return Rotation(rotated, current, unreadable)


def require_same_server(source: DataSource, body: UrlSourceCreate | SqlSourceCreate) -> None:
    """Refuse (422 naming the fields) settings that stand for a stored secret of `source` with
    "*****" while pointing at another server (another origin for a url source; another engine,
    host or port for a sql source), or at another kind of source. The same rule as
    `update_source`, for whatever uses a stored source's secrets with settings not yet stored
    (the "Test connection" of a source being edited): a stored secret is only ever sent to the
    server it was given for."""
    if isinstance(body, UrlSourceCreate):
        kept = [f"headers.{name}" for name, value in body.headers.items() if value == MASK]
        if isinstance(body.auth, BasicAuth) and body.auth.password == MASK:
            kept.append("auth.password")
        elif body.auth is not None and not isinstance(body.auth, BasicAuth) and body.auth.token == MASK:
            kept.append("auth.token")
        moved = source.kind != "url" or _origin(body.url) != _origin(source.url)
    else:
        kept = ["password"] if body.password == MASK else []
        config = source.config or {}
        moved = source.kind != "sql" or (body.engine, body.host, body.port) != (
            config.get("engine"),
            config.get("host"),
            config.get("port"),
        )
    if kept and moved:
        raise refuse_fields(
            kept,
            "these settings point to another server: send this secret again "
            "(a stored secret is only ever sent to the server it was given for).",
        )
