"""The partner console's Statements page: the month's lines, a status strip per client, the CSV."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from tenantry.api.deps import ClockDep, DbSession
from tenantry.errors import TenantryError
from tenantry.partners import repository as partners_repo
from tenantry.statements.compute import Month
from tenantry.statements.service import MonthReport, month_report, statement_view
from tenantry.web.routes import _page, _signed_in, _to

router = APIRouter(include_in_schema=False)

_WORDS = {"setup": "Setup", "trial": "Trial", "active": "Active", "disabled": "Disabled", None: "no account"}


def _strips(report: MonthReport) -> list[dict[str, Any]]:
    """One strip per client: a cell a day, named for a screen reader too."""
    strips = []
    for client_id, name, statuses in report.statuses:
        days = []
        for n, status in enumerate(statuses):
            begun = n < report.days_begun
            days.append(
                {
                    "day": n + 1,
                    "status": (status or "none") if begun else "future",
                    "words": _WORDS[status] if begun else "not yet",
                }
            )
        counts = Counter(day["words"] for day in days)
        summary = ", ".join(
            f"{words} {count} day{'' if count == 1 else 's'}" for words, count in counts.items()
        )
        strips.append({"client_id": client_id, "name": name, "days": days, "summary": summary})
    return strips


@router.get("/partner/statements", response_class=HTMLResponse)
def statements_page(
    request: Request,
    db: DbSession,
    clock: ClockDep,
    month: Annotated[str | None, Query(max_length=7, description="YYYY-MM")] = None,
) -> Response:
    signed_in = _signed_in(request, db, clock)
    if signed_in is None:
        return _to("/login")
    if not signed_in.is_partner:
        return _to("/app")
    now = clock.now()
    partner = partners_repo.get_partner(db, signed_in.principal.partner_id)
    try:
        report = month_report(db, partner.id, month or str(Month.of(now, partner.timezone)), now)
    except TenantryError as refusal:
        return _page(
            request, signed_in, "message.html", 422, heading="Statements", message=refusal.detail, error=True
        )
    return _page(
        request,
        signed_in,
        "partner_statements.html",
        partner=partner,
        statement=statement_view(partner.id, report.statement),
        strips=_strips(report),
        previous=str(report.statement.month.previous()),
        next=str(report.statement.month.next()),
    )
