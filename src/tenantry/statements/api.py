"""Statements endpoint (SPEC §7, §9): JSON, or CSV with `Accept: text/csv`."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response

from tenantry.api.deps import ClockDep, PartnerCaller, WorkDep
from tenantry.statements import service
from tenantry.statements.schemas import StatementOut

router = APIRouter(prefix="/api/1/partner/statements", tags=["statements"])

CSV = "text/csv"


def _wants_csv(accept: str | None, format: str | None) -> bool:
    if format is not None:
        return format == "csv"
    return accept is not None and any(part.split(";")[0].strip() == CSV for part in accept.split(","))


@router.get(
    "/{month}",
    response_model=StatementOut,
    responses={200: {"content": {CSV: {"schema": {"type": "string"}}}}},
)
async def get_statement(
    month: str,
    work: WorkDep,
    clock: ClockDep,
    caller: PartnerCaller,
    accept: Annotated[str | None, Header()] = None,
    format: Annotated[
        Literal["json", "csv"] | None, Query(description="Overrides the Accept header (for download links).")
    ] = None,
) -> StatementOut | Response:
    """The month's statement (YYYY-MM, partner's timezone): a line per client, resource and quantity."""
    statement = await work(service.statement_for, caller.partner_id, month, clock.now())
    if _wants_csv(accept, format):
        return Response(
            service.statement_csv(statement),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": (
                    f'attachment; filename="statement-{caller.partner_id}-{statement.month}.csv"'
                )
            },
        )
    return StatementOut.of(caller.partner_id, statement)
