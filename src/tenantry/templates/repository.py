"""All SQL about templates and their instances. Every template lookup is scoped to the partner."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from tenantry.auth.principal import Principal
from tenantry.db.dashboard_models import DataSource, Klip
from tenantry.db.models import Client, Dashboard
from tenantry.db.template_models import Template, TemplateInstance
from tenantry.errors import NotFound


def get_template(db: Session, principal: Principal, template_id: int) -> Template:
    """A template of the caller's partner (another partner's is "not found", never "forbidden")."""
    template = db.scalars(
        select(Template).where(Template.id == template_id, Template.partner_id == principal.partner_id)
    ).one_or_none()
    if template is None:
        raise NotFound(f"No template {template_id}.")
    return template


def list_templates(db: Session, partner_id: int) -> Sequence[Template]:
    return db.scalars(select(Template).where(Template.partner_id == partner_id).order_by(Template.id)).all()


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


def client_instances(db: Session, client_id: int) -> Sequence[TemplateInstance]:
    return db.scalars(select(TemplateInstance).where(TemplateInstance.client_id == client_id)).all()


def matching_clients(db: Session, partner_id: int, status: str | None, q: str | None) -> list[int]:
    """The ids of a partner's clients in a status and/or whose name or external id holds `q`."""
    conditions = [Client.partner_id == partner_id]
    if status is not None:
        conditions.append(Client.status == status)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(
            or_(Client.name.ilike(pattern, escape="\\"), Client.external_id.ilike(pattern, escape="\\"))
        )
    return list(db.scalars(select(Client.id).where(and_(*conditions)).order_by(Client.id)))


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
