"""Request and response bodies of the clients API. Unknown fields are refused (422)."""

from __future__ import annotations

from datetime import datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, StringConstraints

from tenantry import lifecycle
from tenantry.clients import repository as repo
from tenantry.fields import INT64_MAX as INT64_MAX
from tenantry.fields import INT64_MIN as INT64_MIN
from tenantry.fields import Description, ExternalId, KeptJson, Name, OneLine, Reason, Strict, Timezone
from tenantry.policy import Status
from tenantry.pool import RESOURCES

if TYPE_CHECKING:
    from tenantry.db.models import AuditEvent, StatusChange

Amount = Annotated[StrictInt, Field(ge=0, le=2_000_000_000)]
SettableStatus = Literal["setup", "trial", "active", "disabled"]


class Resources(Strict):
    dashboards: Amount | None = None
    users: Amount | None = None
    published_links: Amount | None = None
    api_calls_per_day: Amount | None = None

    def given(self) -> dict[str, int]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


TIMEZONE_HELP = (
    "An IANA name, e.g. Europe/Paris: the days of the client's dashboards (date filters, day buckets). "
    "null: the partner's timezone. Statements and the API meter keep the partner's days."
)


class ClientCreate(Strict):
    name: Name
    description: Description = ""
    external_id: ExternalId | None = None
    timezone: Timezone | None = Field(default=None, description=TIMEZONE_HELP)
    status: SettableStatus = "setup"
    resources: Resources | None = None
    reason: Reason = ""


class ClientUpdate(Strict):
    name: Name | None = None
    description: Description | None = None
    external_id: ExternalId | None = None
    timezone: Timezone | None = Field(default=None, description=TIMEZONE_HELP)
    status: SettableStatus | None = None
    resources: Resources | None = None
    reason: Reason = ""


class TrialOut(BaseModel):
    started_at: datetime
    ends_at: datetime
    days_remaining: int
    extended: bool
    extension_available: bool
    expired: bool

    @classmethod
    def of(cls, client: lifecycle.ClientState, now: datetime) -> TrialOut | None:
        """The client's trial clock at `now`, or None when it has never had a trial."""
        return cls.of_trial(lifecycle.trial_of(client), Status(client.status), now)

    @classmethod
    def of_trial(cls, trial: lifecycle.Trial | None, status: Status, now: datetime) -> TrialOut | None:
        """`trial`'s clock at `now`, for a client in `status`."""
        if trial is None:
            return None
        return cls(
            started_at=trial.started_at,
            ends_at=trial.ends_at,
            days_remaining=trial.days_remaining(now),
            extended=trial.extended,
            extension_available=status == Status.TRIAL and trial.extension_available(now),
            expired=trial.expired(now),
        )


class ResourcesOut(BaseModel):
    dashboards: int
    users: int
    published_links: int
    api_calls_per_day: int


class UsageOut(BaseModel):
    dashboards: int
    users: int
    published_links: int
    api_calls_today: int


class ClientOut(BaseModel):
    id: int
    name: str
    description: str
    external_id: str | None
    # The client's own timezone for its dashboards' days, or null for the partner's.
    timezone: str | None
    status: str
    effective_status: str
    trial: TrialOut | None
    resources: ResourcesOut
    usage: UsageOut
    created_at: datetime
    last_sign_in: datetime | None

    @classmethod
    def of(cls, client: repo.ClientFields, now: datetime, api_calls_today: int = 0) -> ClientOut:
        """A client as the API shows it at `now`: an ORM `Client` or a row read on the event loop."""
        trial, status = lifecycle.trial_of(client), Status(client.status)
        return cls(
            id=client.id,
            name=client.name,
            description=client.description,
            external_id=client.external_id,
            timezone=client.timezone,
            status=client.status,
            effective_status=lifecycle.effective_status(status, trial, now).value,
            trial=TrialOut.of_trial(trial, status, now),
            resources=ResourcesOut(**repo.allocation_of(client)),
            usage=UsageOut(**repo.usage_of(client), api_calls_today=api_calls_today),
            created_at=client.created_at,
            last_sign_in=client.last_sign_in,
        )


# What `ClientOut.of` reads of a client: with the count of its calls today and what the clock shows
# of its trial (`lifecycle.trial_reading`), all its view is made of.
_VIEWED = attrgetter(
    "id",
    "name",
    "description",
    "external_id",
    "timezone",
    "status",
    "trial_started_at",
    "trial_ends_at",
    "trial_extended_at",
    *(f"alloc_{r}" for r in RESOURCES),
    "usage_dashboards",
    "usage_users",
    "usage_published_links",
    "created_at",
    "last_sign_in",
)
# Client views kept as JSON (`client_json`).
_KEPT = KeptJson()


def client_json(client: repo.ClientFields, now: datetime, api_calls_today: int) -> bytes:
    """`ClientOut.of(client, now, api_calls_today)` as JSON, made once while what it shows is the
    same: the fields it reads, the count, and what the clock shows of the trial (to the day, and
    whether it has ended). The hottest read of the API asks for the same client again and again."""
    key = (_VIEWED(client), api_calls_today, lifecycle.trial_reading(client, now))
    return _KEPT.json(key, lambda: ClientOut.of(client, now, api_calls_today))


def event_client(client: repo.ClientFields | None, now: datetime) -> dict[str, Any] | None:
    """The client as every event carries it (`data.client`): the API's document at `now`, as JSON;
    None for no client (a partner's own dashboard, a client deleted since)."""
    return None if client is None else ClientOut.of(client, now).model_dump(mode="json")


class ClientList(BaseModel):
    items: list[ClientOut]
    total: int
    limit: int
    offset: int


class ActivationCheck(BaseModel):
    ready: bool
    missing: list[str]


class StatusChangeOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    id: int
    from_: str | None = Field(alias="from")
    to: str
    at: datetime
    actor: str
    reason: str

    @classmethod
    def of(cls, change: StatusChange) -> StatusChangeOut:
        return cls(
            id=change.id,
            **{"from": change.from_status},
            to=change.to_status,
            at=change.at,
            actor=change.actor,
            reason=change.reason,
        )


class StatusChangeList(BaseModel):
    items: list[StatusChangeOut]
    total: int
    limit: int
    offset: int


class AuditRecordOut(BaseModel):
    """Who did what to the client, when: `action` names it (`client.updated`, `template.deployed`,
    `user.invited`…), `target` what it was done to, `details` what changed."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]

    @classmethod
    def of(cls, record: AuditEvent) -> AuditRecordOut:
        return cls(
            id=record.id,
            at=record.at,
            actor=record.actor,
            action=record.action,
            target=record.target,
            details=dict(record.details or {}),
        )


class AuditRecordList(BaseModel):
    items: list[AuditRecordOut]
    total: int
    limit: int
    offset: int


# A client property (SPEC §14): a key data sources name as `{{client.prop.KEY}}`, and its value,
# one line of text (it may land in a header, a URL or a SQL parameter).
PropertyKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
PropertyValue = Annotated[StrictStr, StringConstraints(max_length=2000), OneLine]
MAX_PROPERTIES = 100
Properties = Annotated[
    dict[PropertyKey, PropertyValue],
    Field(
        max_length=MAX_PROPERTIES,
        description="Keys `[a-z][a-z0-9_]{0,39}`, values strings of ≤ 2000 characters.",
        # Any other key is refused (422): the document says so, not only `patternProperties`.
        json_schema_extra={"additionalProperties": False},
    ),
]


# Bulk onboarding (SPEC §15)

ImportCell = StrictStr | StrictInt | None


class ImportJson(Strict):
    rows: Annotated[
        list[dict[Annotated[str, StringConstraints(max_length=200)], ImportCell]], Field(max_length=50_000)
    ]


class ImportLine(BaseModel):
    line: int
    ok: bool
    code: str | None = None
    detail: str | None = None
    client_id: int | None = None


class ImportOut(BaseModel):
    valid: bool
    rows: list[ImportLine]
    pool_after: dict[str, dict[str, int]]


class BulkStatus(Strict):
    client_ids: Annotated[
        list[Annotated[StrictInt, Field(ge=INT64_MIN, le=INT64_MAX)]], Field(min_length=1, max_length=10_000)
    ]
    status: SettableStatus
    reason: Reason = ""
    dry_run: bool = False


class BulkStatusLine(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    client_id: int
    from_: str = Field(alias="from")
    to: str
    changed: bool


class BulkStatusOut(BaseModel):
    dry_run: bool
    clients: list[BulkStatusLine]
    pool_after: dict[str, dict[str, int]]
