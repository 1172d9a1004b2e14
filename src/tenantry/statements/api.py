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
    """CSV when `format` says so, or when `Accept` names `text/csv` (media types have no case)
    as acceptable (`q` above 0) and at least as wanted as JSON; JSON otherwise."""
    if format is not None:
        return format == "csv"
    if accept is None:
        return False
    ranges = [_media_range(part) for part in accept.split(",")]
    csv = max((q for media, q in ranges if media == CSV), default=0.0)
    return csv > 0 and csv >= _quality(ranges, "application", "json")


def _media_range(part: str) -> tuple[str, float]:
    """One `Accept` entry: its media range, lower-cased, and its `q` (1 unless given; a `q` that
    is not a number counts as 0)."""
    media, *params = part.split(";")
    q = 1.0
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = min(max(float(value.strip()), 0.0), 1.0)
            except ValueError:
                q = 0.0
    return media.strip().lower(), q


def _quality(ranges: list[tuple[str, float]], kind: str, subtype: str) -> float:
    """How much `Accept` wants `kind/subtype`: the `q` of the most specific range matching it."""
    for media in (f"{kind}/{subtype}", f"{kind}/*", "*/*"):
        found = [q for named, q in ranges if named == media]
        if found:
            return max(found)
    return 0.0


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
