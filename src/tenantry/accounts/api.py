"""Endpoints for recovering and guarding accounts (SPEC §18): password resets, the caller's own
password, and TOTP."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request, Response, status

from tenantry.accounts import service
from tenantry.accounts.schemas import (
    PasswordChange,
    PasswordResetAccepted,
    PasswordResetRequest,
    RecoveryCodesOut,
    TotpBegunOut,
    TotpCode,
)
from tenantry.api.deps import Caller, ClockDep, VaultDep, Work, WorkDep, services
from tenantry.auth import sessions
from tenantry.auth.addresses import request_address

router = APIRouter(prefix="/api/1", tags=["accounts"])

# Needs no caller: whoever forgot their password has no key and no session.
RESET_PATH = "/api/1/auth/password-reset"


def _address(request: Request) -> str:
    return request_address(request, services(request).settings.trusted_proxy_networks)


@router.post(
    RESET_PATH.removeprefix("/api/1"),
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PasswordResetAccepted,
)
async def request_password_reset(
    body: PasswordResetRequest, request: Request, clock: ClockDep, background: BackgroundTasks
) -> PasswordResetAccepted:
    """E-mail a link to choose a new password (always 202: the answer never tells whether the
    address has an account; throttled per address and e-mail)."""
    svc = services(request)
    email = await service.request_reset(svc.database, clock, body.email, _address(request))
    sender = service.ResetSender(svc.mailer, svc.settings)
    # After the answer: its timing does not depend on whether there were accounts to write to.
    background.add_task(Work(svc.database, write=True), service.send_reset_links, clock, sender, email)
    return PasswordResetAccepted()


@router.post("/me/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(
    body: PasswordChange, request: Request, clock: ClockDep, caller: Caller
) -> Response:
    """Change your password; your other sessions end (this one stays). A wrong current password
    is 403 and counts as a failed sign-in."""
    svc = services(request)
    keep = None
    if not request.headers.get("authorization"):
        keep = sessions.unsign(request.cookies.get(sessions.SESSION_COOKIE), svc.settings.resolved_secret_key)
    await service.change_password(
        svc.database, clock, caller, body.current, body.new, _address(request), keep
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/me/mfa/totp", status_code=status.HTTP_201_CREATED, response_model=TotpBegunOut)
async def begin_totp(work: WorkDep, clock: ClockDep, vault: VaultDep, caller: Caller) -> TotpBegunOut:
    """Begin setting up TOTP: a new secret and its otpauth URI (on once confirmed with a code)."""
    begun = await work(service.begin_totp, clock, vault, caller)
    return TotpBegunOut(secret=begun.secret, otpauth_uri=begun.otpauth_uri)


@router.post("/me/mfa/totp/confirm", response_model=RecoveryCodesOut)
async def confirm_totp(
    body: TotpCode, work: WorkDep, clock: ClockDep, vault: VaultDep, caller: Caller
) -> RecoveryCodesOut:
    """Turn TOTP on with a code from the app; answers ten single-use recovery codes, this once."""
    codes = await work(service.confirm_totp, clock, vault, caller, body.code)
    return RecoveryCodesOut(enabled=True, recovery_codes=codes)


@router.delete("/me/mfa/totp", status_code=status.HTTP_204_NO_CONTENT)
async def turn_off_totp(
    body: TotpCode, request: Request, clock: ClockDep, vault: VaultDep, caller: Caller
) -> Response:
    """Turn TOTP off with a code or a recovery code (a wrong one counts as a failed sign-in)."""
    svc = services(request)
    await service.turn_off_totp(svc.database, clock, vault, caller, body.code, _address(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
