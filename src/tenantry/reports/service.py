"""Scheduled reports' use cases: manage schedules (API, console, portal) and run a slot (worker).
Services flush, never commit.

Who may schedule: partner admins and editors any dashboard of their partner; a client's admins and
editors their client's dashboards (SPEC §18). Recipients are users of the dashboard's account;
other addresses are for partner admins and editors only (a client user must not turn the product
into a relay to any address). Schedules can be made in any status: the status decides only what
happens at each slot, through the policy table's row for e-mailed dashboards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from tenantry.audit import emit
from tenantry.auth.principal import Principal
from tenantry.branding import brand_for, email_html
from tenantry.clients.schemas import event_client
from tenantry.clock import Clock
from tenantry.dashboards import repository as dashboards_repo
from tenantry.dashboards.live import choose, stored_filters, today_in
from tenantry.db.models import Client, Dashboard
from tenantry.db.report_models import ReportRun, ReportSchedule
from tenantry.domains import partner_base_url
from tenantry.emails import repository as emails_repo
from tenantry.emails import service as emails
from tenantry.errors import EmailLimitReached, Forbidden, InvalidInput, TenantryError
from tenantry.exports.service import ExportFile, Renderer, export_of
from tenantry.lifecycle import trial_of
from tenantry.limits import SCHEDULES_PER_DASHBOARD, check_room
from tenantry.mail import Attachment, Mail, Mailer, one_line
from tenantry.owners import Owner, audit_change, content_status, owner_of, require_builder, require_reader
from tenantry.partners import repository as partners_repo
from tenantry.policy import Capability, Decision, EffectiveStatus, decide, refusal_message
from tenantry.reports import repository as repo
from tenantry.reports.schemas import ScheduleChange, ScheduleCreate, check_days
from tenantry.reports.slots import Rule, latest_slot, next_slot
from tenantry.settings import Settings

REPORT_SENT = "report.sent"
REPORT_FAILED = "report.failed"
# A run this long after its slot (or after missed slots) is marked late.
LATE_AFTER = timedelta(minutes=10)
# Who may send to any address, not only to users of the dashboard's account.
_ANY_ADDRESS_ROLES = ("admin", "editor")


def rule_of(schedule: ReportSchedule) -> Rule:
    hours, minutes = (int(p) for p in schedule.time.split(":"))
    return Rule(
        schedule.frequency, time(hours, minutes), schedule.timezone, schedule.weekday, schedule.day_of_month
    )


# -- managing schedules -------------------------------------------------------------------------


def _dashboard(db: Session, principal: Principal, dashboard_id: int) -> Dashboard:
    return dashboards_repo.get_dashboard(db, principal, dashboard_id)


def schedules_of(
    db: Session, principal: Principal, dashboard_id: int, limit: int, offset: int
) -> tuple[Sequence[ReportSchedule], int]:
    dashboard = _dashboard(db, principal, dashboard_id)  # another tenant's: 404 before the role's 403
    require_reader(principal)
    return repo.schedules_of(db, dashboard.id, limit, offset)


def _check_recipients(
    db: Session, principal: Principal, dashboard: Dashboard, user_ids: Sequence[int], addresses: Sequence[str]
) -> tuple[list[int], list[str]]:
    """The recipients to store: (user ids, other addresses).

    Only partner admins and editors store addresses as such (they may send anywhere). Anyone else
    may name only users of the dashboard's account, so an address they give is stored as its
    user's id: the report follows the user and stops when the user leaves the account, instead of
    going on to an address that is no longer the account's.
    """
    users = repo.account_users(db, dashboard.partner_id, dashboard.client_id)
    unknown = sorted(set(user_ids) - users.keys())
    if unknown:
        raise InvalidInput(
            f"recipients.user_ids: {', '.join(map(str, unknown))} are not users of the dashboard's account.",
            field="recipients.user_ids",
        )
    unique = list(dict.fromkeys(a.lower() for a in addresses))
    if principal.is_partner and principal.role in _ANY_ADDRESS_ROLES:
        return list(dict.fromkeys(user_ids)), unique
    by_address = {email.lower(): user_id for user_id, email in users.items()}
    outside = [a for a in unique if a not in by_address]
    if outside:
        raise Forbidden(
            "recipients.emails: your role may schedule reports only to users of the dashboard's "
            f"account; not to {', '.join(outside)}.",
            field="recipients.emails",
        )
    return list(dict.fromkeys([*user_ids, *(by_address[a] for a in unique)])), []


def _check_filters(
    db: Session, dashboard: Dashboard, filters: Mapping[str, str], now: datetime
) -> dict[str, str]:
    known = stored_filters(dashboard.filters)
    ids = {f.id for f in known}
    for name in filters:
        if name not in ids:
            raise InvalidInput(f"filters.{name}: the dashboard has no such filter.", field=f"filters.{name}")
    today = today_in(partners_repo.days_timezone(db, dashboard.partner_id, dashboard.client_id), now)
    try:
        choose(known, filters, today)
    except InvalidInput as exc:
        field = str(exc.extensions.get("field", "filters")).replace("f.", "filters.", 1)
        raise InvalidInput(exc.detail.replace("f.", "filters.", 1), field=field) from None
    return dict(filters)


def create_schedule(
    db: Session, clock: Clock, principal: Principal, dashboard_id: int, body: ScheduleCreate
) -> ReportSchedule:
    dashboard = _dashboard(db, principal, dashboard_id)  # another tenant's: 404 before the role's 403
    require_builder(principal)
    now = clock.now()
    check_room(SCHEDULES_PER_DASHBOARD, repo.lock_schedules_of(db, dashboard.id))
    user_ids, addresses = _check_recipients(
        db, principal, dashboard, body.recipients.user_ids, body.recipients.emails
    )
    filters = _check_filters(db, dashboard, body.filters, now)
    timezone = body.timezone or partners_repo.days_timezone(db, dashboard.partner_id, dashboard.client_id)
    schedule = ReportSchedule(
        partner_id=dashboard.partner_id,
        client_id=dashboard.client_id,
        dashboard_id=dashboard.id,
        frequency=body.frequency,
        weekday=body.weekday,
        day_of_month=body.day_of_month,
        time=body.time,
        timezone=timezone,
        format=body.format,
        recipient_user_ids=user_ids,
        recipient_emails=addresses,
        subject=body.subject,
        filters=filters,
        created_by=principal.actor,
        emails_set_by=principal.actor,
        created_at=now,
        updated_at=now,
    )
    schedule.next_run_at = next_slot(rule_of(schedule), now)
    db.add(schedule)
    db.flush()
    audit_change(db, principal, dashboard, "report.scheduled", now, {"schedule_id": schedule.id})
    return schedule


def _schedule(
    db: Session, principal: Principal, schedule_id: int, *, lock: bool = False
) -> tuple[ReportSchedule, Dashboard]:
    """The schedule and its dashboard as the caller's tenant sees them (else 404). Callers look
    the object up before they check the role, so another tenant's caller learns nothing (§8).
    With `lock`, the schedule is held: a change and a deletion at once take turns."""
    schedule = repo.get_schedule(db, principal, schedule_id, lock=lock)
    # Through the dashboard's own scoping too: what its caller may not see, it may not change.
    return schedule, _dashboard(db, principal, schedule.dashboard_id)


# What decides a schedule's slots.
_TIMING = ("frequency", "weekday", "day_of_month", "time", "timezone")


def change_schedule(
    db: Session, clock: Clock, principal: Principal, schedule_id: int, body: ScheduleChange
) -> ReportSchedule:
    schedule, dashboard = _schedule(db, principal, schedule_id, lock=True)
    require_builder(principal)
    now = clock.now()
    given = body.model_fields_set
    values: dict[str, Any] = {
        name: getattr(body, name)
        for name in ("frequency", "time", "timezone", "format", "filters")
        if name in given and getattr(body, name) is not None
    }
    for name in ("weekday", "day_of_month", "subject"):
        if name in given:  # null clears it
            values[name] = getattr(body, name)
    frequency = values.get("frequency", schedule.frequency)
    wrong = check_days(
        frequency, values.get("weekday", schedule.weekday), values.get("day_of_month", schedule.day_of_month)
    )
    if wrong is not None:
        raise InvalidInput(f"{wrong[0]}: {wrong[1]}.", field=wrong[0])
    if "recipients" in given:
        if body.recipients is None:
            raise InvalidInput("recipients: a schedule needs at least one recipient.", field="recipients")
        user_ids, addresses = _check_recipients(
            db, principal, dashboard, body.recipients.user_ids, body.recipients.emails
        )
        if addresses != schedule.recipient_emails:
            # The addresses now answer to whoever changed them: their role and e-mails a day.
            schedule.emails_set_by = principal.actor
        schedule.recipient_user_ids, schedule.recipient_emails = user_ids, addresses
    if "filters" in values:
        values["filters"] = _check_filters(db, dashboard, values["filters"], now)
    # Only a new timing moves the next slot: a slot that has come and is not run yet (the worker
    # busy or down) is still sent after a change of anything else, as after any outage.
    retimed = any(values[name] != getattr(schedule, name) for name in _TIMING if name in values)
    for name, value in values.items():
        setattr(schedule, name, value)
    schedule.updated_at = now
    if retimed:
        schedule.next_run_at = next_slot(rule_of(schedule), now)
    db.flush()
    audit_change(db, principal, dashboard, "report.schedule_changed", now, {"schedule_id": schedule.id})
    return schedule


def delete_schedule(db: Session, clock: Clock, principal: Principal, schedule_id: int) -> None:
    schedule, dashboard = _schedule(db, principal, schedule_id, lock=True)
    require_builder(principal)
    repo.delete_schedule(db, schedule.id)
    audit_change(db, principal, dashboard, "report.unscheduled", clock.now(), {"schedule_id": schedule_id})


def runs_of(
    db: Session, principal: Principal, schedule_id: int, limit: int, offset: int
) -> tuple[Sequence[ReportRun], int]:
    schedule, _dashboard_row = _schedule(db, principal, schedule_id)
    require_reader(principal)
    return repo.runs_of(db, schedule.id, limit, offset)


# -- the worker's side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one slot came to: `duplicate` when another worker had already run it, `not_due` when
    the schedule was moved to a later slot after it was claimed (nothing is run)."""

    status: str
    slot: datetime
    late: bool = False
    reason: str | None = None
    # The report's e-mail when it was written to the outbox leased to `held_by`'s worker, for it
    # to send at once.
    mail: Mail | None = None
    mail_id: int | None = None


@dataclass(frozen=True)
class Rendered:
    """A schedule's report rendered ahead of its run (`render_ahead`), and what it was made for."""

    decision: Decision
    format: str
    filters: dict[str, Any]
    export: ExportFile

    def fits(self, schedule: ReportSchedule, decision: Decision) -> bool:
        return (self.decision, self.format, self.filters) == (decision, schedule.format, schedule.filters)


def render_ahead(db: Session, renderer: Renderer, schedule: ReportSchedule, now: datetime) -> Rendered | None:
    """The report of the schedule's slot at `now`, rendered in a read transaction before the run's
    own (the worker does so on SQLite: the run's transaction then holds the database's single
    writer for the writes only, not for the rendering, which takes most of a run). None when there
    is nothing to render (not due, the policy refuses, the render fails): the run finds out and
    says so.

    The run uses it only if the policy's decision, the format and the filters it finds are still
    those it was rendered for, else it renders again; anything else that changed in between is as
    if it had changed just after the report was sent."""
    if schedule.next_run_at > now:
        return None
    # Held while the report is drawn: the session keeps rows only while they are in use, and the
    # drawing reads the client again for its timezone (`partners_repo.days_timezone`).
    owner = owner_of(db, schedule.partner_id, schedule.client_id)
    slot, _late = _slot_of(schedule, now)
    decision = _decision(db, owner, slot, now)[0]
    dashboard = db.get(Dashboard, schedule.dashboard_id)
    if not decision.allowed or dashboard is None:
        return None
    try:
        export = export_of(db, renderer, dashboard, now, schedule.format, schedule.filters, decision)
    except Exception:  # the run renders again, and records the failure
        return None
    return Rendered(decision, schedule.format, dict(schedule.filters), export)


def run_schedule(
    db: Session,
    settings: Settings,
    mailer: Mailer,
    renderer: Renderer,
    schedule: ReportSchedule,
    now: datetime,
    held_by: tuple[str, datetime] | None = None,
    rendered: Rendered | None = None,
) -> Outcome:
    """Run the latest slot that has come (earlier missed ones are not sent: after an outage one
    report, marked late, rather than a pile of stale ones), and move to the next slot after `now`.

    The run's row is claimed first: a slot another worker already ran is not sent again. The
    e-mail goes to the outbox, leased to `held_by` when it is given (see `emails.queue`). A
    schedule whose timing changed after it was claimed may no longer be due: its next slot is sent
    then, not now. `rendered`: the report as `render_ahead` made it, used when it still fits.
    """
    if schedule.next_run_at > now:
        return Outcome("not_due", schedule.next_run_at)
    slot, late = _slot_of(schedule, now)
    schedule.next_run_at = next_slot(rule_of(schedule), max(now, slot))
    run = repo.claim_slot(db, schedule.id, schedule.partner_id, slot, now)
    if run is None:
        db.flush()
        return Outcome("duplicate", slot, late)
    run.late, run.finished_at = late, now
    # Held while the report is drawn, as in `render_ahead`: the drawing reads the client's timezone.
    owner = owner_of(db, schedule.partner_id, schedule.client_id)
    decision, status = _decision(db, owner, slot, now)
    export: ExportFile | str | None = None
    if rendered is not None and rendered.fits(schedule, decision):
        export = rendered.export
    elif decision.allowed and schedule.recipient_emails:
        # Drawn before the row of the user who set the addresses is locked (`_recipients_now`,
        # `_over_daily_limit`): their sign-in and a change of their role wait for the run's writes
        # only, not for the drawing, which takes most of a run.
        export = _draw(db, renderer, schedule, now, decision)
    recipients, outside, left_out = _recipients_now(db, schedule)
    mail = None
    if not decision.allowed:
        run.status, run.reason = "skipped", refusal_message(Capability.DOWNLOAD, status)
    elif not recipients:
        run.status, run.reason = (
            "skipped",
            "No recipient is left: "
            + (_left_out_reason(left_out) if left_out else "the users named have been removed."),
        )
    elif (too_many := _over_daily_limit(db, schedule, now, outside)) is not None:
        run.status, run.reason = "skipped", too_many
    else:
        if export is None:
            export = _draw(db, renderer, schedule, now, decision)
        if isinstance(export, str):
            run.status, run.reason = "failed", export
        else:
            run.mail_id, mail = _send(
                db, settings, mailer, schedule, now, recipients, held_by, export, outside
            )
            run.status, run.recipients = "sent", recipients
            run.watermark = decision is Decision.WATERMARK
            if left_out:  # sent to the account's users only: the run says who was left out, and why
                run.reason = "Sent to the account's users only: " + _left_out_reason(left_out)
    if run.status != "skipped":
        emit(
            db,
            partner_id=schedule.partner_id,
            client_id=schedule.client_id,
            type=REPORT_SENT if run.status == "sent" else REPORT_FAILED,
            at=now,
            data=_event_data(db, schedule, run, now),
        )
    db.flush()
    # `mail` is set only when the e-mail was queued for `held_by`, that is when the run was sent.
    return Outcome(run.status, slot, late, run.reason, mail, run.mail_id if mail is not None else None)


def _slot_of(schedule: ReportSchedule, now: datetime) -> tuple[datetime, bool]:
    """The slot a run at `now` sends (the latest that has come, never one before the schedule's
    due one), and whether the run is late."""
    due_at = schedule.next_run_at
    slot = max(latest_slot(rule_of(schedule), now), due_at)
    return slot, slot > due_at or now - slot > LATE_AFTER


def _decision(db: Session, owner: Owner, slot: datetime, now: datetime) -> tuple[Decision, EffectiveStatus]:
    """What the policy table allows a run at `now` of `slot` (and the status that decided it).
    The slot's status decides (SPEC §17), and a late run may do no more than the status now
    allows either: a slot of an Active client is not sent once the client has been disabled."""
    at_slot = _status_at(db, owner, slot)
    now_status = owner.status(now)
    decisions = [
        (decide(Capability.DOWNLOAD, at_slot), at_slot),
        (decide(Capability.DOWNLOAD, now_status), now_status),
    ]
    for kind in (Decision.REFUSED, Decision.WATERMARK):
        for decision, status in decisions:
            if decision is kind:
                return decision, status
    return decisions[0]


def _status_at(db: Session, owner: Owner, slot: datetime) -> EffectiveStatus:
    """The owner's status at `slot`, which decides the slot (SPEC §17) however late it is run: a
    client disabled at the slot and re-activated before the run sends nothing for it, a Setup slot
    run after the client left Setup carries the watermark.

    The stored status is the one the client has unless it changed after the slot, else the status
    history's. The trial's end is read at the slot with today's trial fields: a client enters
    Trial once, and an extension is granted before the first end, so a slot before an extension
    was inside the trial with either end."""
    client = owner.client
    if client is None:
        return owner.status(slot)
    stored = client.status
    if client.status_changed_at > slot:
        stored = repo.stored_status_at(db, owner.partner_id, client.id, slot) or stored
    return content_status(stored, trial_of(client), slot)


def _recipients_now(db: Session, schedule: ReportSchedule) -> tuple[list[str], int, list[str]]:
    """The named users' addresses as they are now (a removed user is dropped), then the others;
    how many of those are not the address of a user of the account (counted against the daily
    allowance of the user who set them); and the outside addresses left out.

    Only partner admins and editors store addresses outside the account (`_check_recipients`),
    and only while they are: once the user who set them is made a viewer or removed, a slot goes
    to the account's users alone, as that user could no longer send anywhere else by hand."""
    users = repo.account_users(db, schedule.partner_id, schedule.client_id)
    inside = {a.lower() for a in users.values()}
    named = [users[i] for i in schedule.recipient_user_ids if i in users]
    addresses = list(dict.fromkeys(a.lower() for a in schedule.recipient_emails))
    left_out: list[str] = []
    if any(a not in inside for a in addresses) and not _may_send_anywhere(db, schedule):
        left_out = [a for a in addresses if a not in inside]
        addresses = [a for a in addresses if a in inside]
    recipients = list(dict.fromkeys(a.lower() for a in [*named, *addresses]))
    return recipients, sum(1 for a in recipients if a not in inside), left_out


def _may_send_anywhere(db: Session, schedule: ReportSchedule) -> bool:
    """Whether the user who set the schedule's addresses is still a partner admin or editor of
    the schedule's partner."""
    return repo.partner_role(db, schedule.partner_id, schedule.emails_set_by) in _ANY_ADDRESS_ROLES


def _left_out_reason(left_out: Sequence[str]) -> str:
    many = len(left_out) != 1
    return (
        f"the {len(left_out)} address{'es' if many else ''} outside the account "
        f"({', '.join(left_out)}) {'were' if many else 'was'} left out, as the user who set "
        f"{'them' if many else 'it'} is no longer a partner admin or editor."
    )


def _over_daily_limit(db: Session, schedule: ReportSchedule, now: datetime, outside: int) -> str | None:
    """Why the run may not send to its `outside` addresses, or None: they count against the 50
    recipients a day of dashboard e-mails (SPEC §12) of the user who set them (`emails_set_by`,
    who may not be the schedule's creator), like the e-mails they send by hand, so schedules
    cannot carry a user past them. That user's sending is serialised first."""
    if outside == 0:
        return None
    emails_repo.lock_actor(db, schedule.emails_set_by)
    try:
        emails.require_room_of(db, schedule.emails_set_by, now, outside)
    except EmailLimitReached:
        many = outside != 1
        return (
            f"The report's {outside} address{'es' if many else ''} outside the account would take "
            f"the user who set {'them' if many else 'it'} past {emails.DASHBOARD_EMAILS_PER_DAY} "
            "recipients of dashboard e-mails in 24 hours."
        )
    return None


def _draw(
    db: Session, renderer: Renderer, schedule: ReportSchedule, now: datetime, decision: Decision
) -> ExportFile | str:
    """The report of the slot as the policy table allowed it (`decision`: watermarked or clean), or
    why it could not be drawn (a fixed sentence, never an error's text)."""
    dashboard = db.get(Dashboard, schedule.dashboard_id)
    assert dashboard is not None  # deleting a dashboard deletes its schedules
    try:
        return export_of(db, renderer, dashboard, now, schedule.format, schedule.filters, decision)
    except TenantryError as exc:
        return exc.detail
    except DBAPIError:
        # The database's fault, not the dashboard's: nothing of the run is kept, and the slot runs
        # again once the schedule's lease is given back or runs out.
        raise
    except Exception:
        return "The dashboard could not be rendered."


def _send(
    db: Session,
    settings: Settings,
    mailer: Mailer,
    schedule: ReportSchedule,
    now: datetime,
    recipients: list[str],
    held_by: tuple[str, datetime] | None,
    export: ExportFile,
    outside: int = 0,
) -> tuple[int | None, Mail | None]:
    """Write the report's e-mail, with its `export` attached, to the outbox: its outbox id, and the
    e-mail when it is left to `held_by`'s worker to send (not when there is no SMTP server: then it
    was written to the log). It is sent for the user who set the schedule's addresses, its
    `outside` recipients counted against their daily allowance."""
    dashboard = db.get(Dashboard, schedule.dashboard_id)
    assert dashboard is not None  # deleting a dashboard deletes its schedules
    brand = brand_for(db, schedule.partner_id, schedule.client_id)
    name = one_line(dashboard.name)
    base = partner_base_url(db, settings, schedule.partner_id)
    path = f"/app/dashboards/{dashboard.id}" if dashboard.client_id is not None else "/partner"
    text = (
        f"The scheduled report of the dashboard “{name}” is attached ({export.filename}).\n\n"
        f"Open the dashboard: {base}{path}"
    )
    mail = Mail(
        to=recipients,
        subject=one_line(schedule.subject or dashboard.name),
        text=text,
        html=email_html(brand, text, link=f"{base}{path}", link_text="Open the dashboard", base_url=base),
        attachments=[Attachment(export.filename, export.content_type, export.data)],
        from_name=brand.sender_name,
    )
    queued = emails.queue(
        db,
        mailer,
        now,
        mail,
        partner_id=schedule.partner_id,
        kind="dashboard",
        sent_by=schedule.emails_set_by,
        held_by=held_by,
        counted=outside,
    )
    return queued.mail_id, (mail if queued.queued and held_by is not None else None)


def mail_failed(db: Session, mail_id: int, reason: str | None, now: datetime) -> bool:
    """The e-mail of a run failed for good (refused, or not taken within its retry window): the run
    becomes `failed` with the mail's reason, and `report.failed` is written. False when the mail
    was not a report's."""
    run = repo.run_of_mail(db, mail_id)
    if run is None or run.status != "sent":
        return False
    schedule = db.get(ReportSchedule, run.schedule_id)
    if schedule is None:
        return False
    run.status, run.reason, run.finished_at = "failed", reason or "The e-mail could not be sent.", now
    emit(
        db,
        partner_id=schedule.partner_id,
        client_id=schedule.client_id,
        type=REPORT_FAILED,
        at=now,
        data=_event_data(db, schedule, run, now),
    )
    db.flush()
    return True


def _event_data(db: Session, schedule: ReportSchedule, run: ReportRun, now: datetime) -> dict[str, Any]:
    """A run's event: the client as every event carries it (null for a partner's own dashboard),
    and the run."""
    client = None if schedule.client_id is None else db.get(Client, schedule.client_id)
    return {
        "client": event_client(client, now),
        "schedule_id": schedule.id,
        "dashboard_id": schedule.dashboard_id,
        "client_id": schedule.client_id,
        "slot": run.slot.isoformat(),
        "status": run.status,
        "reason": run.reason,
        "late": run.late,
        "recipients": list(run.recipients),
        "format": schedule.format,
    }
