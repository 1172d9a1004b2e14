"""Download and e-mail a dashboard as PDF or PNG.

Seed: in Setup every klip carries the SETUP MODE watermark; in Trial and Active none; when
disabled or in an expired trial both are refused. The policy table decides all three.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tenantry.auth.principal import Principal
from tenantry.branding import brand_for, email_html, recolour
from tenantry.branding.service import export_logo
from tenantry.clock import Clock
from tenantry.dashboards import repository as dashboards_repo
from tenantry.dashboards.live import LiveCache, draw_klips, today_in
from tenantry.db.models import Dashboard
from tenantry.domains import partner_base_url
from tenantry.emails import repository as emails_repo
from tenantry.emails import service as emails
from tenantry.emails.service import Queued
from tenantry.errors import Forbidden, InvalidInput
from tenantry.exports.typeset import CONTENT_TYPES, Typesetter
from tenantry.mail import Attachment, Mail, Mailer, one_line
from tenantry.owners import audit_change, owner_of
from tenantry.partners import repository as partners_repo
from tenantry.policy import Capability, Decision
from tenantry.settings import Settings


@dataclass(frozen=True)
class Renderer:
    """What an app draws and typesets with: its klip drawings and its Typst compiler."""

    live: LiveCache
    typesetter: Typesetter


def new_renderer() -> Renderer:
    return Renderer(LiveCache(), Typesetter())


@dataclass(frozen=True)
class ExportFile:
    filename: str
    content_type: str
    data: bytes


def _filename(dashboard: Dashboard, stamp: str, fmt: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", dashboard.name.lower()).strip("-")[:60] or "dashboard"
    return f"{slug}-{stamp}.{fmt}"


def render_export(
    db: Session,
    clock: Clock,
    principal: Principal,
    renderer: Renderer,
    dashboard_id: int,
    fmt: str,
    filters: Mapping[str, str] | None = None,
) -> ExportFile:
    """The dashboard as a file, with the filter values given as on its page (`f.<id>`)."""
    dashboard = dashboards_repo.get_dashboard(db, principal, dashboard_id)
    return _export(db, renderer, dashboard, clock.now(), fmt, filters)


def _export(
    db: Session,
    renderer: Renderer,
    dashboard: Dashboard,
    now: datetime,
    fmt: str,
    filters: Mapping[str, str] | None = None,
    decision: Decision | None = None,
) -> ExportFile:
    """The file; `decision` is the policy table's, when the caller already asked it."""
    if decision is None:
        decision = owner_of(db, dashboard.partner_id, dashboard.client_id).require(Capability.DOWNLOAD, now)
    watermark = decision is Decision.WATERMARK
    timezone = partners_repo.days_timezone(db, dashboard.partner_id, dashboard.client_id)
    today = today_in(timezone, now)
    _version, drawings = draw_klips(
        db,
        dashboard,
        cache=renderer.live,
        watermark=watermark,
        filters=filters,
        today=today,
        timezone=timezone,
    )
    brand = brand_for(db, dashboard.partner_id, dashboard.client_id)
    data = renderer.typesetter.typeset(
        fmt,
        title=dashboard.name,
        subtitle=now.strftime("%Y-%m-%d %H:%M UTC"),
        klips=[(d.title, recolour(d.svg, brand), d.size.w, d.size.h) for d in drawings],
        timestamp=now,
        brand={"name": brand.product_name, "color": brand.primary_color, "logo": export_logo(db, brand)},
    )
    # Named after the day it is for the client, the day its date filters count from.
    return ExportFile(_filename(dashboard, today.isoformat(), fmt), CONTENT_TYPES[fmt], data)


def export_of(
    db: Session,
    renderer: Renderer,
    dashboard: Dashboard,
    now: datetime,
    fmt: str,
    filters: Mapping[str, str] | None = None,
    decision: Decision | None = None,
) -> ExportFile:
    """A dashboard already found, as a file (a scheduled report's attachment): the policy table
    decides as for a download, watermark included (`decision`: what it decided, when the caller
    already asked it)."""
    return _export(db, renderer, dashboard, now, fmt, filters, decision)


@dataclass(frozen=True)
class DashboardEmail:
    """A dashboard e-mail checked and drawn, not yet queued (`draw_dashboard_email`)."""

    dashboard_id: int
    recipients: list[str]
    fmt: str
    filters: Mapping[str, str] | None
    decision: Decision  # what the policy table allowed when it was drawn (watermarked or clean)
    export: ExportFile


def draw_dashboard_email(
    db: Session,
    clock: Clock,
    principal: Principal,
    renderer: Renderer,
    dashboard_id: int,
    to: list[str],
    fmt: str,
    filters: Mapping[str, str] | None = None,
) -> DashboardEmail:
    """Check an e-mail of the dashboard and draw its attachment, in a read-only transaction: the
    drawing takes a while, and no write lock (SQLite's is the whole database's) is held meanwhile.
    A request it refuses draws nothing. `email_dashboard` then checks again and queues it."""
    dashboard = dashboards_repo.get_dashboard(db, principal, dashboard_id)
    now = clock.now()
    recipients = _recipients(to)
    decision = _may_email(db, principal, dashboard, now, recipients, lock=False)
    export = _export(db, renderer, dashboard, now, fmt, filters, decision)
    return DashboardEmail(dashboard.id, recipients, fmt, filters, decision, export)


def email_dashboard(
    db: Session,
    clock: Clock,
    principal: Principal,
    mailer: Mailer,
    renderer: Renderer,
    drawn: DashboardEmail,
    settings: Settings,
) -> Queued:
    """Queue the dashboard drawn by `draw_dashboard_email` as an e-mail attachment; the worker
    sends it after commit.

    Everything is checked again in this (write) transaction, the daily count under the sender's
    lock: read-only roles may send it only to users of their own account, and every user sends at
    most 50 a day (recipients counted): the product must not become an open relay. Should the
    status have changed since the drawing (a watermark now due, or no longer), it is drawn again.
    """
    dashboard = dashboards_repo.get_dashboard(db, principal, drawn.dashboard_id)
    now = clock.now()
    recipients = drawn.recipients
    decision = _may_email(db, principal, dashboard, now, recipients, lock=True)
    export = drawn.export
    if decision is not drawn.decision:
        export = _export(db, renderer, dashboard, now, drawn.fmt, drawn.filters, decision)
    name = one_line(dashboard.name)
    brand = brand_for(db, dashboard.partner_id, dashboard.client_id)
    text = f"The dashboard “{name}” is attached ({export.filename}).\n\n{brand.product_name}"
    mail = Mail(
        to=recipients,
        subject=f"Dashboard: {name}",
        text=text,
        html=email_html(brand, text, base_url=partner_base_url(db, settings, dashboard.partner_id)),
        attachments=[Attachment(export.filename, export.content_type, export.data)],
        from_name=brand.sender_name,
    )
    queued = emails.queue(
        db, mailer, now, mail, partner_id=dashboard.partner_id, kind="dashboard", sent_by=principal.actor
    )
    details = {
        "to": recipients,
        "format": drawn.fmt,
        "queued": queued.queued,
        "filters": dict(drawn.filters or {}),
    }
    audit_change(db, principal, dashboard, "dashboard.emailed", now, details)
    return queued


def _may_email(
    db: Session,
    principal: Principal,
    dashboard: Dashboard,
    now: datetime,
    recipients: list[str],
    *,
    lock: bool,
) -> Decision:
    """The status first (409 when it forbids e-mailing), then who may be e-mailed, then how many
    (under the sender's lock when `lock`). The policy table's decision: watermarked or clean."""
    decision = owner_of(db, dashboard.partner_id, dashboard.client_id).require(Capability.DOWNLOAD, now)
    _require_recipients_allowed(db, principal, recipients)
    emails.require_daily_room(db, principal, now, len(recipients), lock=lock)
    return decision


def _recipients(to: list[str]) -> list[str]:
    """The addresses once each (whatever their case), none able to break a header."""
    unique: dict[str, str] = {}
    for address in (a.strip() for a in to):
        if one_line(address) != address or "," in address:
            raise InvalidInput("An e-mail address may not hold control characters or commas.", field="to")
        unique.setdefault(address.lower(), address)
    return list(unique.values())


def _require_recipients_allowed(db: Session, principal: Principal, recipients: list[str]) -> None:
    """A partner viewer may e-mail only the partner's users; a client member only the client's."""
    if principal.is_partner and principal.role == "viewer":
        allowed, whose = emails_repo.partner_user_emails(db, principal.partner_id), "your partner account"
    elif not principal.is_partner and principal.role == "member":
        assert principal.client_id is not None  # a client user belongs to a client
        allowed, whose = emails_repo.client_user_emails(db, principal.client_id), "your client account"
    else:
        return
    outside = [address for address in recipients if address.lower() not in allowed]
    if outside:
        raise Forbidden(
            f"Your role may e-mail dashboards only to users of {whose}; not to {', '.join(outside)}.",
            recipients=outside,
        )
