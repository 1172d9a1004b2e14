"""Statement use cases: compute a partner's statement for a month, as JSON-ready data or CSV."""

from __future__ import annotations

import bisect
import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from tenantry.partners import repository as partners_repo
from tenantry.statements import compute
from tenantry.statements import repository as repo
from tenantry.statements.compute import Line, Month, Statement, build_statement, daily_statuses, month_frame
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
    """The partner's statement for `month` (YYYY-MM) as the histories stand at `now`.

    PostgreSQL counts the billable days itself and sends only the counts; SQLite reads the month's
    histories and `compute.build_statement` counts them. Both give the same statement.
    """
    parsed = Month.parse(month)
    partner = partners_repo.get_partner(db, partner_id)
    terms = repo.terms_history(db, partner)
    frame = month_frame(parsed, terms)
    if db.get_bind().dialect.name != "postgresql":
        histories = repo.month_histories(db, partner.id, frame.start, frame.end)
        return build_statement(parsed, terms, histories, now)
    statement = Statement(
        month=parsed,
        timezone=frame.timezone,
        currency=frame.currency,
        days_in_month=frame.days_in_month,
        as_of=min(now, frame.end),
        complete=now >= frame.end,
    )
    # Each resource's distinct prices, numbered, and each day's number.
    prices = compute.day_prices(frame, terms)
    numbered: dict[str, dict[Decimal, int]] = {resource: {} for resource in compute.PRICED_RESOURCES}
    for day in prices:
        for resource, known in numbered.items():
            known.setdefault(day[resource], len(known))
    by_number = {resource: list(known) for resource, known in numbered.items()}
    rows = repo.month_lines(
        db,
        partner.id,
        frame.bounds,
        now,
        compute._BILLABLE,
        [numbered["dashboards"][day["dashboards"]] for day in prices],
        [numbered["users"][day["users"]] for day in prices],
    )
    price_lists = [by_number[resource] for resource in compute.PRICED_RESOURCES]
    days_in_month = frame.days_in_month
    statement.lines = [
        Line(
            client_id,
            name,
            compute.PRICED_RESOURCES[resource],
            quantity,
            price_lists[resource][price],
            days_in_month,
            days,
            projected_days,
            first_day,
        )
        for client_id, name, resource, quantity, price, days, projected_days, first_day in rows
    ]
    return statement


@dataclass(frozen=True)
class MonthReport:
    statement: Statement
    days_begun: int  # days of the month that have started by now (the rest are still to come)
    statuses: list[tuple[int, str, list[str | None]]]  # (client id, name, status day by day)


def month_in_progress(db: Session, partner_id: int, now: datetime) -> str:
    """The month `now` falls in for the partner's statements (YYYY-MM): a new timezone waits for
    the month after the one in progress."""
    terms = repo.terms_history(db, partners_repo.get_partner(db, partner_id))
    return str(compute.month_at(now, terms))


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
# A spreadsheet whose list separator is `;` (most of continental Europe) splits a line on it:
# what follows a `;` inside a value starts a cell there too.
_FORMULA_AFTER_SEPARATOR = re.compile(r";(\s*[=+\-@])")


def _cell(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    value = _FORMULA_AFTER_SEPARATOR.sub(r";'\1", value)
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def statement_csv(statement: Statement) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for line in statement.lines:
        view = StatementLineOut.of(line).model_dump()
        writer.writerow([_cell(view[column]) for column in COLUMNS])
    return out.getvalue()
