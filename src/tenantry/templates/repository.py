"""All SQL about templates and their instances. Every template lookup is scoped to the partner."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, func, select
from sqlalchemy.orm import Session

from tenantry.auth.principal import Principal
from tenantry.clients.repository import in_effective_status, named_like
from tenantry.db.dashboard_models import DataSource, Klip
from tenantry.db.models import Client, Dashboard
from tenantry.db.template_models import Template, TemplateInstance
from tenantry.errors import NotFound
from tenantry.policy import EffectiveStatus


def get_template(db: Session, principal: Principal, template_id: int, *, lock: bool = False) -> Template:
    """A template of the caller's partner (another partner's is "not found", never "forbidden");
    with `lock`, held until the transaction ends, so two new versions cannot both be the next."""
    query = select(Template).where(Template.id == template_id, Template.partner_id == principal.partner_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    template = db.scalars(query).one_or_none()
    if template is None:
        raise NotFound(f"No template {template_id}.")
    return template


def list_templates(
    db: Session, partner_id: int, limit: int | None = None, offset: int = 0
) -> Sequence[Template]:
    """The partner's templates, oldest first (a page of them with `limit` and `offset`)."""
    query = select(Template).where(Template.partner_id == partner_id).order_by(Template.id)
    return db.scalars(query.limit(limit).offset(offset)).all()


def count_templates(db: Session, partner_id: int) -> int:
    return db.scalar(select(func.count()).select_from(Template).where(Template.partner_id == partner_id)) or 0


def delete_template(db: Session, template_id: int) -> None:
    # Its instances go with it (foreign key cascade); the clients' dashboards and sources stay.
    db.execute(delete(Template).where(Template.id == template_id))


def instance_of(db: Session, template_id: int, client_id: int) -> TemplateInstance | None:
    return db.scalars(
        select(TemplateInstance).where(
            TemplateInstance.template_id == template_id, TemplateInstance.client_id == client_id
        )
    ).one_or_none()


def instances_of(
    db: Session, template_id: int, client_ids: list[int] | None = None
) -> Sequence[TemplateInstance]:
    query = select(TemplateInstance).where(TemplateInstance.template_id == template_id)
    if client_ids is not None:
        query = query.where(TemplateInstance.client_id.in_(client_ids))
    return db.scalars(query.order_by(TemplateInstance.client_id)).all()


def attached_instances(db: Session) -> Sequence[TemplateInstance]:
    """Every partner's instances that are still updated from their template."""
    return db.scalars(
        select(TemplateInstance).where(TemplateInstance.detached.is_(False)).order_by(TemplateInstance.id)
    ).all()


def client_instances(db: Session, client_id: int) -> Sequence[TemplateInstance]:
    return db.scalars(select(TemplateInstance).where(TemplateInstance.client_id == client_id)).all()


def matching_clients(
    db: Session, partner_id: int, status: str | None, q: str | None, now: datetime
) -> list[int]:
    """The ids of a partner's clients in an effective status at `now` and/or whose name or external
    id holds `q`. `trial_expired` is never stored: it is a stored `trial` whose end has passed, and
    `trial` is one whose end has not (see `lifecycle.effective_status`)."""
    return list(
        db.scalars(select(Client.id).where(_matching(partner_id, status, q, now)).order_by(Client.id))
    )


def clients_in(
    db: Session, partner_id: int, status: str | None, now: datetime, limit: int
) -> Sequence[Client]:
    """The first `limit` of a partner's clients in an effective status at `now` (all of them
    without a status): those `matching_clients` finds, for a page to list."""
    query = select(Client).where(_matching(partner_id, status, None, now)).order_by(Client.id).limit(limit)
    return db.scalars(query).all()


def _matching(partner_id: int, status: str | None, q: str | None, now: datetime) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = [Client.partner_id == partner_id]
    if status is not None:
        conditions.append(in_effective_status(EffectiveStatus(status), now))
    if q:
        conditions.append(named_like(q))
    return and_(*conditions)


def dashboards_by_id(db: Session, ids: list[int]) -> dict[int, Dashboard]:
    if not ids:
        return {}
    return {d.id: d for d in db.scalars(select(Dashboard).where(Dashboard.id.in_(ids)))}


def sources_by_id(db: Session, ids: list[int]) -> dict[int, DataSource]:
    if not ids:
        return {}
    return {s.id: s for s in db.scalars(select(DataSource).where(DataSource.id.in_(ids)))}


def klips_of(db: Session, dashboard_ids: list[int]) -> dict[int, list[Klip]]:
    found: dict[int, list[Klip]] = {i: [] for i in dashboard_ids}
    if dashboard_ids:
        for klip in db.scalars(
            select(Klip)
            .where(Klip.dashboard_id.in_(dashboard_ids))
            .order_by(Klip.dashboard_id, Klip.position)
        ):
            found[klip.dashboard_id].append(klip)
    return found


def _chunks(ids: Sequence[int], size: int = 500) -> list[list[int]]:
    wanted = list(dict.fromkeys(ids))
    return [wanted[start : start + size] for start in range(0, len(wanted), size)]


def clients_by_id(db: Session, partner_id: int, client_ids: Sequence[int]) -> dict[int, Client]:
    """The partner's clients among these ids, read anew (their usage as it is now, under the
    partner lock); another partner's ids are simply absent."""
    found: dict[int, Client] = {}
    for chunk in _chunks(client_ids):
        query = (
            select(Client)
            .where(Client.partner_id == partner_id, Client.id.in_(chunk))
            .execution_options(populate_existing=True)
        )
        found.update((c.id, c) for c in db.scalars(query))
    return found


def instances_by_client(
    db: Session, template_id: int, client_ids: Sequence[int]
) -> dict[int, TemplateInstance]:
    found: dict[int, TemplateInstance] = {}
    for chunk in _chunks(client_ids):
        query = select(TemplateInstance).where(
            TemplateInstance.template_id == template_id, TemplateInstance.client_id.in_(chunk)
        )
        found.update((i.client_id, i) for i in db.scalars(query))
    return found


def content_counts(
    db: Session, model: type[DataSource] | type[Dashboard], partner_id: int, client_ids: Sequence[int]
) -> dict[int, int]:
    """How many data sources (or dashboards) each of these clients holds."""
    found: dict[int, int] = {}
    for chunk in _chunks(client_ids):
        query = (
            select(model.client_id, func.count())
            .where(model.partner_id == partner_id, model.client_id.in_(chunk))
            .group_by(model.client_id)
        )
        found.update((client_id, count) for client_id, count in db.execute(query) if client_id is not None)
    return found
