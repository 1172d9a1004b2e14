"""The branding endpoints: the partner's brand and logo, clients' logos, and the logo images."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from tenantry.api.deps import ClockDep, PartnerCaller, PathId, WorkDep
from tenantry.auth.principal import Principal
from tenantry.branding import service
from tenantry.branding.logos import MAX_LOGO_BYTES
from tenantry.branding.schemas import BrandingOut, BrandingUpdate, LogoOut
from tenantry.clock import Clock
from tenantry.errors import NotFound, PayloadTooLarge

router = APIRouter(tags=["branding"])

# The logo is the raw request body (no multipart), as the picture's own type.
LOGO_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The image itself: PNG or JPEG, at most 1 MB and 4000×4000 pixels. "
        "It is re-encoded as a PNG without metadata, at most 256 pixels high.",
        "content": {
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
_LOGO_NAME = re.compile(r"([0-9a-f]{64})\.png")


async def logo_upload(request: Request) -> bytes:
    """The request body, read until it passes the logo limit (then refused with 413 at once)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_LOGO_BYTES:
            raise PayloadTooLarge(f"A logo may be at most {MAX_LOGO_BYTES:,} bytes.")
    return bytes(body)


def _read(db: Session, caller: Principal) -> BrandingOut:
    return service.read_branding(db, caller)


@router.get("/api/1/partner/branding", response_model=BrandingOut)
async def get_branding(work: WorkDep, caller: PartnerCaller) -> BrandingOut:
    """The partner's brand: product name, colours, sender name, support address, footer and logo."""
    return await work(_read, caller)


@router.patch("/api/1/partner/branding", response_model=BrandingOut)
async def update_branding(
    body: BrandingUpdate, work: WorkDep, clock: ClockDep, caller: PartnerCaller
) -> BrandingOut:
    """Change the partner's brand (admins only); optional fields set to null are removed."""
    return await work(service.update_branding, clock, caller, body)


@router.put("/api/1/partner/branding/logo", response_model=LogoOut, openapi_extra=LOGO_BODY)
async def put_partner_logo(
    request: Request, work: WorkDep, clock: ClockDep, caller: PartnerCaller
) -> LogoOut:
    """Set the partner's logo (admins only): the body is a PNG or JPEG image."""
    upload = await logo_upload(request)
    return await work(_set_partner_logo, clock, caller, upload)


def _set_partner_logo(db: Session, clock: Clock, caller: Principal, upload: bytes) -> LogoOut:
    return service.set_partner_logo(db, clock, caller, upload)


@router.delete("/api/1/partner/branding/logo", status_code=204)
async def delete_partner_logo(work: WorkDep, clock: ClockDep, caller: PartnerCaller) -> Response:
    """Remove the partner's logo (admins only)."""
    await work(service.delete_partner_logo, clock, caller)
    return Response(status_code=204)


@router.put("/api/1/clients/{client_id}/branding/logo", response_model=LogoOut, openapi_extra=LOGO_BODY)
async def put_client_logo(
    client_id: PathId, request: Request, work: WorkDep, clock: ClockDep, caller: PartnerCaller
) -> LogoOut:
    """Set a client's own logo, shown in its portal before the partner's: the body is a PNG or JPEG."""
    upload = await logo_upload(request)
    return await work(service.set_client_logo, clock, caller, client_id, upload)


@router.delete("/api/1/clients/{client_id}/branding/logo", status_code=204)
async def delete_client_logo(
    client_id: PathId, work: WorkDep, clock: ClockDep, caller: PartnerCaller
) -> Response:
    """Remove a client's own logo."""
    await work(service.delete_client_logo, clock, caller, client_id)
    return Response(status_code=204)


@router.get("/brand/logo/{name}", include_in_schema=False)
async def logo(name: str, work: WorkDep) -> Response:
    """A logo image by the sha256 of its bytes: what an address serves never changes, so it is
    cached for good. Logos are public: the sign-in page and e-mails show them."""
    match = _LOGO_NAME.fullmatch(name)
    if match is None:
        raise NotFound("No such logo.")
    data = await work(service.logo_png, match.group(1))
    if data is None:
        raise NotFound("No such logo.")
    return Response(
        data,
        media_type="image/png",
        headers={
            "Cache-Control": "public, max-age=31536000, immutable",
            "Content-Security-Policy": "default-src 'none'",
        },
    )
