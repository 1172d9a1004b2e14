"""Bulk onboarding (SPEC §15): importing many clients at once, and changing many clients' status.

Both are all or nothing. Every line (or client) is checked first, the pool once for the whole set
under the partner lock, and only then is anything written; a refusal answers what each line would
have met, so a file can be fixed in one pass. Services flush, never commit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from tenantry import lifecycle, pool
from tenantry.audit import audit
from tenantry.auth.principal import Principal
from tenantry.clients import repository as repo
from tenantry.clients import service
from tenantry.clients.schemas import MAX_PROPERTIES, ClientCreate, Properties
from tenantry.clock import Clock
from tenantry.db.models import Client, Partner
from tenantry.errors import InvalidInput, NotFound, TenantryError
from tenantry.fields import INT64_MAX, Email, Name
from tenantry.partners import repository as partners_repo
from tenantry.policy import Capability, EffectiveStatus, Status, counts_against_pool, decide
from tenantry.templates import repository as templates_repo
from tenantry.templates import service as templates
from tenantry.users import service as users_service
from tenantry.vault import Vault

COLUMNS: tuple[str, ...] = (
    "name",
    "external_id",
    "status",
    *pool.RESOURCES,
    "admin_email",
    "admin_name",
    "template_id",
    "timezone",
)
PROPERTY_PREFIX = "prop."
MAX_ROWS = 50_000
# The known columns and a client's properties: a wider header is a mistake in the whole file.
MAX_COLUMNS = len(COLUMNS) + MAX_PROPERTIES

_EMAIL: TypeAdapter[str] = TypeAdapter(Email)
_NAME: TypeAdapter[str] = TypeAdapter(Name)
_PROPERTIES: TypeAdapter[dict[str, str]] = TypeAdapter(Properties)


@dataclass
class Line:
    """One line of an import: what it asks for, or why it cannot be applied."""

    line: int
    client: ClientCreate | None = None
    admin: tuple[str, str] | None = None
    properties: dict[str, str] = field(default_factory=dict)
    template_id: int | None = None
    code: str | None = None
    detail: str | None = None
    client_id: int | None = None

    def refuse(self, code: str, detail: str) -> None:
        if self.code is None:  # the first reason is the one to fix first
            self.code, self.detail = code, detail

    def out(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"line": self.line, "ok": self.code is None}
        if self.code is not None:
            answer |= {"code": self.code, "detail": self.detail}
        if self.client_id is not None:
            answer["client_id"] = self.client_id
        return answer


@dataclass(frozen=True)
class ImportResult:
    valid: bool
    rows: list[dict[str, Any]]
    pool_after: dict[str, dict[str, int]]

    def out(self) -> dict[str, Any]:
        return {"valid": self.valid, "rows": self.rows, "pool_after": self.pool_after}


class ImportRefused(TenantryError):
    """A file with at least one line that cannot be applied: nothing was applied."""

    code, status, title = "import_refused", 422, "Import refused"


def check_columns(columns: Sequence[str]) -> None:
    """A column the importer does not know, or one named twice (which of its cells was meant?), is
    a mistake in the whole file, not in one line."""
    if len(columns) > MAX_COLUMNS:
        raise InvalidInput(
            f"The file has {len(columns):,} columns; an import takes at most {MAX_COLUMNS} "
            f"({len(COLUMNS)} columns and {MAX_PROPERTIES} properties).",
            field="columns",
        )
    twice = sorted(column for column, count in Counter(columns).items() if count > 1)
    if twice:
        raise InvalidInput(f"The column {twice[0]!r} is named twice; name each column once.", field=twice[0])
    for column in columns:
        if column in COLUMNS:
            continue
        if column.startswith(PROPERTY_PREFIX) and column != PROPERTY_PREFIX:
            continue
        raise InvalidInput(
            f"Unknown column {column!r}: columns are {', '.join(COLUMNS)} and prop.KEY.", field=column
        )
    if "name" not in columns:
        raise InvalidInput("The file needs a name column.", field="name")


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


# An amount of more digits than this is out of range whatever it is (the largest is 2,000,000,000).
_MOST_DIGITS = 20
_TOO_LARGE = 10**_MOST_DIGITS


def _amount(value: object) -> int | None:
    """A number of a CSV cell or a JSON value; None when it is not a whole number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    digits = value.strip() if isinstance(value, str) else ""
    # More digits than any amount has is out of range, not a number to convert (Python refuses to
    # convert more than 4,300 digits at all).
    if digits.isascii() and digits.isdigit():
        return int(digits) if len(digits) <= _MOST_DIGITS else _TOO_LARGE
    return None


def _first_error(error: ValidationError, prefix: str = "") -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or prefix
    return f"{prefix or where}: {first['msg']}"


def _read_line(number: int, row: Mapping[str, object]) -> Line:
    line = Line(number)
    body: dict[str, Any] = {"name": "" if _blank(row.get("name")) else row["name"]}
    if _blank(row.get("name")):
        line.refuse("missing_name", "The name is missing.")
        return line
    if not _blank(row.get("external_id")):
        body["external_id"] = row["external_id"]
    if not _blank(row.get("timezone")):
        body["timezone"] = str(row["timezone"]).strip()
    if not _blank(row.get("status")):
        status = str(row["status"]).strip().lower()
        if status not in {s.value for s in Status}:
            line.refuse(
                "unknown_status", f"Unknown status {row['status']!r}: setup, trial, active or disabled."
            )
            return line
        body["status"] = status
    resources: dict[str, int] = {}
    for resource in pool.RESOURCES:
        if _blank(row.get(resource)):
            continue
        amount = _amount(row[resource])
        if amount is None or not 0 <= amount <= 2_000_000_000:
            line.refuse("out_of_range", f"{resource} must be a whole number from 0 to 2000000000.")
            return line
        resources[resource] = amount
    if resources:
        body["resources"] = resources
    try:
        line.client = ClientCreate.model_validate(body)
    except ValidationError as error:
        line.refuse("validation_error", _first_error(error))
        return line
    if not _blank(row.get("admin_email")):
        try:
            email = _EMAIL.validate_python(row["admin_email"])
        except ValidationError as error:
            line.refuse("bad_email", _first_error(error, "admin_email"))
            return line
        try:
            name = _NAME.validate_python(row["admin_name"] if not _blank(row.get("admin_name")) else email)
        except ValidationError as error:
            line.refuse("validation_error", _first_error(error, "admin_name"))
            return line
        line.admin = (email, name)
    if not _blank(row.get("template_id")):
        template_id = _amount(row["template_id"])
        if template_id is None or not 1 <= template_id <= INT64_MAX:  # no template has another id
            line.refuse("unknown_template", f"No template {row['template_id']!r}.")
            return line
        line.template_id = template_id
    props = {
        k[len(PROPERTY_PREFIX) :]: v
        for k, v in row.items()
        if k.startswith(PROPERTY_PREFIX) and not _blank(v)
    }
    try:
        line.properties = _PROPERTIES.validate_python({k: str(v) for k, v in props.items()})
    except ValidationError as error:
        line.refuse("validation_error", _first_error(error, "prop"))
    return line


def _check_admin(line: Line) -> None:
    """The first admin is a client user: the status must allow users and the allocation hold one."""
    assert line.client is not None
    status = EffectiveStatus(line.client.status)
    if line.admin is not None and not decide(Capability.MANAGE_USERS, status).allowed:
        line.refuse(
            "status_forbids",
            f"An admin cannot be added to a client created in {status.value.capitalize()} mode.",
        )
    given = line.client.resources.given() if line.client.resources else {}
    if line.admin is not None and given.get("users", 0) < 1:
        line.refuse("allocation_exceeded", "An admin needs at least one user allocated to the client.")


def _check_pool(partner: Partner, lines: Sequence[Line]) -> dict[str, dict[str, int]]:
    """Add up what the lines take from the pool, in order; the line where it runs out is refused
    (and every later one that takes more of that resource). Returns the pool as it would be after."""
    lines_now = partners_repo.pool_lines(partner)
    taken = pool.zero()
    for line in lines:
        if line.client is None or line.code is not None:
            continue
        status = Status(line.client.status)
        allocation = {**pool.zero(), **(line.client.resources.given() if line.client.resources else {})}
        counted = pool.counted_allocation(allocation, counts_against_pool(status))
        try:
            pool.check_fits(lines_now, {r: taken[r] + counted[r] for r in pool.RESOURCES})
        except TenantryError as refusal:
            line.refuse(refusal.code, refusal.detail)
            continue
        taken = {r: taken[r] + counted[r] for r in pool.RESOURCES}
    return _pool_after(lines_now, taken)


def _pool_after(lines: Mapping[str, pool.PoolLine], taken: Mapping[str, int]) -> dict[str, dict[str, int]]:
    return {
        r: pool.PoolLine(r, line.total, line.used_by_partner, line.allocated + taken.get(r, 0)).as_dict()
        for r, line in lines.items()
    }


def _check_templates(db: Session, caller: Principal, lines: Sequence[Line]) -> None:
    wanted = [line for line in lines if line.template_id is not None and line.code is None]
    if not wanted:
        return
    known: dict[int, bool] = {}
    for line in wanted:
        assert line.template_id is not None
        if line.template_id not in known:
            try:
                templates_repo.get_template(db, caller, line.template_id)
                known[line.template_id] = True
            except NotFound:  # another partner's template is not found either
                known[line.template_id] = False
        if not known[line.template_id]:
            line.refuse("unknown_template", f"No template {line.template_id}.")


def import_clients(
    db: Session,
    clock: Clock,
    caller: Principal,
    inviter: users_service.Inviter,
    rows: Sequence[tuple[int, Mapping[str, object]]],
    *,
    dry_run: bool,
    vault: Vault,
) -> ImportResult:
    """Create one client per row (numbered as the caller reads them), all of them or none.

    A dry run answers what would happen and changes nothing (the templates are deployed in a
    rehearsal that is rolled back); a refused file raises `ImportRefused` carrying the same answer.
    """
    caller.require_write()
    if len(rows) > MAX_ROWS:
        raise InvalidInput(f"An import holds at most {MAX_ROWS} lines.", field="rows")
    now = clock.now()
    partner = partners_repo.lock_partner(db, caller.partner_id)
    lines = [_read_line(number, row) for number, row in rows]
    seen: dict[str, int] = {}
    for line in lines:
        if line.client is None or line.code is not None:
            continue
        _check_admin(line)
        external_id = line.client.external_id
        if external_id is not None:
            if external_id in seen:
                line.refuse("duplicate", f"external_id {external_id!r} is also on line {seen[external_id]}.")
            seen.setdefault(external_id, line.line)
        if line.client.status == Status.ACTIVE.value:
            missing = lifecycle.activation_missing(
                line.client.resources.given() if line.client.resources else {}
            )
            if missing:
                line.refuse(
                    "activation_requirements_unmet",
                    "An Active client needs at least one dashboard and one user allocated.",
                )
    taken = repo.external_ids_taken(db, partner.id, list(seen))
    for line in lines:
        if line.client is not None and line.client.external_id in taken:
            line.refuse("duplicate", f"A client with external_id {line.client.external_id!r} already exists.")
    _check_templates(db, caller, lines)
    pool_after = _check_pool(partner, lines)
    valid = all(line.code is None for line in lines)
    if not valid:
        answer = ImportResult(False, [line.out() for line in lines], pool_after)
        if dry_run:
            return answer
        bad = next(line for line in lines if line.code is not None)
        raise ImportRefused(
            f"Nothing was imported: line {bad.line} ({bad.code}): {bad.detail}", **answer.out()
        )
    if dry_run:
        if any(line.template_id is not None for line in lines):
            _rehearse_templates(db, clock, caller, partner, lines, vault)
        valid = all(line.code is None for line in lines)
        return ImportResult(valid, [line.out() for line in lines], pool_after)
    created = _add_clients(db, caller, partner, lines, now)
    admins = [(client, *line.admin) for line, client in zip(lines, created, strict=True) if line.admin]
    users_service.invite_client_admins(db, inviter, now, caller, admins)
    # All or nothing: a new client the template cannot fit (its allocation too small for the
    # template's dashboards) refuses the file; the request's rollback undoes the clients created.
    if _deploy_templates(db, clock, caller, lines, vault):
        for line in lines:
            line.client_id = None
        answer = ImportResult(False, [line.out() for line in lines], pool_after)
        bad = next(line for line in lines if line.code is not None)
        raise ImportRefused(
            f"Nothing was imported: line {bad.line} ({bad.code}): {bad.detail}", **answer.out()
        )
    db.flush()
    return ImportResult(
        True, [line.out() for line in lines], _pool_after(partners_repo.pool_lines(partner), {})
    )


def _add_clients(
    db: Session, caller: Principal, partner: Partner, lines: Sequence[Line], now: datetime
) -> list[Client]:
    """The lines' clients, made with their properties; each line learns its client's id."""
    created = service.add_clients(
        db, partner, [line.client for line in lines if line.client], now, caller.actor
    )
    for line, client in zip(lines, created, strict=True):
        line.client_id = client.id
        if line.properties:
            repo.replace_properties(db, client.id, line.properties)
    return created


def _rehearse_templates(
    db: Session, clock: Clock, caller: Principal, partner: Partner, lines: Sequence[Line], vault: Vault
) -> None:
    """For a dry run: whether each line's template fits its new client is known only by deploying
    it (its dashboards against the client's allocation, the per-owner limits), so the clients are
    made and the templates deployed in a savepoint that is then rolled back; the lines whose client
    a template cannot fit are refused as the import would refuse them. No one is invited."""
    rehearsal = db.begin_nested()
    try:
        _add_clients(db, caller, partner, lines, clock.now())
        _deploy_templates(db, clock, caller, lines, vault)
    finally:
        rehearsal.rollback()
        for line in lines:
            line.client_id = None


def _deploy_templates(
    db: Session, clock: Clock, caller: Principal, lines: Sequence[Line], vault: Vault
) -> list[Line]:
    """Deploy each line's template to its new client; the lines whose client it cannot fit."""
    by_template: dict[int, list[Line]] = {}
    for line in lines:
        if line.template_id is not None and line.client_id is not None:
            by_template.setdefault(line.template_id, []).append(line)
    refused: list[Line] = []
    for template_id, of_template in by_template.items():
        by_client = {line.client_id: line for line in of_template}
        client_ids = [line.client_id for line in of_template if line.client_id is not None]
        deployed = templates.deploy(db, clock, caller, template_id, client_ids, dry_run=False, vault=vault)
        for skip in deployed.skipped:
            line = by_client[skip.client_id]
            line.refuse(skip.code, f"Template {template_id}: {skip.detail}")
            refused.append(line)
    return refused


# Bulk status


@dataclass(frozen=True)
class StatusOutcome:
    client_id: int
    from_: str
    to: str
    changed: bool

    def out(self) -> dict[str, Any]:
        return {"client_id": self.client_id, "from": self.from_, "to": self.to, "changed": self.changed}


def bulk_status(
    db: Session,
    clock: Clock,
    caller: Principal,
    client_ids: Sequence[int],
    target: Status,
    reason: str,
    *,
    dry_run: bool,
) -> tuple[list[StatusOutcome], dict[str, dict[str, int]]]:
    """Move every one of these clients to `target`, or none: the first refusal names its client."""
    caller.require_write()
    now = clock.now()
    partner = partners_repo.lock_partner(db, caller.partner_id)
    clients = repo.clients_of_partner(db, partner.id, client_ids)
    missing = [i for i in dict.fromkeys(client_ids) if i not in clients]
    if missing:
        raise NotFound(f"No client {missing[0]}.", client_ids=missing)
    change = pool.zero()
    outcomes: list[StatusOutcome] = []
    for client_id in dict.fromkeys(client_ids):
        client = clients[client_id]
        current = Status(client.status)
        try:
            _check_status_change(client, current, target)
        except TenantryError as refusal:
            refusal.extensions["client_id"] = client_id
            refusal.detail = f"Client {client_id} ({client.name}): {refusal.detail}"
            raise
        allocation = repo.allocation_of(client)
        before = pool.counted_allocation(allocation, counts_against_pool(current))
        after = pool.counted_allocation(allocation, counts_against_pool(target))
        change = {r: change[r] + after[r] - before[r] for r in pool.RESOURCES}
        outcomes.append(StatusOutcome(client_id, current.value, target.value, current is not target))
    lines = partners_repo.pool_lines(partner)
    pool.check_fits(lines, change)
    if dry_run:
        return outcomes, _pool_after(lines, change)
    for outcome in outcomes:
        if not outcome.changed:
            continue
        client = clients[outcome.client_id]
        service.move_to(db, partner, client, target, now, caller.actor, reason)
        audit(
            db,
            partner_id=partner.id,
            client_id=client.id,
            actor=caller.actor,
            action="client.updated",
            target=f"client:{client.id}",
            at=now,
            details={"status": {"from": outcome.from_, "to": outcome.to}},
        )
    db.flush()
    return outcomes, _pool_after(partners_repo.pool_lines(partner), {})


def _check_status_change(client: Client, current: Status, target: Status) -> None:
    lifecycle.check_transition(current, target)
    if current is target:
        return
    allocation = repo.allocation_of(client)
    if target is Status.ACTIVE:
        lifecycle.check_activation(allocation)
    if counts_against_pool(target):
        pool.check_usage_within(allocation, repo.usage_of(client), entering=not counts_against_pool(current))
