"""Request and response bodies of the account endpoints. Unknown fields are refused (422)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, StringConstraints

from tenantry.fields import Password, Strict

# What the reset form takes: anything up to an e-mail's length. It is not checked as an e-mail
# address: a malformed one gets the same answer as any other that names no account.
ResetEmail = Annotated[str, StringConstraints(max_length=254)]
Code = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class PasswordResetRequest(Strict):
    email: ResetEmail


class PasswordResetAccepted(BaseModel):
    accepted: bool = True
    detail: str = "If an account uses this e-mail address, a link to choose a new password is on its way."


class PasswordChange(Strict):
    current: Password
    new: Password


class TotpBegunOut(BaseModel):
    secret: str
    otpauth_uri: str


class TotpCode(Strict):
    code: Code


class RecoveryCodesOut(BaseModel):
    enabled: bool
    recovery_codes: list[str]
