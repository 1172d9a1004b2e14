"""The partner console's Statements page: the month's lines, a status strip per client, the CSV."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from tenantry.api.deps import WorkDep
from tenantry.auth.sessions import SignedIn
from tenantry.db.models import Partner
from tenantry.partners import repository as partners_repo
from tenantry.statements.schemas import StatementOut
from tenantry.statements.service import MonthReport, month_in_progress, month_report
from tenantry.web.pages import PageRoute, Visit, page, visitor

router = APIRouter(include_in_schema=False, route_class=PageRoute)

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


def _report(db: Session, visit: Visit, month: str | None) -> tuple[SignedIn, Partner, MonthReport]:
    signed_in = visit.partner_user(db)
    partner = partners_repo.get_partner(db, signed_in.principal.partner_id)
    return (
        signed_in,
        partner,
        month_report(db, partner.id, month or month_in_progress(db, partner.id, visit.now), visit.now),
    )


@router.get("/partner/statements", response_class=HTMLResponse)
async def statements_page(
    request: Request,
    visit: Annotated[Visit, visitor(heading="Statements")],
    work: WorkDep,
    month: Annotated[str | None, Query(max_length=7, description="YYYY-MM")] = None,
) -> Response:
    signed_in, partner, report = await work(_report, visit, month)
    return page(
        request,
        signed_in,
        "partner_statements.html",
        partner=partner,
        statement=StatementOut.of(partner.id, report.statement).model_dump(),
        strips=_strips(report),
        previous=str(report.statement.month.previous()),
        next=str(report.statement.month.next()),
    )
