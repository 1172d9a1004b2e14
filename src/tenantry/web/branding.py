"""The Branding page of the partner console (/partner/branding): the brand's fields, the logo
(uploaded as a multipart form with the CSRF token), and a preview that htmx redraws from the form
as it is, nothing saved. Clients' logos are set from their pages (/partner/clients/<id>)."""

from __future__ import annotations

from dataclasses import replace
from html import escape
from typing import Annotated

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from tenantry import branding as brands
from tenantry.api.deps import ClockDep, PathId, WorkDep
from tenantry.auth.sessions import SignedIn
from tenantry.branding import service
from tenantry.branding.logos import MAX_LOGO_BYTES
from tenantry.branding.preview import preview_img
from tenantry.branding.schemas import BrandingOut, BrandingUpdate
from tenantry.clock import Clock
from tenantry.errors import PayloadTooLarge
from tenantry.web.pages import PageRoute, Refused, Visit, Visitor, form_sender, page

router = APIRouter(include_in_schema=False, route_class=PageRoute)

PAGE = "/partner/branding"
Text = Annotated[str, Form(max_length=1000)]
BrandingForm = Annotated[Visit, form_sender(back_to=PAGE)]
ClientLogoForm = Annotated[Visit, form_sender(back_to="/partner/clients/{client_id}")]


def _fields(
    product_name: str,
    primary_color: str,
    accent_color: str,
    email_from_name: str,
    support_email: str,
    footer_text: str,
) -> BrandingUpdate:
    """The form as the API's body: a malformed field is refused naming it, as the API does."""
    return BrandingUpdate(
        product_name=product_name,
        primary_color=primary_color,
        accent_color=accent_color or None,
        email_from_name=email_from_name or None,
        support_email=support_email.strip() or None,
        footer_text=footer_text or None,
    )


def _page(db: Session, visit: Visit) -> tuple[SignedIn, BrandingOut, str]:
    signed_in = visit.console(db)
    current = brands.read_brand(db, signed_in.principal.partner_id)
    return signed_in, service.read_branding(db, signed_in.principal), _preview_of(db, current)


@router.get(PAGE, response_class=HTMLResponse)
async def branding_page(request: Request, visit: Visitor, work: WorkDep) -> Response:
    """The brand's fields, logo and preview; admins may change them, others see them."""
    signed_in, current, preview = await work(_page, visit)
    return page(
        request,
        signed_in,
        "partner_branding.html",
        current=current,
        can_change=signed_in.principal.role == "admin",
        preview=preview,
        max_logo_kb=MAX_LOGO_BYTES // 1024,
    )


def _save(db: Session, visit: Visit, clock: Clock, fields: dict[str, str]) -> str:
    principal = visit.console(db).principal
    service.update_branding(db, clock, principal, _fields(**fields))
    return "Branding saved."


@router.post(PAGE)
async def save_branding(
    visit: BrandingForm,
    work: WorkDep,
    clock: ClockDep,
    product_name: Text = "",
    primary_color: Text = "",
    accent_color: Text = "",
    email_from_name: Text = "",
    support_email: Text = "",
    footer_text: Text = "",
) -> Response:
    fields = {
        "product_name": product_name,
        "primary_color": primary_color,
        "accent_color": accent_color,
        "email_from_name": email_from_name,
        "support_email": support_email,
        "footer_text": footer_text,
    }
    return visit.done(await work(_save, visit, clock, fields))


def _fragment_refusal(visit: Visit, refusal: Refused) -> Response:
    """A refused preview answers in place of the preview: the sentence naming the field."""
    return HTMLResponse(
        f'<p class="error" role="alert">{escape(refusal.sentence)}</p>', status_code=refusal.status
    )


def _preview_of(db: Session, shown: brands.Brand) -> str:
    """The preview of a brand, with the partner's logo as it is stored."""
    logo = None
    if shown.logo_url is not None:
        logo = service.logo_png(db, shown.logo_url.rsplit("/", 1)[1].removesuffix(".png"))
    return preview_img(shown, logo)


def _preview(db: Session, visit: Visit, fields: dict[str, str]) -> str:
    principal = visit.console(db).principal
    data = _fields(**fields)
    current = brands.read_brand(db, principal.partner_id)
    return _preview_of(db, replace(current, **{k: getattr(data, k) for k in fields}))


@router.post(PAGE + "/preview", response_class=HTMLResponse)
async def branding_preview(
    visit: Annotated[Visit, form_sender()],
    work: WorkDep,
    product_name: Text = "",
    primary_color: Text = "",
    accent_color: Text = "",
    email_from_name: Text = "",
    support_email: Text = "",
    footer_text: Text = "",
) -> Response:
    """The brand drawn from the form as it is, nothing saved."""
    visit.refused = _fragment_refusal
    fields = {
        "product_name": product_name,
        "primary_color": primary_color,
        "accent_color": accent_color,
        "email_from_name": email_from_name,
        "support_email": support_email,
        "footer_text": footer_text,
    }
    return HTMLResponse(await work(_preview, visit, fields), headers={"Cache-Control": "no-store"})


async def _upload(logo: UploadFile | None) -> bytes:
    if logo is None:
        return b""
    data = await logo.read(MAX_LOGO_BYTES + 1)
    if len(data) > MAX_LOGO_BYTES:
        raise Refused(f"A logo may be at most {MAX_LOGO_BYTES // 1024} KB.", PayloadTooLarge.status)
    return data


def _set_logo(db: Session, visit: Visit, clock: Clock, data: bytes) -> str:
    service.set_partner_logo(db, clock, visit.console(db).principal, data)
    return "Logo saved."


@router.post(PAGE + "/logo")
async def upload_logo(
    visit: BrandingForm, work: WorkDep, clock: ClockDep, logo: UploadFile | None = None
) -> Response:
    data = await _upload(logo)
    return visit.done(await work(_set_logo, visit, clock, data))


def _remove_logo(db: Session, visit: Visit, clock: Clock) -> str:
    service.delete_partner_logo(db, clock, visit.console(db).principal)
    return "Logo removed."


@router.post(PAGE + "/logo/remove")
async def remove_logo(visit: BrandingForm, work: WorkDep, clock: ClockDep) -> Response:
    return visit.done(await work(_remove_logo, visit, clock))


def _set_client_logo(db: Session, visit: Visit, clock: Clock, client_id: int, data: bytes) -> str:
    service.set_client_logo(db, clock, visit.console(db).principal, client_id, data)
    return "Logo saved."


@router.post("/partner/clients/{client_id}/logo")
async def upload_client_logo(
    client_id: PathId, visit: ClientLogoForm, work: WorkDep, clock: ClockDep, logo: UploadFile | None = None
) -> Response:
    data = await _upload(logo)
    return visit.done(await work(_set_client_logo, visit, clock, client_id, data))


def _remove_client_logo(db: Session, visit: Visit, clock: Clock, client_id: int) -> str:
    service.delete_client_logo(db, clock, visit.console(db).principal, client_id)
    return "Logo removed."


@router.post("/partner/clients/{client_id}/logo/remove")
async def remove_client_logo(
    client_id: PathId, visit: ClientLogoForm, work: WorkDep, clock: ClockDep
) -> Response:
    return visit.done(await work(_remove_client_logo, visit, clock, client_id))
