"""Export endpoints (SPEC §9): download a dashboard as PDF or PNG, or e-mail it."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, Field

from tenantry.api.deps import Caller, ClockDep, MailerDep, PathId, SettingsDep, WorkDep, services
from tenantry.dashboards.live import parse_filters
from tenantry.exports import service
from tenantry.fields import Email, Strict
from tenantry.klips.spec import ChosenValue, FilterId

router = APIRouter(prefix="/api/1/dashboards", tags=["exports"])

Format = Literal["pdf", "png"]


class EmailIn(Strict):
    to: Annotated[list[Email], Field(min_length=1, max_length=20)]
    format: Format = "pdf"
    # The dashboard's filter values, as `?f.<id>=` gives them on its page: {id: value}.
    filters: Annotated[dict[FilterId, ChosenValue], Field(max_length=20)] = {}


class EmailOut(BaseModel):
    queued: bool = Field(
        description="True: the worker sends it shortly. False: it was not queued (see reason)."
    )
    delivered: bool = Field(description="False until a mail server took it (always false in this answer).")
    reason: str | None = Field(
        description="Why it was not queued (without SMTP settings it went to the log)."
    )


async def _renderer(request: Request) -> service.Renderer:
    return services(request).renderer


RendererDep = Annotated[service.Renderer, Depends(_renderer)]


@router.get(
    "/{dashboard_id}/export",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}, "image/png": {}}}},
)
async def export_dashboard(
    dashboard_id: PathId,
    work: WorkDep,
    clock: ClockDep,
    caller: Caller,
    renderer: RendererDep,
    request: Request,
    format: Annotated[Format, Query(description="pdf or png")] = "pdf",
) -> Response:
    """The dashboard as a PDF or PNG file, with `f.<id>=` filter values as on its page
    (watermarked in Setup; refused when disabled or expired)."""
    filters = parse_filters(request.query_params.multi_items())
    export = await work(service.render_export, clock, caller, renderer, dashboard_id, format, filters)
    return Response(
        export.data,
        media_type=export.content_type,
        headers={"Content-Disposition": f'attachment; filename="{export.filename}"'},
    )


@router.post("/{dashboard_id}/email", status_code=status.HTTP_202_ACCEPTED, response_model=EmailOut)
async def email_dashboard(
    dashboard_id: PathId,
    body: EmailIn,
    work: WorkDep,
    clock: ClockDep,
    caller: Caller,
    mailer: MailerDep,
    renderer: RendererDep,
    settings: SettingsDep,
) -> EmailOut:
    """E-mail the dashboard as an attachment: queued and sent by the worker (at most 50 recipients a
    day per user; viewers and members only to users of their own account)."""
    drawn = await work.reading(
        service.draw_dashboard_email,
        clock,
        caller,
        renderer,
        dashboard_id,
        list(body.to),
        body.format,
        body.filters,
    )
    queued = await work(service.email_dashboard, clock, caller, mailer, renderer, drawn, settings)
    return EmailOut(queued=queued.queued, delivered=queued.delivered, reason=queued.reason)
