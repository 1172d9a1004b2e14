"""Scheduled report endpoints (SPEC §17): a dashboard's schedules, and each schedule's runs."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from tenantry.api.deps import Caller, ClockDep, PageDep, PathId, WorkDep
from tenantry.reports import service
from tenantry.reports.schemas import (
    RunList,
    RunOut,
    ScheduleChange,
    ScheduleCreate,
    ScheduleList,
    ScheduleOut,
)

router = APIRouter(prefix="/api/1", tags=["reports"])


@router.get("/dashboards/{dashboard_id}/schedules", response_model=ScheduleList)
async def list_schedules(dashboard_id: PathId, work: WorkDep, caller: Caller, page: PageDep) -> ScheduleList:
    """The dashboard's scheduled reports, oldest first, each with its next run."""
    items, total = await work(service.schedules_of, caller, dashboard_id, page.limit, page.offset)
    return ScheduleList(
        items=[ScheduleOut.of(s) for s in items], total=total, limit=page.limit, offset=page.offset
    )


@router.post(
    "/dashboards/{dashboard_id}/schedules", status_code=status.HTTP_201_CREATED, response_model=ScheduleOut
)
async def create_schedule(
    dashboard_id: PathId, body: ScheduleCreate, work: WorkDep, clock: ClockDep, caller: Caller
) -> ScheduleOut:
    """E-mail the dashboard as PDF or PNG every day, week or month at a local time (in any client
    status: the status decides at each slot whether it is sent, watermarked or skipped)."""
    return ScheduleOut.of(await work(service.create_schedule, clock, caller, dashboard_id, body))


@router.patch("/schedules/{schedule_id}", response_model=ScheduleOut)
async def change_schedule(
    schedule_id: PathId, body: ScheduleChange, work: WorkDep, clock: ClockDep, caller: Caller
) -> ScheduleOut:
    """Change a schedule; its next run is computed anew."""
    return ScheduleOut.of(await work(service.change_schedule, clock, caller, schedule_id, body))


@router.delete("/schedules/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_schedule(schedule_id: PathId, work: WorkDep, clock: ClockDep, caller: Caller) -> Response:
    """Stop a scheduled report and forget its runs."""
    await work(service.delete_schedule, clock, caller, schedule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/schedules/{schedule_id}/runs", response_model=RunList)
async def list_runs(schedule_id: PathId, work: WorkDep, caller: Caller, page: PageDep) -> RunList:
    """What happened at each slot, newest first: sent, skipped (and why) or failed (and why)."""
    items, total = await work(service.runs_of, caller, schedule_id, page.limit, page.offset)
    return RunList(items=[RunOut.of(r) for r in items], total=total, limit=page.limit, offset=page.offset)
