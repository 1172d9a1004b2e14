"""Partner use cases: create a partner with its first admin; read the partner, its plan and pool."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tenantry import pool
from tenantry.accounts import service as accounts_service
from tenantry.audit import audit
from tenantry.auth.passwords import check_password
from tenantry.auth.principal import CLI_ACTOR, Principal
from tenantry.auth.secrets import generate_password, hash_password, new_api_key
from tenantry.clock import Clock, is_timezone
from tenantry.db.models import ApiKey, Partner, PartnerUser
from tenantry.errors import Duplicate, InvalidInput
from tenantry.fields import normalised_email
from tenantry.meter.calendar import MeterCalendar
from tenantry.partners import repository as partners_repo
from tenantry.partners.schemas import POOL_TOTAL_MAX, PRICE_MAX, TRIAL_DAYS_MAX, PartnerUpdate
from tenantry.statements import repository as statements_repo
from tenantry.text import refusal


@dataclass(frozen=True)
class PartnerPlan:
    dashboards: int = pool.UNLIMITED
    users: int = pool.UNLIMITED
    published_links: int = pool.UNLIMITED
    api_calls_per_day: int = pool.UNLIMITED
    trial_days: int = 14
    trial_extension_days: int = 14
    dashboard_price: Decimal = Decimal("10.00")
    user_price: Decimal = Decimal("5.00")
    currency: str = "USD"

    def validate(self) -> None:
        for resource in pool.RESOURCES:
            value = getattr(self, resource)
            if not pool.UNLIMITED <= value <= POOL_TOTAL_MAX:
                raise InvalidInput(
                    f"The plan's {resource} must be -1 (unlimited) or a number from 0 to {POOL_TOTAL_MAX}."
                )
        if self.users == 0:
            raise InvalidInput("The plan needs room for at least one user: the partner's admin.")
        if self.trial_days < 1 or self.trial_extension_days < 0:
            raise InvalidInput("Trial days must be at least 1 and extension days at least 0.")
        if self.trial_days > TRIAL_DAYS_MAX or self.trial_extension_days > TRIAL_DAYS_MAX:
            raise InvalidInput(f"Trial days and extension days must be at most {TRIAL_DAYS_MAX}.")
        for price in (self.dashboard_price, self.user_price):
            if not price.is_finite() or price > PRICE_MAX:
                raise InvalidInput(f"Prices must be amounts from 0 to {PRICE_MAX}.")
            if price < 0:
                raise InvalidInput("Prices cannot be negative.")
        # Three ASCII letters, as the API takes them: `isalpha` took any script's, and "ß"
        # upper-cases to "SS", six letters for a column of three.
        if re.fullmatch(r"[A-Za-z]{3}", self.currency) is None:
            raise InvalidInput("The currency must be a three-letter code such as USD.")


@dataclass(frozen=True)
class CreatedPartner:
    partner_id: int
    admin_user_id: int
    api_key: str
    admin_password: str | None


def validate_timezone(name: str) -> str:
    if not is_timezone(name):
        raise InvalidInput(f"Unknown timezone {name!r}: use an IANA name such as Europe/Paris.")
    return name


def create_partner(
    db: Session,
    clock: Clock,
    *,
    name: str,
    admin_email: str,
    plan: PartnerPlan,
    timezone: str = "UTC",
    admin_password: str | None = None,
    admin_name: str | None = None,
) -> CreatedPartner:
    for field, value in (("name", name), ("e-mail address", admin_email)):
        why = refusal(value)
        if why is not None:
            raise InvalidInput(f"The partner's {field} {why}.")
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("The partner's name must be 1 to 200 characters.")
    admin_email = normalised_email(admin_email)
    if "@" not in admin_email or len(admin_email) > 254:
        raise InvalidInput(f"{admin_email!r} is not an e-mail address.")
    plan.validate()
    validate_timezone(timezone)
    if db.scalars(select(PartnerUser.id).where(PartnerUser.email == admin_email)).first() is not None:
        raise Duplicate(f"A partner user with e-mail {admin_email} already exists.", field="admin_email")
    if admin_password is not None:
        check_password(admin_password, admin_email)
    now = clock.now()
    partner = Partner(
        name=name,
        timezone=timezone,
        created_at=now,
        plan_dashboards=plan.dashboards,
        plan_users=plan.users,
        plan_published_links=plan.published_links,
        plan_api_calls_per_day=plan.api_calls_per_day,
        trial_days=plan.trial_days,
        trial_extension_days=plan.trial_extension_days,
        dashboard_price=plan.dashboard_price,
        user_price=plan.user_price,
        currency=plan.currency.upper(),
        used_dashboards=0,
        used_users=1,  # the admin created below
        used_published_links=0,
        allocated_dashboards=0,
        allocated_users=0,
        allocated_published_links=0,
        allocated_api_calls_per_day=0,
        client_count=0,
    )
    db.add(partner)
    db.flush()
    generated = admin_password is None
    password = admin_password if admin_password is not None else generate_password()
    admin = PartnerUser(
        partner_id=partner.id,
        email=admin_email,
        name=admin_name or admin_email.split("@")[0],
        role="admin",
        password_hash=hash_password(password),
        created_at=now,
    )
    db.add(admin)
    db.flush()
    key = new_api_key()
    db.add(
        ApiKey(
            partner_id=partner.id,
            partner_user_id=admin.id,
            name="created with the partner",
            prefix=key.prefix,
            secret_hash=key.secret_hash,
            created_at=now,
        )
    )
    statements_repo.record_terms(db, partner, now, CLI_ACTOR)
    audit(
        db,
        partner_id=partner.id,
        actor=CLI_ACTOR,
        action="partner.created",
        target=f"partner:{partner.id}",
        at=now,
        details={"name": name, "admin_email": admin_email},
    )
    db.flush()
    return CreatedPartner(partner.id, admin.id, key.secret, password if generated else None)


# What a statement is cut and priced with: a change to these appends to the terms history.
_TERMS = ("timezone", "currency", "dashboard_price", "user_price")


def update_partner(db: Session, clock: Clock, principal: Principal, data: PartnerUpdate) -> Partner:
    """Change the partner's name, timezone, prices or currency (admins only).

    Statements keep past months as they were: prices apply from the day they are set, and a new
    timezone or currency from the next month (see statements.compute).
    """
    principal.require_admin()
    now = clock.now()
    partner = partners_repo.lock_partner(db, principal.partner_id)
    # A name kept from before the names were narrowed (`localtime`) may be sent back unchanged.
    if data.timezone is not None and data.timezone != partner.timezone:
        validate_timezone(data.timezone)
    changed: dict[str, Any] = {}
    if data.require_mfa is not None:
        accounts_service.set_require_mfa(db, clock, principal, data.require_mfa)
    for name in data.model_fields_set - {"require_mfa"}:
        value = getattr(data, name)
        if value != getattr(partner, name):
            changed[name] = value
            if name == "timezone":
                _meter_timezone_changes(partner, value, now)
            setattr(partner, name, value)
    if changed:
        if changed.keys() & set(_TERMS):
            statements_repo.record_terms(db, partner, now, principal.actor)
        audit(
            db,
            partner_id=partner.id,
            actor=principal.actor,
            action="partner.updated",
            target=f"partner:{partner.id}",
            at=now,
            details={k: str(v) if isinstance(v, Decimal) else v for k, v in changed.items()},
        )
    db.flush()
    return partner


def _meter_timezone_changes(partner: Partner, timezone: str, now: datetime) -> None:
    """The meter keeps the present month's days and takes the new timezone when the next month
    begins, as statements do: changing the timezone back and forth never opens a fresh day."""
    changed = MeterCalendar.of(partner).changed_to(timezone, now)
    partner.previous_timezone, partner.timezone_from = changed.previous_timezone, changed.timezone_from
