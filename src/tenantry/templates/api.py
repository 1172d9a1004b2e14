"""Template endpoints (SPEC §15). Templates are the partner's: a client key is refused (403)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlalchemy.orm import Session

from tenantry.api.deps import ClockDep, GuardDep, PageDep, PartnerCaller, PathId, VaultDep, WorkDep
from tenantry.auth.principal import Principal
from tenantry.clock import Clock
from tenantry.outbound import Guard
from tenantry.templates import service
from tenantry.templates.schemas import (
    DeployIn,
    DeployOut,
    InstanceOut,
    TemplateIn,
    TemplateList,
    TemplateOut,
    UpdateInstancesIn,
)
from tenantry.vault import Vault

router = APIRouter(prefix="/api/1", tags=["templates"])


def _create(
    db: Session, clock: Clock, caller: Principal, body: TemplateIn, guard: Guard, vault: Vault
) -> TemplateOut:
    return service.template_out(service.create_template(db, clock, caller, body, guard=guard, vault=vault))


def _get(db: Session, caller: Principal, template_id: int) -> TemplateOut:
    return service.template_out(service.readable_template(db, caller, template_id))


def _replace(
    db: Session,
    clock: Clock,
    caller: Principal,
    template_id: int,
    body: TemplateIn,
    guard: Guard,
    vault: Vault,
) -> TemplateOut:
    template = service.replace_template(db, clock, caller, template_id, body, guard=guard, vault=vault)
    return service.template_out(template)


def _capture(db: Session, clock: Clock, caller: Principal, dashboard_id: int) -> TemplateOut:
    return service.template_out(service.capture_dashboard(db, clock, caller, dashboard_id))


def _deploy(
    db: Session, clock: Clock, caller: Principal, template_id: int, body: DeployIn, vault: Vault
) -> DeployOut:
    chosen = body.filter
    return service.deploy_request(
        db,
        clock,
        caller,
        template_id,
        body.client_ids,
        chosen.status if chosen else None,
        chosen.q if chosen else None,
        dry_run=body.dry_run,
        vault=vault,
    )


def _update_instances(
    db: Session, clock: Clock, caller: Principal, template_id: int, body: UpdateInstancesIn
) -> DeployOut:
    return service.update_instances(db, clock, caller, template_id, body.client_ids, force=body.force)


@router.post("/templates", status_code=status.HTTP_201_CREATED, response_model=TemplateOut)
async def create_template(
    body: TemplateIn, work: WorkDep, clock: ClockDep, caller: PartnerCaller, guard: GuardDep, vault: VaultDep
) -> TemplateOut:
    """Keep a set of data sources and dashboards (klips naming sources by `ref`) as a template."""
    return await work(_create, clock, caller, body, guard, vault)


@router.get("/templates", response_model=TemplateList)
async def list_templates(work: WorkDep, caller: PartnerCaller, page: PageDep) -> TemplateList:
    """The partner's templates, oldest first."""
    items, total = await work(service.templates_of, caller, page.limit, page.offset)
    return TemplateList(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/templates/{template_id}", response_model=TemplateOut)
async def get_template(template_id: PathId, work: WorkDep, caller: PartnerCaller) -> TemplateOut:
    """One template at its current version; secrets show as "*****"."""
    return await work(_get, caller, template_id)


@router.put("/templates/{template_id}", response_model=TemplateOut)
async def replace_template(
    template_id: PathId,
    body: TemplateIn,
    work: WorkDep,
    clock: ClockDep,
    caller: PartnerCaller,
    guard: GuardDep,
    vault: VaultDep,
) -> TemplateOut:
    """Store the template's next version (a secret sent as "*****" keeps its stored value)."""
    return await work(_replace, clock, caller, template_id, body, guard, vault)


@router.delete("/templates/{template_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_template(
    template_id: PathId, work: WorkDep, clock: ClockDep, caller: PartnerCaller
) -> Response:
    """Remove a template; what it deployed stays with the clients."""
    await work(service.delete_template, clock, caller, template_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/templates/from-dashboard/{dashboard_id}",
    status_code=status.HTTP_201_CREATED,
    response_model=TemplateOut,
)
async def capture_dashboard(
    dashboard_id: PathId, work: WorkDep, clock: ClockDep, caller: PartnerCaller
) -> TemplateOut:
    """A new template holding this dashboard, its klips and its data sources."""
    return await work(_capture, clock, caller, dashboard_id)


@router.post("/templates/{template_id}/deploy", response_model=DeployOut)
async def deploy_template(
    template_id: PathId,
    body: DeployIn,
    work: WorkDep,
    clock: ClockDep,
    caller: PartnerCaller,
    vault: VaultDep,
) -> DeployOut:
    """Deploy to the clients named or found by the filter, each all or nothing on its own."""
    return await work(_deploy, clock, caller, template_id, body, vault)


@router.get("/templates/{template_id}/instances", response_model=list[InstanceOut])
async def list_instances(template_id: PathId, work: WorkDep, caller: PartnerCaller) -> list[InstanceOut]:
    """Each client's copy: its version, whether it was changed by hand, whether it is detached."""
    return await work(service.instances, caller, template_id)


@router.post("/templates/{template_id}/update-instances", response_model=DeployOut)
async def update_instances(
    template_id: PathId,
    body: UpdateInstancesIn,
    work: WorkDep,
    clock: ClockDep,
    caller: PartnerCaller,
) -> DeployOut:
    """Push the current version to the copies (one changed by hand only with `force`)."""
    return await work(_update_instances, clock, caller, template_id, body)


@router.post("/dashboards/{dashboard_id}/detach", response_model=InstanceOut)
async def detach_dashboard(
    dashboard_id: PathId, work: WorkDep, clock: ClockDep, caller: PartnerCaller
) -> InstanceOut:
    """Cut this dashboard's copy loose from its template: it is never updated again."""
    return await work(service.detach, clock, caller, dashboard_id)
