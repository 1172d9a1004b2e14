"""Template use cases (SPEC §15): keep a partner's data sources and dashboards as a template,
deploy it to clients, tell which deployed copies were changed by hand, push a new version.

A template's body is stored as plain JSON: its sources as a data source keeps them (settings in
`config`, secrets sealed with the app's vault, inline rows) under their `ref`, and its dashboards
with their klips naming a source by `ref`. Deploying makes each client's own sources and
dashboards from it and records them in the client's instance; sealed secrets are copied as they
are, so a deployment never opens the vault.

Services flush, never commit.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tenantry import limits
from tenantry.audit import audit, audit_many, emit, emit_many
from tenantry.auth.principal import Principal
from tenantry.clients import repository as clients_repo
from tenantry.clients.schemas import event_client
from tenantry.clock import Clock
from tenantry.dashboards import repository as dashboards_repo
from tenantry.dashboards.service import invalid
from tenantry.datasources import repository as sources_repo
from tenantry.datasources import service as sources_service
from tenantry.datasources.request import open_secrets, seal_secrets
from tenantry.datasources.schemas import MASK, InlineSourceCreate, UrlSourceCreate, masked_config, sample_url
from tenantry.db.dashboard_models import DataSource, Klip
from tenantry.db.models import Client, Dashboard
from tenantry.db.template_models import Template, TemplateInstance
from tenantry.errors import InvalidInput, NotFound, TenantryError
from tenantry.klips import query
from tenantry.klips.query import QueryError
from tenantry.klips.spec import definition_of, stored_definition
from tenantry.outbound import Guard
from tenantry.owners import Owner, check_content_limit, give_back, partner_owner, require_builder, take_one
from tenantry.partners import repository as partners_repo
from tenantry.policy import Capability, Status, allows, counts_against_pool
from tenantry.templates import repository as repo
from tenantry.templates.schemas import (
    Deployed,
    DeployOut,
    InlineSourceIn,
    InstanceOut,
    Skipped,
    SqlSourceIn,
    TemplateIn,
    TemplateKlip,
    TemplateOut,
    UrlSourceIn,
)
from tenantry.vault import Vault, VaultError

DEPLOYED = "template.deployed"
UPDATED = "template.updated"
# The audit actions of a client's copy: made or brought up to date by a deployment, or brought up
# to date by `update_instances` (one record per client, naming the template and the client).
COPY_DEPLOYED = "template.deployed"
COPY_UPDATED = "template.instance_updated"


class Detached(TenantryError):
    code, status, title = "detached", 409, "Detached from its template"


class Drift(TenantryError):
    code, status, title = "drift", 409, "Changed by hand"


def _partner_only(caller: Principal) -> None:
    """Templates are the partner's: a client user never sees one (403 on every template route),
    as the partner's own dashboards are refused to client keys."""
    partner_owner(caller)


# -- reading and writing templates -------------------------------------------------------------


def template_out(template: Template) -> TemplateOut:
    """A template as answers show it: each source's secrets as "*****", never its sealed text."""
    body = template.body
    sources = []
    for stored in body.get("datasources", []):
        shown = {key: value for key, value in stored.items() if key not in ("secrets", "config", "rows")}
        shown["config"] = masked_config(_as_source(stored))
        if stored["kind"] == "inline":
            shown["rows"] = stored.get("rows") or []
        sources.append(shown)
    return TemplateOut(
        id=template.id,
        name=template.name,
        description=template.description,
        version=template.version,
        datasources=sources,
        dashboards=body.get("dashboards", []),
        created_at=template.created_at,
        updated_at=template.updated_at,
    )


def _as_source(stored: dict[str, Any]) -> DataSource:
    """An unsaved data source holding a template source's settings (for `masked_config`, and for
    `require_same_server` to tell which server its secrets were given for)."""
    return DataSource(
        kind=stored["kind"], url=stored.get("url"), config=stored.get("config"), secrets=stored.get("secrets")
    )


def templates_of(db: Session, caller: Principal, limit: int, offset: int) -> tuple[list[TemplateOut], int]:
    """A page of the partner's templates, oldest first, and how many there are."""
    _partner_only(caller)
    page = repo.list_templates(db, caller.partner_id, limit, offset)
    return [template_out(t) for t in page], repo.count_templates(db, caller.partner_id)


def readable_template(db: Session, caller: Principal, template_id: int, *, lock: bool = False) -> Template:
    _partner_only(caller)
    return repo.get_template(db, caller, template_id, lock=lock)


def _kept_secrets(previous: dict[str, Any] | None, vault: Vault) -> dict[str, Any]:
    return open_secrets(previous.get("secrets"), vault) if previous else {}


def _stored_source(
    index: int,
    data: UrlSourceIn | InlineSourceIn | SqlSourceIn,
    guard: Guard,
    vault: Vault,
    previous: dict[str, Any] | None,
) -> dict[str, Any]:
    """A template source as the body keeps it. A secret sent as "*****" keeps the value the
    previous version of the same `ref` held; a new source must send its secrets."""
    where = f"datasources[{index}]."
    stored: dict[str, Any] = {"ref": data.ref, "name": data.name, "kind": data.kind}
    if isinstance(data, InlineSourceCreate):
        try:
            stored["rows"] = sources_service.inline_rows(data.rows)
        except InvalidInput as exc:
            raise invalid(where + "rows", exc.detail) from None
        return stored
    if isinstance(data, UrlSourceCreate):
        problem = guard.url_problem(sample_url(data.url))
        if problem is not None:
            raise invalid(where + "url", problem)
        config, secrets = sources_service.url_settings(data)
        stored |= {"url": data.url, "format": data.format}
    else:
        problem = guard.url_problem(f"http://{data.host if ':' not in data.host else f'[{data.host}]'}/")
        if problem is not None:
            raise invalid(where + "host", problem)
        config, secrets = sources_service.sql_settings(data)
    if previous is not None:
        _require_same_server(where, data, previous)
    kept = None
    for field in sources_service.secret_fields(secrets):
        if sources_service.secret_value(secrets, field) != MASK:
            continue
        if kept is None:
            kept = _kept_secrets(previous if previous and previous["kind"] == data.kind else None, vault)
        value = sources_service.secret_value(kept, field)
        if value is None:
            raise invalid(where + field, f'"{MASK}" stands for a stored secret; send the value itself.')
        if field.startswith("headers."):
            secrets["headers"][field.removeprefix("headers.")] = value
        else:
            secrets[field] = value
    stored |= {
        "refresh_interval": data.refresh_interval,
        "config": config,
        "secrets": seal_secrets(secrets, vault),
    }
    return stored


def _require_same_server(where: str, data: UrlSourceIn | SqlSourceIn, previous: dict[str, Any]) -> None:
    """The data sources' rule (`sources_service.require_same_server`): a secret sent as "*****"
    keeps the previous version's only while the source still points at the server it was given
    for (same origin for a url source; same engine, host and port for a sql one). Otherwise 422
    naming each such field of this source, and nothing is stored."""
    try:
        sources_service.require_same_server(_as_source(previous), data)
    except InvalidInput as exc:
        refused = exc.extensions["errors"]  # one per field, each {"loc": ["body", ...], "msg", "type"}
        fields = [where + ".".join(str(part) for part in error["loc"][1:]) for error in refused]
        errors = [{**error, "loc": ["body", *_parts(where), *error["loc"][1:]]} for error in refused]
        raise InvalidInput(
            f"{', '.join(fields)}: {refused[0]['msg']}", field=fields[0], errors=errors
        ) from None


def _parts(where: str) -> list[str]:
    """`datasources[1].` as a location: ["datasources", "1"] (as `invalid` names it)."""
    return [part for part in re.split(r"[.\[\]]+", where) if part]


def _check_fits(source: UrlSourceIn | InlineSourceIn | SqlSourceIn, klip: TemplateKlip, where: str) -> None:
    """A klip on inline rows must fit their columns, as on a dashboard; a fetched source's columns
    are known only once each client's copy has fetched, so its klips are checked by shape alone."""
    if not isinstance(source, InlineSourceCreate):
        return
    try:
        query.check(klip, query.columns_of(source.rows))
    except QueryError as exc:
        raise invalid(where + exc.field, exc.message, "klip_does_not_fit_source") from None


def _body_of(
    data: TemplateIn, guard: Guard, vault: Vault, previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The body to store, once every `ref` is known: 422 naming the field otherwise."""
    before = {s["ref"]: s for s in (previous or {}).get("datasources", [])}
    refs: dict[str, int] = {}
    for index, source in enumerate(data.datasources):
        if source.ref in refs:
            raise invalid(f"datasources[{index}].ref", f"ref {source.ref!r} is used twice")
        refs[source.ref] = index
    dashboards = []
    for i, dashboard in enumerate(data.dashboards):
        klips = []
        for j, klip in enumerate(dashboard.klips):
            where = f"dashboards[{i}].klips[{j}].datasource_ref"
            if klip.kind == "text":
                if klip.datasource_ref is not None:
                    raise invalid(where, "a text klip has no source")
            elif klip.datasource_ref is None:
                raise invalid(where, f"a {klip.kind} klip needs a datasource_ref")
            elif klip.datasource_ref not in refs:
                raise invalid(where, f"no datasource with ref {klip.datasource_ref!r} in this template")
            else:
                _check_fits(data.datasources[refs[klip.datasource_ref]], klip, f"dashboards[{i}].klips[{j}].")
            klips.append(
                {
                    "title": klip.title,
                    "kind": klip.kind,
                    "datasource_ref": klip.datasource_ref,
                    "size": {"w": klip.size.w, "h": klip.size.h},
                    "definition": definition_of(klip),
                }
            )
        filters = [f.model_dump(mode="json", exclude_none=True) for f in dashboard.filters]
        dashboards.append({"name": dashboard.name, "filters": filters, "klips": klips})
    sources = [
        _stored_source(index, source, guard, vault, before.get(source.ref))
        for index, source in enumerate(data.datasources)
    ]
    return {"datasources": sources, "dashboards": dashboards}


def create_template(
    db: Session, clock: Clock, caller: Principal, data: TemplateIn, *, guard: Guard, vault: Vault
) -> Template:
    _partner_only(caller)
    require_builder(caller)
    now = clock.now()
    template = Template(
        partner_id=caller.partner_id,
        name=data.name,
        description=data.description,
        version=1,
        body=_body_of(data, guard, vault),
        created_at=now,
        updated_at=now,
    )
    db.add(template)
    db.flush()
    _audit(db, caller, template, "template.created", now, {"name": data.name, "version": 1})
    return template


def replace_template(
    db: Session,
    clock: Clock,
    caller: Principal,
    template_id: int,
    data: TemplateIn,
    *,
    guard: Guard,
    vault: Vault,
) -> Template:
    """Store the body as the template's next version (instances keep theirs until updated)."""
    template = readable_template(db, caller, template_id, lock=True)
    require_builder(caller)
    now = clock.now()
    body = _body_of(data, guard, vault, template.body)
    template.name, template.description, template.body = data.name, data.description, body
    template.version += 1
    template.updated_at = now
    _audit(db, caller, template, "template.replaced", now, {"version": template.version})
    db.flush()
    return template


def delete_template(db: Session, clock: Clock, caller: Principal, template_id: int) -> None:
    """Remove a template; what it deployed stays with the clients (their instances are forgotten)."""
    template = readable_template(db, caller, template_id, lock=True)
    require_builder(caller)
    _audit(db, caller, template, "template.deleted", clock.now(), {"name": template.name})
    db.flush()
    repo.delete_template(db, template.id)
    db.expunge(template)


def _audit(
    db: Session, caller: Principal, template: Template, action: str, now: datetime, details: dict[str, Any]
) -> None:
    audit(
        db,
        partner_id=template.partner_id,
        actor=caller.actor,
        action=action,
        target=f"template:{template.id}",
        at=now,
        details=details,
    )


def capture_dashboard(db: Session, clock: Clock, caller: Principal, dashboard_id: int) -> Template:
    """A new template holding one dashboard (the partner's or a client's), its klips and its
    sources as they are defined now (an inline source with its rows, a fetched one without)."""
    _partner_only(caller)
    require_builder(caller)
    now = clock.now()
    dashboard = dashboards_repo.get_dashboard(db, caller, dashboard_id)
    klips = dashboards_repo.klips_of(db, [dashboard.id])[dashboard.id]
    sources = repo.sources_by_id(db, sorted({k.datasource_id for k in klips if k.datasource_id is not None}))
    refs = {source_id: f"source_{n + 1}" for n, source_id in enumerate(sorted(sources))}
    stored_sources = []
    for source_id, source in sorted(sources.items()):
        stored: dict[str, Any] = {"ref": refs[source_id], "name": source.name, "kind": source.kind}
        if source.kind == "inline":
            stored["rows"] = source.rows or []
        else:
            if source.kind == "url":
                stored |= {"url": source.url, "format": source.format}
            # The sealed secrets are copied as they are: the same vault opens them.
            stored |= {
                "refresh_interval": source.refresh_interval,
                "config": source.config,
                "secrets": source.secrets,
            }
        stored_sources.append(stored)
    body = {
        "datasources": stored_sources,
        "dashboards": [
            {
                "name": dashboard.name,
                "filters": dashboard.filters or [],
                "klips": [_template_klip(k, refs) for k in klips],
            }
        ],
    }
    template = Template(
        partner_id=caller.partner_id,
        name=dashboard.name,
        description=None,
        version=1,
        body=body,
        created_at=now,
        updated_at=now,
    )
    db.add(template)
    db.flush()
    _audit(db, caller, template, "template.created", now, {"from_dashboard": dashboard.id, "version": 1})
    return template


def _template_klip(klip: Klip, refs: dict[int, str]) -> dict[str, Any]:
    return {
        "title": klip.title,
        "kind": klip.kind,
        "datasource_ref": refs.get(klip.datasource_id) if klip.datasource_id is not None else None,
        "size": {"w": klip.size_w, "h": klip.size_h},
        "definition": stored_definition(klip.definition),
    }


# -- deploying -----------------------------------------------------------------------------------


def deploy(
    db: Session,
    clock: Clock,
    caller: Principal,
    template_id: int,
    client_ids: list[int],
    *,
    dry_run: bool = False,
    vault: Vault,
) -> DeployOut:
    """Deploy the template's current version to each client, each all or nothing on its own: a
    client already holding an instance has it updated in place, unless that copy was changed by
    hand (skipped `drift`, as update-instances without `force`). A dry run does the same work and
    rolls it back, so its answer is the real one.

    The partner lock is taken once, before anything is read: pool and content checks take it
    too, so two deployments to one client wait for each other and the second finds the first's
    instance. The clients getting their first copy with room for all of it are written together
    (`_first_copies`); every other client goes on its own in a savepoint, where what refuses it
    is found and said.

    `vault` is the app's: the template's sealed secrets are copied as they are, which holds only
    while one vault seals both (the caller passes the same one that sealed the template)."""
    _partner_only(caller)
    require_builder(caller)
    template = repo.get_template(db, caller, template_id)
    now = clock.now()
    order = list(dict.fromkeys(client_ids))  # each client once, in the order given
    partners_repo.lock_partner(db, caller.partner_id)
    batched = _first_copies(db, now, template, caller, order, dry_run=dry_run)
    out = DeployOut()
    for client_id in order:
        if client_id in batched:
            out.deployed.append(batched[client_id])
            continue
        savepoint = db.begin_nested()
        try:
            client = clients_repo.get_client(db, caller, client_id)
            owner = Owner(caller.partner_id, client)
            instance = repo.instance_of(db, template.id, client.id)
            if instance is None:
                instance = _new_instance(db, now, template, owner)
            elif instance.detached:
                raise Detached("This client's copy is detached from the template; it is not updated.")
            elif fingerprint(db, instance.mapping) != instance.fingerprint:
                # Deploying again is an update: a copy changed by hand is overwritten only by
                # update-instances with `force`, as its answer here says.
                raise Drift(
                    "This client's copy was changed by hand; update-instances with force overwrites it."
                )
            else:
                _apply(db, now, template, owner, instance)
            deployed = _deployed(instance)
            if not dry_run:
                _emit(db, template, instance, DEPLOYED, now)
                audit(db, **_copy_audit(caller.actor, template, deployed, COPY_DEPLOYED, now))
        except TenantryError as exc:
            savepoint.rollback()
            out.skipped.append(Skipped(client_id=client_id, code=exc.code, detail=exc.detail))
            continue
        except IntegrityError:
            # Only if the partner lock was bypassed: the unique (template, client) pair still
            # keeps one instance, and this client is reported rather than failing the others.
            savepoint.rollback()
            out.skipped.append(
                Skipped(
                    client_id=client_id,
                    code="conflict",
                    detail="Another deployment to this client ran at once.",
                )
            )
            continue
        if dry_run:
            savepoint.rollback()
        else:
            savepoint.commit()
        out.deployed.append(deployed)
    db.flush()
    return out


def deploy_request(
    db: Session,
    clock: Clock,
    caller: Principal,
    template_id: int,
    client_ids: list[int] | None,
    status: str | None,
    q: str | None,
    *,
    dry_run: bool,
    vault: Vault,
) -> DeployOut:
    """`POST /templates/{id}/deploy`: the clients named, or those the filter finds."""
    _partner_only(caller)
    repo.get_template(db, caller, template_id)
    if client_ids is None:
        if status is None and q is None:
            raise invalid("client_ids", "name the clients, or give a filter")
        client_ids = repo.matching_clients(db, caller.partner_id, status, q, clock.now())
    return deploy(db, clock, caller, template_id, client_ids, dry_run=dry_run, vault=vault)


def _deployed(instance: TemplateInstance) -> Deployed:
    mapping = instance.mapping
    return Deployed(
        client_id=instance.client_id,
        dashboard_ids=list(mapping["dashboards"]),
        datasource_ids=list(mapping["datasources"].values()),
    )


def _copy_audit(
    actor: str, template: Template, deployed: Deployed, action: str, now: datetime
) -> dict[str, Any]:
    """The audit record of one client's copy of the template (`audit`'s keyword arguments)."""
    return {
        "partner_id": template.partner_id,
        "client_id": deployed.client_id,
        "actor": actor,
        "action": action,
        "target": f"template:{template.id}",
        "at": now,
        "details": {
            "version": template.version,
            "dashboard_ids": deployed.dashboard_ids,
            "datasource_ids": deployed.datasource_ids,
        },
    }


def _emit(db: Session, template: Template, instance: TemplateInstance, type_: str, now: datetime) -> None:
    deployed = _deployed(instance)
    emit(
        db,
        partner_id=template.partner_id,
        client_id=instance.client_id,
        type=type_,
        at=now,
        data={
            "client": event_client(db.get(Client, instance.client_id), now),
            "template_id": template.id,
            "version": instance.version,
            "client_id": instance.client_id,
            "dashboard_ids": deployed.dashboard_ids,
            "datasource_ids": deployed.datasource_ids,
        },
    )


def _new_source(db: Session, now: datetime, owner: Owner, stored: dict[str, Any]) -> DataSource:
    check_content_limit(db, owner, DataSource, limits.DATA_SOURCES_PER_OWNER)
    source = _source_of(now, owner, stored)
    db.add(source)
    if stored["kind"] == "inline":
        sources_service.store_rows(db, source, stored.get("rows") or [], now)
    db.flush()
    return source


def _source_of(now: datetime, owner: Owner, stored: dict[str, Any]) -> DataSource:
    """A client's new source as the template defines it (not yet added, its rows not yet stored)."""
    source = DataSource(
        partner_id=owner.partner_id,
        client_id=owner.client_id,
        name=stored["name"],
        kind=stored["kind"],
        rows=[],
        row_count=0,
        version="",
        refresh_fail_count=0,
        created_at=now,
        updated_at=now,
    )
    _define_source(source, stored, owner, now)
    return source


def _define_source(source: DataSource, stored: dict[str, Any], owner: Owner, now: datetime) -> bool:
    """Give a client's source the template's definition (the rows it fetched are kept); whether
    what it fetches changed, so it is fetched again. An inline source's rows are part of its
    definition: `_apply` gives them."""
    source.name = stored["name"]
    if stored["kind"] == "inline":
        return False
    before = (source.url, source.config, source.secrets)
    source.url, source.format = stored.get("url"), stored.get("format")
    source.config, source.secrets = stored.get("config"), stored.get("secrets")
    # A template is the partner's: its secrets are too, so a client user who keeps them may not
    # change what the source fetches (`sources_service.require_own_secrets`).
    source.secrets_set_by = "partner" if source.secrets else None
    source.refresh_interval = stored.get("refresh_interval")
    sources_service.schedule(source, now)
    changed = before != (source.url, source.config, source.secrets)
    if changed and allows(Capability.INITIAL_LOAD, owner.status(now)):
        # Loaded once by a queued refresh, where the status allows it (as a new source is).
        source.refresh_requested_at = now
    return changed


def _klip_rows(
    dashboard_id: int, klips: list[dict[str, Any]], sources: dict[str, int]
) -> list[dict[str, Any]]:
    return [
        {
            "dashboard_id": dashboard_id,
            "position": position,
            "title": klip["title"],
            "kind": klip["kind"],
            "datasource_id": sources[klip["datasource_ref"]] if klip["datasource_ref"] else None,
            "size_w": klip["size"]["w"],
            "size_h": klip["size"]["h"],
            # A template kept before definitions left out `datasource_ref` still holds it there.
            "definition": stored_definition(klip["definition"]),
        }
        for position, klip in enumerate(klips)
    ]


def _klips_for(dashboard_id: int, klips: list[dict[str, Any]], sources: dict[str, int]) -> list[Klip]:
    return [Klip(**row) for row in _klip_rows(dashboard_id, klips, sources)]


def _new_dashboard(
    db: Session, now: datetime, owner: Owner, stored: dict[str, Any], sources: dict[str, int]
) -> Dashboard:
    check_content_limit(db, owner, Dashboard, limits.DASHBOARDS_PER_OWNER)
    # In Trial and Active the client's allocation must hold it (`allocation_exceeded`).
    take_one(db, owner, "dashboards")
    dashboard = _dashboard_of(now, owner, stored)
    db.add(dashboard)
    db.flush()
    db.add_all(_klips_for(dashboard.id, stored["klips"], sources))
    return dashboard


def _dashboard_of(now: datetime, owner: Owner, stored: dict[str, Any]) -> Dashboard:
    return Dashboard(
        partner_id=owner.partner_id,
        client_id=owner.client_id,
        name=stored["name"],
        filters=stored["filters"],
        created_at=now,
        updated_at=now,
    )


def _has_room(client: Client, sources_held: int, dashboards_held: int, body: dict[str, Any]) -> bool:
    """Whether a client's first copy passes every check `_new_instance` makes of it: each new
    source and dashboard under its owner's cap, and in Trial and Active each dashboard within the
    client's allocation."""
    adding_sources, adding_dashboards = len(body["datasources"]), len(body["dashboards"])
    if adding_sources and sources_held + adding_sources > limits.DATA_SOURCES_PER_OWNER.maximum:
        return False
    if not adding_dashboards:
        return True
    if dashboards_held + adding_dashboards > limits.DASHBOARDS_PER_OWNER.maximum:
        return False
    if counts_against_pool(Status(client.status)):
        allocated = clients_repo.allocation_of(client)["dashboards"]
        return clients_repo.usage_of(client)["dashboards"] + adding_dashboards <= allocated
    return True


def _first_copies(
    db: Session, now: datetime, template: Template, caller: Principal, client_ids: list[int], *, dry_run: bool
) -> dict[int, Deployed]:
    """Deploy to the clients getting their first copy that have room for all of it, together:
    each one's room is computed from one read of them all (under the partner lock the caller
    holds), and their sources, dashboards, klips and instances are each written in one batch.
    The others (another partner's, already holding a copy, or without room) are not touched
    here: one by one, their refusal is found and said. If the batch fails on a unique key (only
    when the partner lock was bypassed), none of it is kept and every client goes one by one."""
    partner_id = caller.partner_id
    clients = repo.clients_by_id(db, partner_id, client_ids)
    held = repo.instances_by_client(db, template.id, list(clients))
    candidates = [clients[i] for i in client_ids if i in clients and i not in held]
    if not candidates:
        return {}
    body = template.body
    ids = [c.id for c in candidates]
    sources_held = repo.content_counts(db, DataSource, partner_id, ids)
    dashboards_held = repo.content_counts(db, Dashboard, partner_id, ids)
    fresh = [
        c for c in candidates if _has_room(c, sources_held.get(c.id, 0), dashboards_held.get(c.id, 0), body)
    ]
    if not fresh:
        return {}
    savepoint = db.begin_nested()
    try:
        deployed = _write_first_copies(
            db, now, template, partner_id, fresh, actor=None if dry_run else caller.actor
        )
    except IntegrityError:
        savepoint.rollback()
        return {}
    if dry_run:
        savepoint.rollback()
    else:
        savepoint.commit()
    return deployed


def _write_first_copies(
    db: Session,
    now: datetime,
    template: Template,
    partner_id: int,
    clients: list[Client],
    *,
    actor: str | None,
) -> dict[int, Deployed]:
    """Write the first copies; with an `actor` (not a dry run) also each one's event and audit
    record, in one batch each."""
    body = template.body
    owners = [Owner(partner_id, client) for client in clients]
    sources = [
        {stored["ref"]: _source_of(now, owner, stored) for stored in body["datasources"]} for owner in owners
    ]
    inline = {
        stored["ref"]: stored.get("rows") or []
        for stored in body["datasources"]
        if stored["kind"] == "inline"
    }
    for made in sources:
        for ref, rows in inline.items():
            sources_service.snapshot(made[ref], rows, now)
    dashboards = [[_dashboard_of(now, owner, stored) for stored in body["dashboards"]] for owner in owners]
    db.add_all([source for made in sources for source in made.values()])
    db.add_all([dashboard for made in dashboards for dashboard in made])
    for client in clients:
        client.usage_dashboards += len(body["dashboards"])
    db.flush()
    sources_repo.insert_pages(db, [(made[ref].id, rows) for made in sources for ref, rows in inline.items()])
    source_ids = [{ref: source.id for ref, source in made.items()} for made in sources]
    klips = [
        row
        for refs, made in zip(source_ids, dashboards, strict=True)
        for dashboard, stored in zip(made, body["dashboards"], strict=True)
        for row in _klip_rows(dashboard.id, stored["klips"], refs)
    ]
    if klips:
        db.execute(insert(Klip), klips)
    mappings = [
        {"dashboards": [d.id for d in made], "datasources": refs}
        for made, refs in zip(dashboards, source_ids, strict=True)
    ]
    # Every first copy of one version holds the same content (the fingerprint names sources by
    # ref, not id), so one fingerprint is every copy's.
    printed = fingerprint(db, mappings[0])
    db.add_all(
        [
            TemplateInstance(
                template_id=template.id,
                client_id=client.id,
                version=template.version,
                mapping=mapping,
                fingerprint=printed,
                detached=False,
                created_at=now,
                updated_at=now,
            )
            for client, mapping in zip(clients, mappings, strict=True)
        ]
    )
    db.flush()
    deployed = {
        client.id: Deployed(
            client_id=client.id,
            dashboard_ids=[d.id for d in made],
            datasource_ids=list(refs.values()),
        )
        for client, made, refs in zip(clients, dashboards, source_ids, strict=True)
    }
    if actor is not None:
        emit_many(
            db,
            [
                {
                    "partner_id": template.partner_id,
                    "client_id": d.client_id,
                    "type": DEPLOYED,
                    "at": now,
                    "data": {
                        "client": event_client(db.get(Client, d.client_id), now),
                        "template_id": template.id,
                        "version": template.version,
                        "client_id": d.client_id,
                        "dashboard_ids": d.dashboard_ids,
                        "datasource_ids": d.datasource_ids,
                    },
                }
                for d in deployed.values()
            ],
        )
        audit_many(db, [_copy_audit(actor, template, d, COPY_DEPLOYED, now) for d in deployed.values()])
    return deployed


def _new_instance(db: Session, now: datetime, template: Template, owner: Owner) -> TemplateInstance:
    assert owner.client_id is not None
    body = template.body
    sources = {s["ref"]: _new_source(db, now, owner, s).id for s in body["datasources"]}
    dashboards = [_new_dashboard(db, now, owner, d, sources).id for d in body["dashboards"]]
    db.flush()
    mapping = {"dashboards": dashboards, "datasources": sources}
    instance = TemplateInstance(
        template_id=template.id,
        client_id=owner.client_id,
        version=template.version,
        mapping=mapping,
        fingerprint=fingerprint(db, mapping),
        detached=False,
        created_at=now,
        updated_at=now,
    )
    db.add(instance)
    db.flush()
    return instance


def _apply(db: Session, now: datetime, template: Template, owner: Owner, instance: TemplateInstance) -> None:
    """Bring a client's copy to the template's current version: klips, layout, filters and source
    definitions (an inline source's rows with it); each source keeps the rows it has fetched. A
    source the template no longer
    holds stays with the client (their own klips may show it) but leaves the instance."""
    body = template.body
    mapping = instance.mapping
    held = repo.sources_by_id(db, list(mapping["datasources"].values()))
    sources: dict[str, int] = {}
    for stored in body["datasources"]:
        source = held.get(mapping["datasources"].get(stored["ref"], -1))
        if source is None or source.kind != stored["kind"]:
            source = _new_source(db, now, owner, stored)
        else:
            if _define_source(source, stored, owner, now):
                source.updated_at = now
            if stored["kind"] == "inline" and source.rows != (rows := stored.get("rows") or []):
                sources_service.store_rows(db, source, rows, now)
                source.updated_at = now
        sources[stored["ref"]] = source.id
    had = repo.dashboards_by_id(db, list(mapping["dashboards"]))
    dashboards: list[int] = []
    for index, stored in enumerate(body["dashboards"]):
        old_id = mapping["dashboards"][index] if index < len(mapping["dashboards"]) else None
        dashboard = had.get(old_id) if old_id is not None else None
        if dashboard is None:
            dashboard = _new_dashboard(db, now, owner, stored, sources)
        else:
            dashboard.name, dashboard.filters, dashboard.updated_at = stored["name"], stored["filters"], now
            dashboards_repo.replace_klips(
                db, dashboard.id, _klips_for(dashboard.id, stored["klips"], sources)
            )
        dashboards.append(dashboard.id)
    # Dashboards the new version no longer has go, and give back their place and live links.
    for gone in set(had) - set(dashboards):
        give_back(db, owner, "published_links", dashboards_repo.live_link_count(db, gone))
        give_back(db, owner, "dashboards")
        dashboards_repo.delete_dashboard(db, gone)
    db.flush()
    mapping = {"dashboards": dashboards, "datasources": sources}
    instance.mapping = mapping
    instance.version = template.version
    instance.fingerprint = fingerprint(db, mapping)
    instance.updated_at = now
    db.flush()


def fingerprint(db: Session, mapping: dict[str, Any]) -> str:
    """A hash of an instance's content as the client holds it now: dashboards, filters, klips
    (with their sources by ref) and source definitions. Rows, refreshes and timestamps are left
    out: fetching data is not an edit. A deleted dashboard or source changes it too."""
    return fingerprints(db, [mapping])[0]


def fingerprints(db: Session, mappings: Sequence[dict[str, Any]]) -> list[str]:
    """Each instance's `fingerprint`, from one read of sources, dashboards and klips for them all."""
    sources: dict[int, DataSource] = {}
    dashboards: dict[int, Dashboard] = {}
    klips: dict[int, list[Klip]] = {}
    source_ids = [i for mapping in mappings for i in mapping["datasources"].values()]
    dashboard_ids = [i for mapping in mappings for i in mapping["dashboards"]]
    for start in range(0, len(source_ids), 1000):
        sources.update(repo.sources_by_id(db, source_ids[start : start + 1000]))
    for start in range(0, len(dashboard_ids), 1000):
        found = repo.dashboards_by_id(db, dashboard_ids[start : start + 1000])
        dashboards.update(found)
        klips.update(repo.klips_of(db, list(found)))
    return [_fingerprint(mapping, sources, dashboards, klips) for mapping in mappings]


def _fingerprint(
    mapping: dict[str, Any],
    sources: dict[int, DataSource],
    dashboards: dict[int, Dashboard],
    klips: dict[int, list[Klip]],
) -> str:
    refs = {source_id: ref for ref, source_id in mapping["datasources"].items()}
    content: dict[str, Any] = {"datasources": {}, "dashboards": []}
    for source_id, ref in sorted(refs.items(), key=lambda item: item[1]):
        source = sources.get(source_id)
        content["datasources"][ref] = (
            None
            if source is None
            else [
                source.name,
                source.kind,
                source.url,
                source.format,
                source.config,
                source.secrets,
                source.refresh_interval,
            ]
        )
    for dashboard_id in mapping["dashboards"]:
        dashboard = dashboards.get(dashboard_id)
        if dashboard is None:
            content["dashboards"].append(None)
            continue
        content["dashboards"].append(
            [
                dashboard.name,
                dashboard.filters,
                [
                    [
                        k.title,
                        k.kind,
                        refs.get(k.datasource_id, k.datasource_id),
                        k.size_w,
                        k.size_h,
                        k.definition,
                    ]
                    for k in klips[dashboard_id]
                ],
            ]
        )
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# -- instances -------------------------------------------------------------------------------------


def instances(db: Session, caller: Principal, template_id: int) -> list[InstanceOut]:
    template = readable_template(db, caller, template_id)
    held = repo.instances_of(db, template.id)
    now_printed = fingerprints(db, [i.mapping for i in held])
    return [
        InstanceOut(
            client_id=i.client_id, version=i.version, drift=printed != i.fingerprint, detached=i.detached
        )
        for i, printed in zip(held, now_printed, strict=True)
    ]


def update_instances(
    db: Session,
    clock: Clock,
    caller: Principal,
    template_id: int,
    client_ids: list[int] | None,
    *,
    force: bool = False,
) -> DeployOut:
    """Push the current version to the instances (those of these clients): a detached one never,
    one changed by hand only with `force` (skipped `drift` otherwise). Each client on its own."""
    template = readable_template(db, caller, template_id)
    require_builder(caller)
    now = clock.now()
    out = DeployOut()
    partners_repo.lock_partner(db, caller.partner_id)
    for instance in repo.instances_of(db, template.id, client_ids):
        client_id = instance.client_id
        savepoint = db.begin_nested()
        try:
            if instance.detached:
                raise Detached("This client's copy is detached from the template.")
            if not force and fingerprint(db, instance.mapping) != instance.fingerprint:
                raise Drift("This client's copy was changed by hand; send force to overwrite it.")
            client = db.get(Client, client_id)
            assert client is not None  # the instance goes with its client
            _apply(db, now, template, Owner(caller.partner_id, client), instance)
            _emit(db, template, instance, UPDATED, now)
            deployed = _deployed(instance)
            audit(db, **_copy_audit(caller.actor, template, deployed, COPY_UPDATED, now))
        except TenantryError as exc:
            savepoint.rollback()
            out.skipped.append(Skipped(client_id=client_id, code=exc.code, detail=exc.detail))
            continue
        savepoint.commit()
        out.deployed.append(deployed)
    db.flush()
    return out


def detach(db: Session, clock: Clock, caller: Principal, dashboard_id: int) -> InstanceOut:
    """Cut loose the instance this dashboard came from: it is never updated again."""
    _partner_only(caller)
    require_builder(caller)
    dashboard = dashboards_repo.get_dashboard(db, caller, dashboard_id)
    found = _instance_holding(db, dashboard)
    if found is None:
        raise NotFound(f"Dashboard {dashboard_id} was not deployed from a template.")
    if not found.detached:
        found.detached = True
        found.updated_at = clock.now()
        audit(
            db,
            partner_id=dashboard.partner_id,
            client_id=dashboard.client_id,
            actor=caller.actor,
            action="template.detached",
            target=f"dashboard:{dashboard.id}",
            at=clock.now(),
            details={"template_id": found.template_id},
        )
        db.flush()
    return InstanceOut(
        client_id=found.client_id,
        version=found.version,
        drift=fingerprint(db, found.mapping) != found.fingerprint,
        detached=True,
    )


def _instance_holding(db: Session, dashboard: Dashboard) -> TemplateInstance | None:
    if dashboard.client_id is None:
        return None
    held: Sequence[TemplateInstance] = repo.client_instances(db, dashboard.client_id)
    return next((i for i in held if dashboard.id in i.mapping["dashboards"]), None)


def instances_in_step(db: Session) -> list[TemplateInstance]:
    """The instances nobody has changed by hand (their content still has the fingerprint kept
    when they were last deployed or updated)."""
    held = repo.attached_instances(db)
    now_printed = fingerprints(db, [i.mapping for i in held])
    return [i for i, printed in zip(held, now_printed, strict=True) if printed == i.fingerprint]


def fingerprint_again(db: Session, instances: Sequence[TemplateInstance]) -> None:
    """Keep these instances' fingerprints of their content as it is now. For a change that is not
    an edit by hand: `tenantry secrets rotate` seals the copies' secrets again (a new nonce, the
    same secret), which changes what the fingerprint reads; the instances in step before it
    (`instances_in_step`) stay in step after it."""
    for instance, printed in zip(instances, fingerprints(db, [i.mapping for i in instances]), strict=True):
        instance.fingerprint = printed
    db.flush()


def rotate_template_secrets(db: Session, vault: Vault, batch: int = 200) -> sources_service.Rotation:
    """Seal the secrets each template keeps for its url and sql sources again under the vault's
    current key, as `datasources.service.rotate_secrets` does for data sources: deployments copy
    them as they are, so they must open once the old keys are retired. Counts templates;
    `unreadable` names those with a secret no configured key opens (left as they are). Reads
    `batch` templates at a time, each locked; the caller commits."""
    rotated = current = 0
    unreadable: list[int] = []
    after = 0
    while True:
        found = db.scalars(
            select(Template).where(Template.id > after).order_by(Template.id).limit(batch).with_for_update()
        ).all()
        if not found:
            break
        for template in found:
            after = template.id
            sources = [dict(source) for source in template.body.get("datasources", [])]
            changed = broken = False
            for source in sources:
                sealed = source.get("secrets")
                if not isinstance(sealed, str):
                    continue
                try:
                    resealed = vault.rotate(sealed)  # a damaged text under the current key is refused too
                except VaultError:
                    broken = True
                    continue
                if resealed != sealed:
                    source["secrets"], changed = resealed, True
            if broken:
                unreadable.append(template.id)
            elif changed:
                template.body = {**template.body, "datasources": sources}
                rotated += 1
            else:
                current += 1
        db.flush()
    return sources_service.Rotation(rotated, current, unreadable)
