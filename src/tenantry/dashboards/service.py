"""Dashboard use cases: create, change, delete, share with client users; add, change, remove,
lay out and preview klips; set a dashboard's filters.

A client's dashboards count against its allocation in Trial and Active; the partner's own count
against the plan's pool. Deleting a dashboard gives back the dashboard and its live links.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from tenantry import limits
from tenantry.auth.principal import Principal
from tenantry.charts import svg
from tenantry.clock import Clock
from tenantry.dashboards import repository as repo
from tenantry.dashboards.live import LiveCache
from tenantry.dashboards.schemas import (
    DashboardCreate,
    DashboardFilter,
    DashboardOut,
    DashboardUpdate,
    KlipBody,
    KlipIn,
    KlipPatch,
    LayoutIn,
    PreviewIn,
    PreviewOut,
)
from tenantry.datasources import repository as sources_repo
from tenantry.db.dashboard_models import Klip
from tenantry.db.models import Dashboard
from tenantry.errors import InvalidInput, NotFound
from tenantry.klips import dates, query
from tenantry.klips.query import ColumnType, QueryError
from tenantry.klips.spec import definition_of, stored_definition
from tenantry.owners import (
    Owner,
    audit_change,
    changing,
    check_content_limit,
    give_back,
    only_shared,
    require_builder,
    require_reader,
    take_one,
)
from tenantry.partners import repository as partners_repo
from tenantry.policy import Capability


def dashboard_outs(
    db: Session, dashboards: Sequence[Dashboard], principal: Principal | None = None
) -> list[DashboardOut]:
    """The dashboards as the API shows them, their klips and shares read in two queries."""
    ids = [d.id for d in dashboards]
    klips, shares = repo.klips_of(db, ids), repo.shares_of(db, ids)
    if principal is not None and only_shared(principal):
        # A member learns nothing of the client's other users, not even who else sees a dashboard.
        shares = {i: [u for u in users if u == principal.user_id] for i, users in shares.items()}
    return [DashboardOut.of(d, klips[d.id], shares[d.id]) for d in dashboards]


def dashboard_out(db: Session, principal: Principal, dashboard: Dashboard) -> DashboardOut:
    (out,) = dashboard_outs(db, [dashboard], principal)
    return out


def readable_dashboard(db: Session, principal: Principal, dashboard_id: int) -> DashboardOut:
    """One dashboard the caller may see."""
    return dashboard_out(db, principal, repo.get_dashboard(db, principal, dashboard_id))


def dashboards_of(
    db: Session, principal: Principal, owner: Owner, limit: int, offset: int
) -> tuple[list[DashboardOut], int]:
    """A page of an owner's dashboards, oldest first (for a member only those shared with them)."""
    items, total = repo.list_dashboards(db, owner, limit, offset, principal)
    return dashboard_outs(db, items, principal), total


def invalid(field: str, message: str, kind: str = "invalid") -> InvalidInput:
    """422 `validation_error` naming `field` (a dotted path such as `query.compute[0].expr`),
    shaped like the schema's own 422s so a client reads both the same way."""
    parts = [part for part in re.split(r"[.\[\]]+", field) if part and part != "body"]
    location = ["body", *parts]
    return InvalidInput(
        f"{field}: {message}", field=field, errors=[{"loc": location, "msg": message, "type": kind}]
    )


def _check_klip(db: Session, owner: Owner, body: KlipBody, where: str = "") -> None:
    """Refuse a klip whose source is not its owner's, or whose query or mapping does not fit the
    source's columns (422 naming the field): checked before anything is saved."""
    if body.datasource_id is None:
        return  # a text klip reads no data
    # Only the owner's own data: another client's source is "not found", never shown.
    source = sources_repo.get_owned_source(db, owner, body.datasource_id)
    try:
        query.check(body, query.columns_of(source.rows or []))
    except QueryError as exc:
        raise invalid(where + exc.field, exc.message, "klip_does_not_fit_source") from None


def _new_klip(dashboard_id: int, position: int, body: KlipIn) -> Klip:
    return Klip(
        dashboard_id=dashboard_id,
        position=position,
        title=body.title,
        kind=body.kind,
        datasource_id=body.datasource_id,
        size_w=body.size.w,
        size_h=body.size.h,
        definition=definition_of(body),
    )


def _klips(db: Session, owner: Owner, dashboard_id: int, klips: list[KlipIn]) -> list[Klip]:
    made = []
    for position, klip in enumerate(klips):
        _check_klip(db, owner, klip, f"klips[{position}].")
        made.append(_new_klip(dashboard_id, position, klip))
    return made


def _check_filters(filters: list[DashboardFilter], where: str = "filters") -> list[dict[str, Any]]:
    """The filters as stored, once each date range's default is known to mean a range."""
    for index, chosen in enumerate(filters):
        if chosen.kind == "date_range" and chosen.default is not None:
            try:
                dates.resolve(chosen.default, date(2000, 1, 1))
            except ValueError as exc:
                raise invalid(f"{where}[{index}].default", str(exc)) from None
    return [f.model_dump(mode="json", exclude_none=True) for f in filters]


def create_dashboard(
    db: Session, clock: Clock, principal: Principal, owner: Owner, data: DashboardCreate
) -> Dashboard:
    require_builder(principal)
    now = clock.now()
    owner.require(Capability.BUILD_CONTENT, now)
    limits.check_room(limits.KLIPS_PER_DASHBOARD, 0, len(data.klips))
    check_content_limit(db, owner, Dashboard, limits.DASHBOARDS_PER_OWNER)
    take_one(db, owner, "dashboards")
    filters = _check_filters(data.filters)
    dashboard = Dashboard(
        partner_id=owner.partner_id,
        client_id=owner.client_id,
        name=data.name,
        filters=filters,
        created_at=now,
        updated_at=now,
    )
    db.add(dashboard)
    db.flush()
    db.add_all(_klips(db, owner, dashboard.id, data.klips))
    audit_change(
        db, principal, dashboard, "dashboard.created", now, {"name": data.name, "klips": len(data.klips)}
    )
    db.flush()
    return dashboard


def update_dashboard(
    db: Session, clock: Clock, principal: Principal, dashboard_id: int, data: DashboardUpdate
) -> Dashboard:
    now = clock.now()
    dashboard = repo.get_dashboard(db, principal, dashboard_id, lock=True)
    owner = changing(db, principal, dashboard, Capability.BUILD_CONTENT, now)
    changed: dict[str, Any] = {}
    if data.name is not None and data.name != dashboard.name:
        dashboard.name = changed["name"] = data.name
    if data.filters is not None:
        filters = _check_filters(data.filters)
        if filters != dashboard.filters:
            dashboard.filters = changed["filters"] = filters
    if data.klips is not None:
        limits.check_room(limits.KLIPS_PER_DASHBOARD, 0, len(data.klips))
        klips = _klips(db, owner, dashboard.id, data.klips)
        repo.replace_klips(db, dashboard.id, klips)
        changed["klips"] = len(klips)
    if changed:
        dashboard.updated_at = now
        audit_change(db, principal, dashboard, "dashboard.updated", now, changed)
    db.flush()
    return dashboard


def delete_dashboard(db: Session, clock: Clock, principal: Principal, dashboard_id: int) -> None:
    now = clock.now()
    # The partner, then the dashboard (the order a client's deletion takes them in): deletions at
    # once take turns, and its place and live links are given back once.
    partners_repo.lock_partner(db, principal.partner_id)
    dashboard = repo.get_dashboard(db, principal, dashboard_id, lock=True)
    owner = changing(db, principal, dashboard, Capability.BUILD_CONTENT, now)
    give_back(db, owner, "published_links", repo.live_link_count(db, dashboard.id))
    give_back(db, owner, "dashboards")
    audit_change(db, principal, dashboard, "dashboard.deleted", now, {"name": dashboard.name})
    db.flush()
    repo.delete_dashboard(db, dashboard.id)
    db.expunge(dashboard)


def set_shares(
    db: Session, clock: Clock, principal: Principal, dashboard_id: int, user_ids: list[int]
) -> list[int]:
    """Share a dashboard with exactly these client users (seed: not in Setup)."""
    now = clock.now()
    dashboard = repo.get_dashboard(db, principal, dashboard_id, lock=True)
    changing(db, principal, dashboard, Capability.SHARE_DASHBOARDS, now)
    wanted = set(user_ids)
    known = repo.client_user_ids(db, dashboard.client_id, wanted)
    unknown = sorted(wanted - known)
    if unknown:
        raise NotFound(f"No user {unknown[0]} in this dashboard's client.", user_ids=unknown)
    repo.set_shares(db, dashboard.id, wanted, now)
    audit_change(db, principal, dashboard, "dashboard.shared", now, {"user_ids": sorted(wanted)})
    db.flush()
    return sorted(wanted)


# The preview shows the first rows of the query's answer: enough to see it, not a data export.
PREVIEW_ROWS = 200


def _placed(db: Session, dashboard_id: int) -> list[Klip]:
    return repo.klips_of(db, [dashboard_id])[dashboard_id]


def _touch(
    db: Session,
    principal: Principal,
    dashboard: Dashboard,
    action: str,
    now: datetime,
    details: dict[str, Any],
) -> None:
    """A change to the dashboard's klips or filters: it is updated now, and audited."""
    dashboard.updated_at = now
    audit_change(db, principal, dashboard, f"dashboard.{action}", now, details)
    db.flush()


def add_klip(db: Session, clock: Clock, caller: Principal, dashboard_id: int, body: KlipIn) -> Klip:
    """Add a klip at the end of a dashboard (at most 50 a dashboard), once it fits its source."""
    now = clock.now()
    # The dashboard is locked before its klips are counted, as every change of its klips locks it
    # (another add, a PATCH that replaces them, the layout, a deletion): none can land between the
    # count and the insert, so no dashboard gets a 51st klip.
    dashboard = repo.get_dashboard(db, caller, dashboard_id, lock=True)
    owner = changing(db, caller, dashboard, Capability.BUILD_CONTENT, now)
    klips = _placed(db, dashboard.id)
    limits.check_room(limits.KLIPS_PER_DASHBOARD, len(klips))
    _check_klip(db, owner, body)
    klip = _new_klip(dashboard.id, max((k.position for k in klips), default=-1) + 1, body)
    db.add(klip)
    db.flush()
    _touch(db, caller, dashboard, "klip_added", now, {"klip_id": klip.id, "kind": klip.kind})
    return klip


def _whole(klip: Klip) -> dict[str, Any]:
    """A stored klip as the body that would make it again."""
    return {
        "title": klip.title,
        "kind": klip.kind,
        "datasource_id": klip.datasource_id,
        "size": {"w": klip.size_w, "h": klip.size_h},
        **stored_definition(klip.definition),
    }


def update_klip(
    db: Session, clock: Clock, caller: Principal, dashboard_id: int, klip_id: int, body: KlipPatch
) -> Klip:
    """Replace the fields given; the result must be a whole klip that fits its source."""
    now = clock.now()
    dashboard = repo.get_dashboard(db, caller, dashboard_id, lock=True)
    owner = changing(db, caller, dashboard, Capability.BUILD_CONTENT, now)
    klip = repo.get_klip(db, dashboard.id, klip_id)
    merged = _whole(klip) | body.model_dump(mode="json", by_alias=True, exclude_unset=True)
    try:
        whole = KlipIn.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"  # "body": the klip as a whole
        raise invalid(where, first["msg"], first["type"]) from None
    _check_klip(db, owner, whole)
    klip.title, klip.kind, klip.datasource_id = whole.title, whole.kind, whole.datasource_id
    klip.size_w, klip.size_h = whole.size.w, whole.size.h
    klip.definition = definition_of(whole)
    db.flush()
    _touch(
        db,
        caller,
        dashboard,
        "klip_updated",
        now,
        {"klip_id": klip.id, "fields": sorted(body.model_fields_set)},
    )
    return klip


def delete_klip(db: Session, clock: Clock, caller: Principal, dashboard_id: int, klip_id: int) -> None:
    """Remove a klip; the others keep their order."""
    now = clock.now()
    dashboard = repo.get_dashboard(db, caller, dashboard_id, lock=True)
    changing(db, caller, dashboard, Capability.BUILD_CONTENT, now)
    klip = repo.get_klip(db, dashboard.id, klip_id)
    db.delete(klip)
    db.flush()
    for position, rest in enumerate(_placed(db, dashboard.id)):
        rest.position = position
    _touch(db, caller, dashboard, "klip_deleted", now, {"klip_id": klip_id})


def set_layout(db: Session, clock: Clock, caller: Principal, dashboard_id: int, body: LayoutIn) -> list[Klip]:
    """Order and size every klip of the dashboard: the list names each of them exactly once."""
    now = clock.now()
    dashboard = repo.get_dashboard(db, caller, dashboard_id, lock=True)
    changing(db, caller, dashboard, Capability.BUILD_CONTENT, now)
    klips = {k.id: k for k in _placed(db, dashboard.id)}
    wanted = [item.id for item in body.klips]
    if len(set(wanted)) != len(wanted):
        raise invalid("klips", "each klip may appear only once")
    # Another dashboard's klip is named like a missing one: its id says nothing about it.
    unknown = sorted(set(wanted) - set(klips))
    if unknown:
        raise invalid("klips", f"klip {unknown[0]} is not on this dashboard")
    missing = sorted(set(klips) - set(wanted))
    if missing:
        raise invalid("klips", f"the layout must list every klip of the dashboard; {missing[0]} is missing")
    for position, item in enumerate(body.klips):
        klip = klips[item.id]
        klip.position, klip.size_w, klip.size_h = position, item.size.w, item.size.h
    db.flush()
    _touch(db, caller, dashboard, "laid_out", now, {"klips": wanted})
    return sorted(klips.values(), key=lambda k: k.position)


def set_filters(
    db: Session, clock: Clock, caller: Principal, dashboard_id: int, filters: list[DashboardFilter]
) -> Dashboard:
    """Replace the filters viewers choose on the dashboard."""
    now = clock.now()
    dashboard = repo.get_dashboard(db, caller, dashboard_id)
    changing(db, caller, dashboard, Capability.BUILD_CONTENT, now)
    ids = [f.id for f in filters]
    if len(set(ids)) != len(ids):
        raise invalid("filters", "each filter needs its own id")
    stored = _check_filters(filters)
    if stored != dashboard.filters:
        dashboard.filters = stored
        _touch(db, caller, dashboard, "filters_set", now, {"filters": ids})
    return dashboard


def source_columns(db: Session, caller: Principal, datasource_id: int) -> dict[str, ColumnType]:
    """A data source's columns and their types (the builder's column pickers)."""
    require_reader(caller)
    source = sources_repo.get_source(db, caller, datasource_id)
    return query.columns_of(source.rows or [])


def preview(db: Session, caller: Principal, body: PreviewIn, *, cache: LiveCache) -> PreviewOut:
    """A klip's query answer and drawing, without saving anything (the builder's preview), its days
    in the source's owner's timezone as on the dashboard (the client's, else the partner's); a
    preview has no dashboard, so no dashboard filters."""
    require_builder(caller)
    title = body.title or "Preview"
    if body.datasource_id is None:
        return PreviewOut(rows=[], columns=[], svg=svg.draw(body, title, [], size=body.size))
    # Any source the caller may see: a client user only its client's (another's is "not found").
    source = sources_repo.get_source(db, caller, body.datasource_id)
    rows = source.rows or []
    timezone = partners_repo.days_timezone(db, source.partner_id, source.client_id)
    # Running the query checks it too (against the rows as loaded): a klip that does not fit its
    # source is the builder's to fix, wherever that shows.
    try:
        query.check(body, cache.queries.columns(lambda: rows, source.version))
        table = cache.queries.run(lambda: rows, source.version, body.query, timezone=timezone)
    except QueryError as exc:
        raise invalid(exc.field, exc.message, "klip_does_not_fit_source") from None
    return PreviewOut(
        rows=table.rows[:PREVIEW_ROWS],
        columns=table.columns,
        svg=svg.draw(body, title, table.rows, size=body.size),
        truncated=len(table.rows) > PREVIEW_ROWS,
    )
