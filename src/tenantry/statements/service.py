"""Statement use cases: compute a partner's statement for a month, as JSON-ready data or CSV."""

from __future__ import annotations

import bisect
import csv
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tenantry.partners import repository as partners_repo
from tenantry.statements import repository as repo
from tenantry.statements.compute import Month, Statement, build_statement, daily_statuses, month_frame
from tenantry.statements.schemas import StatementLineOut

COLUMNS: tuple[str, ...] = (
    "client_id",
    "client_name",
    "resource",
    "quantity",
    "billable_days",
    "days_in_month",
    "unit_price",
    "amount",
    "amount_to_date",
    "projected_billable_days",
    "projected_amount",
)


def statement_for(db: Session, partner_id: int, month: str, now: datetime) -> Statement:
    """The partner's statement for `month` (YYYY-MM) as the histories stand at `now`."""
    return month_report(db, partner_id, month, now).statement


@dataclass(frozen=True)
class MonthReport:
    statement: Statement
    days_begun: int  # days of the month that have started by now (the rest are still to come)
    statuses: list[tuple[int, str, list[str | None]]]  # (client id, name, status day by day)


def month_report(db: Session, partner_id: int, month: str, now: datetime) -> MonthReport:
    """The statement, and each client's status day by day, for the console's page."""
    parsed = Month.parse(month)
    partner = partners_repo.get_partner(db, partner_id)
    terms = repo.terms_history(db, partner)
    frame = month_frame(parsed, terms)
    histories = repo.month_histories(db, partner.id, frame.start, frame.end)
    return MonthReport(
        statement=build_statement(parsed, terms, histories, now),
        days_begun=bisect.bisect_left(frame.bounds[:-1], now),
        statuses=sorted(
            (h.client_id, h.client_name, daily_statuses(h, frame.bounds, now)) for h in histories
        ),
    )


# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def statement_csv(statement: Statement) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for line in statement.lines:
        view = StatementLineOut.of(line).model_dump()
        writer.writerow([_cell(view[column]) for column in COLUMNS])
    return out.getvalue()
