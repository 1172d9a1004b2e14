"""Request and response bodies of the branding API. Unknown fields are refused (422)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints, field_validator, model_validator

from tenantry.fields import Email, OneLine, Strict

# `#RRGGBB` only: the colours go into style sheets and e-mails, so nothing else may pass.
Color = Annotated[str, StringConstraints(pattern=r"^#[0-9A-Fa-f]{6}$", to_lower=True), OneLine]
ProductName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), OneLine]
SenderName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100), OneLine]
FooterText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500), OneLine]

_REQUIRED = ("product_name", "primary_color")
_OPTIONAL = ("accent_color", "email_from_name", "support_email", "footer_text")


class BrandingUpdate(Strict):
    """What to change; a field left out stays as it is, an optional one set to null (or "") is removed."""

    product_name: ProductName | None = Field(default=None, description="Shown instead of Tenantry.")
    primary_color: Color | None = Field(
        default=None, description="#RRGGBB: header, buttons, first chart series."
    )
    accent_color: Color | None = Field(default=None, description="#RRGGBB: links and highlights.")
    email_from_name: SenderName | None = Field(
        default=None, description="The sender's name on e-mails (default: the product name)."
    )
    support_email: Email | None = Field(default=None, description="Shown in page and e-mail footers.")
    footer_text: FooterText | None = Field(
        default=None, description="One line at the foot of pages and e-mails."
    )

    @model_validator(mode="before")
    @classmethod
    def _blank_is_none(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in _REQUIRED:
                if key in data and data[key] is None:
                    raise ValueError(f"{key} cannot be null; leave it out to keep it unchanged")
            data = {
                k: (None if k in _OPTIONAL and isinstance(v, str) and not v.strip() else v)
                for k, v in data.items()
            }
        return data

    @field_validator("email_from_name", "footer_text")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None


class BrandingOut(BaseModel):
    product_name: str
    primary_color: str
    accent_color: str | None
    email_from_name: str | None
    support_email: str | None
    footer_text: str | None
    logo_url: str | None = Field(description="The partner's logo (PNG), or null.")
    updated_at: datetime | None = Field(description="When the branding last changed; null: never set.")


class LogoOut(BaseModel):
    logo_url: str | None
    width: int | None = None
    height: int | None = None
