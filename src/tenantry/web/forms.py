"""The forms the partner console and the client portal share (a client's users, published links)
and the download of a dashboard: the same use cases as the API, seen from either side."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, Form, Query
from fastapi.responses import Response
from sqlalchemy.orm import Session

from tenantry.auth.principal import Principal
from tenantry.clock import Clock
from tenantry.dashboards.live import FILTER_PREFIX, Chosen
from tenantry.domains import base_url_of
from tenantry.exports.service import ExportFile
from tenantry.links import service as links_service
from tenantry.links.schemas import LinkCreate, LinkOut
from tenantry.users import service as users_service
from tenantry.users.schemas import ClientUserCreate, ClientUserUpdate


@dataclass(frozen=True)
class UserForm:
    email: str
    name: str
    role: str
    password: str


def user_form(
    email: Annotated[str, Form(max_length=254)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=20)] = "member",
    password: Annotated[str, Form(max_length=200)] = "",
) -> UserForm:
    return UserForm(email, name, role, password)


UserFormDep = Annotated[UserForm, Depends(user_form)]


def add_user(
    db: Session,
    clock: Clock,
    inviter: users_service.Inviter,
    principal: Principal,
    client_id: int,
    form: UserForm,
) -> str:
    """Add a client user (invited by e-mail when no password is given); the sentence to show."""
    data = ClientUserCreate(
        email=form.email,
        name=form.name,
        role=form.role,  # type: ignore[arg-type]
        password=form.password or None,
    )
    user, delivery = users_service.add_client_user(db, clock, inviter, principal, client_id, data)
    if delivery is not None and not delivery.queued:
        return f"{user.name} added; the invitation was not sent ({delivery.reason})."
    if delivery is not None:
        return f"{user.name} added; an invitation is on its way to {user.email}."
    return f"{user.name} added."


def remove_user(db: Session, clock: Clock, principal: Principal, client_id: int, user_id: int) -> str:
    users_service.remove_client_user(db, clock, principal, client_id, user_id)
    return "User removed."


def update_user(
    db: Session, clock: Clock, principal: Principal, client_id: int, user_id: int, name: str, role: str
) -> str:
    """Rename a client user or change its role; the sentence to show."""
    data = ClientUserUpdate(name=name or None, role=role or None)  # type: ignore[arg-type]
    user = users_service.update_client_user(db, clock, principal, client_id, user_id, data)
    return f"{user.name} is saved ({user.role})."


def resend_invitation(
    db: Session,
    clock: Clock,
    inviter: users_service.Inviter,
    principal: Principal,
    client_id: int,
    user_id: int,
) -> str:
    """Send a user who has not chosen a password a new invitation; the sentence to show."""
    sent = users_service.resend_client_invitation(db, clock, inviter, principal, client_id, user_id)
    if sent.queued:
        return "A new invitation is on its way; the earlier link no longer works."
    return f"A new invitation was written to the log ({sent.reason}); the earlier link no longer works."


@dataclass(frozen=True)
class LinkForm:
    name: str
    password: str
    # The sites that may embed the page, separated by spaces, commas or lines; empty: any site.
    allowed_origins: str

    def origins(self) -> list[str] | None:
        given = self.allowed_origins.replace(",", " ").split()
        return given or None


def link_form(
    name: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    allowed_origins: Annotated[str, Form(max_length=7000)] = "",
) -> LinkForm:
    return LinkForm(name, password, allowed_origins)


LinkFormDep = Annotated[LinkForm, Depends(link_form)]


def publish(
    db: Session, clock: Clock, base_url: str, principal: Principal, dashboard_id: int, form: LinkForm
) -> str:
    """Publish a link; its URL is shown once, in the sentence."""
    data = LinkCreate(name=form.name, password=form.password or None, allowed_origins=form.origins())
    link, token = links_service.create_link(db, clock, principal, dashboard_id, data)
    url = LinkOut.of(link, base_url_of(db, principal.partner_id, base_url), token).url
    return f"Published link {link.name} created: {url} (copy it now; it is shown only once)."


def revoke(db: Session, clock: Clock, principal: Principal, link_id: int) -> str:
    links_service.revoke_link(db, clock, principal, link_id)
    return "Published link revoked."


ExportFormat = Annotated[str, Query(pattern="^(pdf|png)$")]


def download(export: ExportFile) -> Response:
    """A dashboard's PDF or PNG, for the browser to save."""
    return Response(
        export.data,
        media_type=export.content_type,
        headers={"Content-Disposition": f'attachment; filename="{export.filename}"'},
    )


# A dashboard's filter bar (SPEC §13): the same `f.<id>` fields as a published page's.


def filter_query(chosen: Chosen) -> str:
    """The chosen values as an address's query (`f.period=last_30_days`), for downloads."""
    return filter_query_of(chosen.raw)


def filter_query_of(values: Mapping[str, str]) -> str:
    return urlencode({FILTER_PREFIX + name: value for name, value in values.items()})
