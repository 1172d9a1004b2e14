"""Response bodies of the statements API (money as decimal strings, e.g. "14.19")."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from tenantry.statements.compute import Line, Statement


def _money(value: Any) -> str:
    return f"{value:.2f}"


Resource = Literal["dashboards", "users"]


class StatementLineOut(BaseModel):
    client_id: int
    client_name: str = Field(
        description="The client's name when the month ended (or when it was deleted): a later rename "
        "leaves a past month as it was."
    )
    resource: Resource
    quantity: int
    billable_days: int = Field(description="Billable days so far: the whole month once it has ended.")
    days_in_month: int
    unit_price: str
    amount: str = Field(
        description="quantity × unit_price × billable_days / days_in_month, rounded to cents half up."
    )
    amount_to_date: str = Field(description="The same as `amount`, named for the month in progress.")
    projected_billable_days: int = Field(
        description="Billable days if the client keeps its present status and allocation to month end."
    )
    projected_amount: str

    @classmethod
    def of(cls, line: Line) -> StatementLineOut:
        amount = _money(line.amount)
        return cls(
            client_id=line.client_id,
            client_name=line.client_name,
            resource=cast(Resource, line.resource),
            quantity=line.quantity,
            billable_days=line.billable_days,
            days_in_month=line.days_in_month,
            unit_price=_money(line.unit_price),
            amount=amount,
            amount_to_date=amount,
            projected_billable_days=line.projected_billable_days,
            projected_amount=_money(line.projected_amount),
        )


class StatementOut(BaseModel):
    partner_id: int
    month: str
    timezone: str = Field(description="The timezone the month's days are cut in.")
    currency: str
    days_in_month: int
    complete: bool = Field(description="Whether the month has ended; an ended month never changes.")
    as_of: datetime = Field(description="The instant the amounts run to (the month's end once it is over).")
    lines: list[StatementLineOut]
    total: str = Field(description="The sum of the lines' amounts.")
    total_to_date: str = Field(description="The same as `total`, named for the month in progress.")
    projected_total: str = Field(description="The sum of the lines' projected amounts.")

    @classmethod
    def of(cls, partner_id: int, statement: Statement) -> StatementOut:
        total = _money(statement.total)
        return cls(
            partner_id=partner_id,
            month=str(statement.month),
            timezone=statement.timezone,
            currency=statement.currency,
            days_in_month=statement.days_in_month,
            complete=statement.complete,
            as_of=statement.as_of,
            lines=[StatementLineOut.of(line) for line in statement.lines],
            total=total,
            total_to_date=total,
            projected_total=_money(statement.projected_total),
        )
