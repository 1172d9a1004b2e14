"""Response bodies of the statements API (money as decimal strings, e.g. "14.19")."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class StatementLineOut(BaseModel):
    client_id: int
    client_name: str
    resource: Literal["dashboards", "users"]
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
