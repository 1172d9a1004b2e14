"""The client portal's forms: e-mail a dashboard, and for the client's admin its users and
published links. The same use cases as the API and the partner console, seen from the client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from tenantry.api.deps import ClockDep, DbSession, PathId, services
from tenantry.auth.principal import Principal
from tenantry.exports import service as exports_service
from tenantry.exports.api import EmailIn
from tenantry.users import service as users_service
from tenantry.web.console import LinkFormDep, UserFormDep, add_user_action, publish_action, revoke_action
from tenantry.web.routes import (
    CsrfField,
    _act,
    _back,
    _form_sender,
    _may_change,
    _portal_client,
    _viewer,
)

router = APIRouter(prefix="/app", include_in_schema=False)
VIEW_ONLY = "You entered this client in view-only mode: nothing can be changed."


def _portal_form(
    request: Request,
    db: Session,
    clock: ClockDep,
    csrf_token: str,
    back: str,
    action: Callable[[Principal], str],
) -> Response:
    """A portal form: checked, run for the client the portal shows, and back with its outcome."""
    sender = _form_sender(request, db, clock, csrf_token)
    if isinstance(sender, Response):
        return sender
    portal = _portal_client(request, db, clock, sender)
    if isinstance(portal, Response):
        return portal
    signed_in, client = portal
    if not _may_change(signed_in):
        return _back(request, back, error=VIEW_ONLY)
    return _act(request, db, back, lambda: action(_viewer(signed_in, client)))


def _client_id(principal: Principal) -> int:
    assert principal.client_id is not None  # _viewer pins the portal's client
    return principal.client_id


@router.post("/dashboards/{dashboard_id}/email")
def email_dashboard(
    dashboard_id: PathId,
    request: Request,
    db: DbSession,
    clock: ClockDep,
    to: Annotated[str, Form(max_length=254)] = "",
    format: Annotated[str, Form(max_length=10)] = "pdf",
    csrf_token: CsrfField = "",
) -> Response:
    def action(principal: Principal) -> str:
        body = EmailIn.model_validate({"to": [to], "format": format})
        mailer = services(request).mailer
        queued = exports_service.email_dashboard(
            db, clock, principal, mailer, services(request).renderer, dashboard_id, list(body.to), body.format
        )
        if not queued.queued:
            return f"The e-mail was not sent: {queued.reason}"
        return f"The dashboard is on its way to {to} as {body.format.upper()}."

    return _portal_form(request, db, clock, csrf_token, f"/app/dashboards/{dashboard_id}", action)


@router.post("/users")
def add_user(
    request: Request,
    db: DbSession,
    clock: ClockDep,
    form: UserFormDep,
    csrf_token: CsrfField = "",
) -> Response:
    def action(principal: Principal) -> str:
        return add_user_action(request, db, clock, _client_id(principal), form)(principal)

    return _portal_form(request, db, clock, csrf_token, "/app", action)


@router.post("/users/{user_id}/remove")
def remove_user(
    user_id: PathId, request: Request, db: DbSession, clock: ClockDep, csrf_token: CsrfField = ""
) -> Response:
    def action(principal: Principal) -> str:
        users_service.remove_client_user(db, clock, principal, _client_id(principal), user_id)
        return "User removed."

    return _portal_form(request, db, clock, csrf_token, "/app", action)


@router.post("/dashboards/{dashboard_id}/links")
def publish(
    dashboard_id: PathId,
    request: Request,
    db: DbSession,
    clock: ClockDep,
    form: LinkFormDep,
    csrf_token: CsrfField = "",
) -> Response:
    action = publish_action(request, db, clock, dashboard_id, form)
    return _portal_form(request, db, clock, csrf_token, "/app", action)


@router.post("/links/{link_id}/revoke")
def revoke(
    link_id: PathId, request: Request, db: DbSession, clock: ClockDep, csrf_token: CsrfField = ""
) -> Response:
    return _portal_form(request, db, clock, csrf_token, "/app", revoke_action(db, clock, link_id))
