"""Request and response schemas of scheduled reports."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tenantry.db.report_models import ReportRun, ReportSchedule
from tenantry.fields import Email, Name, RowId, Strict, Timezone
from tenantry.klips.spec import ChosenValue, FilterId

Frequency = Literal["daily", "weekly", "monthly"]
Format = Literal["pdf", "png"]


def _time_of_day(value: str) -> str:
    hours, _, minutes = value.partition(":")
    if not (
        value.isascii() and len(hours) == 2 and len(minutes) == 2 and hours.isdigit() and minutes.isdigit()
    ):
        raise ValueError("a time of day is HH:MM, e.g. 09:30")
    if int(hours) > 23 or int(minutes) > 59:
        raise ValueError("a time of day is 00:00 to 23:59")
    return value


TimeOfDay = Annotated[str, Field(min_length=5, max_length=5), AfterValidator(_time_of_day)]
Filters = Annotated[dict[FilterId, ChosenValue], Field(max_length=20)]


class Recipients(Strict):
    # Users of the dashboard's account (its client's users, or the partner's for its own dashboards).
    user_ids: Annotated[list[RowId], Field(max_length=100)] = []
    # Any address: partner admins and editors only; others only their account's users' addresses.
    emails: Annotated[list[Email], Field(max_length=20)] = []

    @model_validator(mode="after")
    def _not_empty(self) -> Recipients:
        if not self.user_ids and not self.emails:
            raise ValueError("name at least one recipient: user_ids or emails")
        return self


def check_days(frequency: str, weekday: int | None, day_of_month: int | None) -> tuple[str, str] | None:
    """(field, why) when the days do not fit the frequency, else None."""
    if frequency == "weekly" and weekday is None:
        return "weekday", "a weekly schedule needs a weekday (0 Monday to 6 Sunday)"
    if frequency != "weekly" and weekday is not None:
        return "weekday", "only a weekly schedule has a weekday"
    if frequency == "monthly" and day_of_month is None:
        return "day_of_month", "a monthly schedule needs a day of the month (1 to 28)"
    if frequency != "monthly" and day_of_month is not None:
        return "day_of_month", "only a monthly schedule has a day of the month"
    return None


Weekday = Annotated[int, Field(ge=0, le=6, strict=True)]
DayOfMonth = Annotated[int, Field(ge=1, le=28, strict=True)]


class ScheduleCreate(Strict):
    frequency: Frequency
    weekday: Weekday | None = Field(None, validate_default=True)
    day_of_month: DayOfMonth | None = Field(None, validate_default=True)
    time: TimeOfDay
    timezone: Timezone | None = None
    format: Format = "pdf"
    recipients: Recipients
    subject: Name | None = None
    filters: Filters = {}

    @field_validator("weekday", "day_of_month")
    @classmethod
    def _fits_frequency(cls, value: int | None, info: ValidationInfo) -> int | None:
        frequency = info.data.get("frequency")
        if frequency is None:  # itself refused
            return value
        weekday = value if info.field_name == "weekday" else info.data.get("weekday")
        day = value if info.field_name == "day_of_month" else (1 if frequency == "monthly" else None)
        wrong = check_days(frequency, weekday, day)
        if wrong is not None and wrong[0] == info.field_name:
            raise ValueError(wrong[1])
        return value


class ScheduleChange(Strict):
    """Only the fields given change; the schedule as changed must still be whole (a weekly one
    has a weekday, a monthly one a day of the month)."""

    frequency: Frequency | None = None
    weekday: Weekday | None = None
    day_of_month: DayOfMonth | None = None
    time: TimeOfDay | None = None
    timezone: Timezone | None = None
    format: Format | None = None
    recipients: Recipients | None = None
    subject: Name | None = None
    filters: Filters | None = None


class RecipientsOut(BaseModel):
    user_ids: list[int]
    emails: list[str]


class ScheduleOut(BaseModel):
    id: int
    dashboard_id: int
    client_id: int | None
    frequency: str
    weekday: int | None
    day_of_month: int | None
    time: str
    timezone: str
    format: str
    recipients: RecipientsOut
    subject: str | None
    filters: dict[str, Any]
    next_run_at: datetime
    created_by: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: ReportSchedule) -> ScheduleOut:
        return cls(
            id=row.id,
            dashboard_id=row.dashboard_id,
            client_id=row.client_id,
            frequency=row.frequency,
            weekday=row.weekday,
            day_of_month=row.day_of_month,
            time=row.time,
            timezone=row.timezone,
            format=row.format,
            recipients=RecipientsOut(
                user_ids=list(row.recipient_user_ids), emails=list(row.recipient_emails)
            ),
            subject=row.subject,
            filters=dict(row.filters),
            next_run_at=row.next_run_at,
            created_by=row.created_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class ScheduleList(BaseModel):
    items: list[ScheduleOut]
    total: int
    limit: int
    offset: int


class RunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    slot: datetime
    status: Literal["sent", "skipped", "failed"]
    reason: str | None
    recipients: list[str]
    finished_at: datetime
    late: bool
    watermark: bool

    @classmethod
    def of(cls, row: ReportRun) -> RunOut:
        return cls.model_validate(row)


class RunList(BaseModel):
    items: list[RunOut]
    total: int
    limit: int
    offset: int
