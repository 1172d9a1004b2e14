"""User use cases: client users and partner users, invitations, API keys, and `/me`.

Services flush, never commit. Every lookup starts from the scoping helpers, then checks the role:
another tenant's object is 404 before any question of permission arises.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tenantry import lifecycle, pool
from tenantry.accounts import repository as accounts_repo
from tenantry.audit import audit, audit_many
from tenantry.auth import mfa
from tenantry.auth.passwords import check_password
from tenantry.auth.principal import Principal
from tenantry.auth.secrets import hash_password, hash_token, new_api_key
from tenantry.branding import Brand, brand_for, email_html
from tenantry.clients import repository as clients_repo
from tenantry.clock import Clock
from tenantry.db.access_models import Invitation
from tenantry.db.models import ApiKey, Client, ClientUser, PartnerUser
from tenantry.db.reads import Reads
from tenantry.domains import base_url_of
from tenantry.emails import service as emails
from tenantry.emails.service import Queued
from tenantry.errors import Duplicate, Forbidden, InvitationAccepted, LastAdmin, Unauthenticated
from tenantry.fields import KeptJson
from tenantry.mail import Mail, Mailer, one_line
from tenantry.owners import require_reader
from tenantry.partners import repository as partners_repo
from tenantry.policy import Capability, require
from tenantry.users import repository as repo
from tenantry.users.schemas import (
    ClientUserCreate,
    ClientUserUpdate,
    MeClient,
    MeOut,
    MeUser,
    PartnerUserCreate,
    PartnerUserUpdate,
)

INVITATION_LIFETIME = timedelta(days=7)
# How many keys are drawn before a taken prefix is given up on (one is already one in 2**48).
KEY_ATTEMPTS = 3


@dataclass(frozen=True)
class Inviter:
    """What sending an invitation needs: the mail port and the public address for the link."""

    mailer: Mailer
    base_url: str


def _invite(
    db: Session,
    inviter: Inviter,
    now: datetime,
    principal: Principal,
    user: ClientUser | PartnerUser,
    place: str,
    letterhead: tuple[str, Brand] | None = None,
) -> Queued:
    """Write `user`'s invitation and queue its e-mail. `letterhead`: the partner's address and brand
    when the caller read them already (an import invites thousands of admins of one partner); the
    rows are then written with the caller's next flush, all together."""
    # 256 random bits; only the hash is kept, so the table alone opens no account.
    token = secrets.token_urlsafe(32)
    db.add(
        Invitation(
            token_hash=hash_token(token),
            partner_id=principal.partner_id,
            partner_user_id=user.id if isinstance(user, PartnerUser) else None,
            client_user_id=user.id if isinstance(user, ClientUser) else None,
            created_at=now,
            expires_at=now + INVITATION_LIFETIME,
        )
    )
    if letterhead is None:
        # On the partner's own domain when it has a verified one (its sign-in page and brand).
        base_url = base_url_of(db, principal.partner_id, inviter.base_url)
        brand = brand_for(db, principal.partner_id, user.client_id if isinstance(user, ClientUser) else None)
    else:
        base_url, brand = letterhead
    link = f"{base_url}/invite/{token}"
    product = one_line(brand.product_name)
    greeting = (
        f"Hello {one_line(user.name)},\n\nYou have been given access to {one_line(place)} on {product}."
    )
    choose = "Choose your password here (the link works once, for 7 days):"
    text = f"{greeting}\n{choose}\n\n{link}\n"
    html = email_html(
        brand,
        f"{greeting}\n\n{choose}",
        link=link,
        link_text="Choose your password",
        base_url=base_url,
    )
    # Sent by the worker after this transaction commits: never inside the request (and its lock).
    mail = Mail(
        to=[user.email],
        subject=f"Your access to {one_line(place)}",
        text=text,
        html=html,
        from_name=brand.sender_name,
    )
    return emails.queue(
        db,
        inviter.mailer,
        now,
        mail,
        partner_id=principal.partner_id,
        kind="invitation",
        sent_by=principal.actor,
        flush=letterhead is None,
    )


def _added(
    db: Session,
    inviter: Inviter,
    now: datetime,
    principal: Principal,
    user: ClientUser | PartnerUser,
    *,
    client_id: int | None,
    place: str,
) -> Queued | None:
    """Write the new user and its audit record; invite it when no password was given."""
    kind = "client_user" if isinstance(user, ClientUser) else "partner_user"
    try:
        with db.begin_nested():
            db.add(user)
            db.flush()
    except IntegrityError:
        # Added by another request at the same moment (a partner user's e-mail is unique across
        # every partner, so locking the caller's partner does not keep two partners apart): the
        # unique index decided.
        place_taken = "The client already has a user" if kind == "client_user" else "A partner user"
        raise Duplicate(f"{place_taken} with e-mail {user.email} already exists.", field="email") from None
    audit(
        db,
        partner_id=principal.partner_id,
        client_id=client_id,
        actor=principal.actor,
        action=f"{kind}.added",
        target=f"{kind}:{user.id}",
        at=now,
        details={"email": user.email, "role": user.role},
    )
    delivery = None
    if user.password_hash is None:
        delivery = _invite(db, inviter, now, principal, user, place)
    db.flush()
    return delivery


def _removed(
    db: Session, now: datetime, principal: Principal, user: ClientUser | PartnerUser, client_id: int | None
) -> None:
    kind = "client_user" if isinstance(user, ClientUser) else "partner_user"
    audit(
        db,
        partner_id=principal.partner_id,
        client_id=client_id,
        actor=principal.actor,
        action=f"{kind}.removed",
        target=f"{kind}:{user.id}",
        at=now,
        details={"email": user.email},
    )
    db.delete(user)
    db.flush()


# Client users


def client_users(
    db: Session, principal: Principal, client_id: int, limit: int, offset: int
) -> tuple[Sequence[ClientUser], int]:
    """A client's users: for partner users and the client's admins, not for its members."""
    client = clients_repo.get_client(db, principal, client_id)
    require_reader(principal)
    return repo.list_client_users(db, client.id, limit, offset)


def add_client_user(
    db: Session, clock: Clock, inviter: Inviter, principal: Principal, client_id: int, data: ClientUserCreate
) -> tuple[ClientUser, Queued | None]:
    now = clock.now()
    # The partner lock serialises the allocation check, so two requests never take the last seat.
    partners_repo.lock_partner(db, principal.partner_id)
    client = clients_repo.get_client(db, principal, client_id)
    _require_user_manager(db, principal)
    require(Capability.MANAGE_USERS, lifecycle.client_status(client, now), action="Users cannot be added")
    pool.check_room_for_one_more("users", clients_repo.allocation_of(client), clients_repo.usage_of(client))
    if repo.client_email_taken(db, client.id, data.email):
        raise Duplicate(f"The client already has a user with e-mail {data.email}.", field="email")
    if data.password is not None:
        check_password(data.password, data.email)
    user = ClientUser(
        client_id=client.id,
        email=data.email,
        name=data.name,
        role=data.role,
        password_hash=hash_password(data.password) if data.password is not None else None,
        created_at=now,
    )
    client.usage_users += 1
    return user, _added(db, inviter, now, principal, user, client_id=client.id, place=client.name)


def invite_client_admins(
    db: Session,
    inviter: Inviter,
    now: datetime,
    principal: Principal,
    admins: Sequence[tuple[Client, str, str]],
) -> None:
    """The first admins of clients created by an import (each a client, an e-mail and a name),
    invited by e-mail.

    The importer has checked, for the whole file, what `add_client_user` checks one at a time (the
    client's status allows users, its allocation holds one, the partner is locked). The clients are
    new in this transaction, so no other request can have given them a user: the users are written
    together, and the invitations share one reading of the partner's address and brand (a new
    client has no logo of its own yet).
    """
    if not admins:
        return
    users = []
    for client, email, name in admins:
        users.append(ClientUser(client_id=client.id, email=email, name=name, role="admin", created_at=now))
        client.usage_users += 1
    db.add_all(users)
    db.flush()
    audit_many(
        db,
        [
            {
                "partner_id": principal.partner_id,
                "client_id": user.client_id,
                "actor": principal.actor,
                "action": "client_user.added",
                "target": f"client_user:{user.id}",
                "at": now,
                "details": {"email": user.email, "role": user.role},
            }
            for user in users
        ],
    )
    base_url = base_url_of(db, principal.partner_id, inviter.base_url)
    letterhead = (base_url, brand_for(db, principal.partner_id))
    for (client, _, _), user in zip(admins, users, strict=True):
        _invite(db, inviter, now, principal, user, client.name, letterhead)
    db.flush()


def remove_client_user(db: Session, clock: Clock, principal: Principal, client_id: int, user_id: int) -> None:
    now = clock.now()
    partners_repo.lock_partner(db, principal.partner_id)
    client = clients_repo.get_client(db, principal, client_id)
    user = repo.get_client_user(db, client, user_id)
    _require_user_manager(db, principal)
    require(Capability.MANAGE_USERS, lifecycle.client_status(client, now), action="Users cannot be removed")
    if not principal.is_partner and principal.user_id == user.id:
        raise Forbidden("You cannot remove yourself; ask another admin.")
    client.usage_users -= 1
    _removed(db, now, principal, user, client.id)


def _require_user_manager(db: Session, principal: Principal) -> None:
    """Partner admins and editors, and a client's own admins, manage a client's users (with the
    role the caller has now: `_caller_now`)."""
    caller = _caller_now(db, principal)
    caller.require_write()
    if not caller.is_partner:
        caller.require_admin()


def _caller_now(db: Session, principal: Principal) -> Principal:
    """The caller with the role their row holds now, read again after `lock_partner`.

    The principal's role was read when the request was authenticated, before the lock: a request
    that held the lock meanwhile may have demoted or removed the caller (two admins removing or
    demoting each other at once), and acting on the old role could leave no admin. A caller whose
    row is gone is refused like one without the role.
    """
    if principal.is_partner:
        query = select(PartnerUser.role).where(
            PartnerUser.id == principal.user_id, PartnerUser.partner_id == principal.partner_id
        )
    else:
        query = select(ClientUser.role).where(
            ClientUser.id == principal.user_id, ClientUser.client_id == principal.client_id
        )
    role = db.scalar(query)
    if role is None:
        raise Forbidden("Your user no longer exists.")
    return replace(principal, role=role)


def update_client_user(
    db: Session, clock: Clock, principal: Principal, client_id: int, user_id: int, data: ClientUserUpdate
) -> ClientUser:
    """Rename a client's user or change its role (partner admins and editors, the client's admins).

    Roles stay within the client's own (admin, editor, member), and the client keeps an admin:
    demoting its last one is 409 `last_admin`.
    """
    now = clock.now()
    # Serialises role changes: two admins demoting each other at once never leave none.
    partners_repo.lock_partner(db, principal.partner_id)
    client = clients_repo.get_client(db, principal, client_id)
    user = repo.get_client_user(db, client, user_id)
    _require_user_manager(db, principal)
    require(Capability.MANAGE_USERS, lifecycle.client_status(client, now), action="Users cannot be changed")
    changed = _changes(user, data.name, data.role)
    if "role" in changed and user.role == "admin" and repo.count_client_admins(db, client.id) <= 1:
        raise LastAdmin(
            "The client's last admin cannot be given another role; make another user admin first."
        )
    updated = _updated(db, now, principal, user, changed, client.id)
    assert isinstance(updated, ClientUser)
    return updated


def _changes(user: ClientUser | PartnerUser, name: str | None, role: str | None) -> dict[str, str]:
    changed = {}
    if name is not None and name != user.name:
        changed["name"] = name
    if role is not None and role != user.role:
        changed["role"] = role
    return changed


def _updated(
    db: Session,
    now: datetime,
    principal: Principal,
    user: ClientUser | PartnerUser,
    changed: dict[str, str],
    client_id: int | None,
) -> ClientUser | PartnerUser:
    kind = "client_user" if isinstance(user, ClientUser) else "partner_user"
    if changed:
        details = {"from": {key: getattr(user, key) for key in changed}, "to": changed}
        for key, value in changed.items():
            setattr(user, key, value)
        audit(
            db,
            partner_id=principal.partner_id,
            client_id=client_id,
            actor=principal.actor,
            action=f"{kind}.updated",
            target=f"{kind}:{user.id}",
            at=now,
            details=details,
        )
        db.flush()
    return user


def resend_client_invitation(
    db: Session, clock: Clock, inviter: Inviter, principal: Principal, client_id: int, user_id: int
) -> Queued:
    """Send a user who has not set a password yet a new invitation; the old link stops working."""
    now = clock.now()
    # Locked like any change of the client's users: two resends at once take turns, so the second
    # closes the first's link and one link stays open.
    partners_repo.lock_partner(db, principal.partner_id)
    client = clients_repo.get_client(db, principal, client_id)
    user = repo.get_client_user(db, client, user_id)
    _require_user_manager(db, principal)
    require(
        Capability.MANAGE_USERS, lifecycle.client_status(client, now), action="Invitations cannot be sent"
    )
    return _reinvite(db, inviter, now, principal, user, client.name)


def _reinvite(
    db: Session,
    inviter: Inviter,
    now: datetime,
    principal: Principal,
    user: ClientUser | PartnerUser,
    place: str,
) -> Queued:
    if user.password_hash is not None:
        raise InvitationAccepted(
            "This user has set a password already: there is no invitation to send again."
        )
    repo.close_invitations(db, user, now)
    sent = _invite(db, inviter, now, principal, user, place)
    db.flush()
    return sent


# Partner users


def partner_users(
    db: Session, principal: Principal, limit: int, offset: int
) -> tuple[Sequence[PartnerUser], int]:
    """The partner's own users, oldest first, and how many there are."""
    return repo.list_partner_users(db, principal.partner_id, limit, offset)


def add_partner_user(
    db: Session, clock: Clock, inviter: Inviter, principal: Principal, data: PartnerUserCreate
) -> tuple[PartnerUser, Queued | None]:
    now = clock.now()
    partner = partners_repo.lock_partner(db, principal.partner_id)
    _caller_now(db, principal).require_admin()
    if repo.partner_email_taken(db, data.email):
        raise Duplicate(f"A partner user with e-mail {data.email} already exists.", field="email")
    if data.password is not None:
        check_password(data.password, data.email)
    pool.check_fits(partners_repo.pool_lines(partner), {"users": 1})
    user = PartnerUser(
        partner_id=partner.id,
        email=data.email,
        name=data.name,
        role=data.role,
        password_hash=hash_password(data.password) if data.password is not None else None,
        created_at=now,
    )
    partner.used_users += 1
    return user, _added(db, inviter, now, principal, user, client_id=None, place=partner.name)


def remove_partner_user(db: Session, clock: Clock, principal: Principal, user_id: int) -> None:
    now = clock.now()
    partner = partners_repo.lock_partner(db, principal.partner_id)
    user = repo.get_partner_user(db, partner.id, user_id)  # another partner's: 404 before the role's 403
    _caller_now(db, principal).require_admin()
    if user.id == principal.user_id:
        # An admin is always left: the one asking stays.
        raise Forbidden("You cannot remove yourself; ask another admin.")
    partner.used_users -= 1
    _removed(db, now, principal, user, None)


def update_partner_user(
    db: Session, clock: Clock, principal: Principal, user_id: int, data: PartnerUserUpdate
) -> PartnerUser:
    """Rename a partner user or change its role (admins only); the last admin stays one (409)."""
    now = clock.now()
    partner = partners_repo.lock_partner(db, principal.partner_id)
    user = repo.get_partner_user(db, partner.id, user_id)  # another partner's: 404 before the role's 403
    _caller_now(db, principal).require_admin()
    changed = _changes(user, data.name, data.role)
    if "role" in changed and user.role == "admin" and repo.count_partner_admins(db, partner.id) <= 1:
        raise LastAdmin("The last admin cannot be given another role; make another user admin first.")
    updated = _updated(db, now, principal, user, changed, None)
    assert isinstance(updated, PartnerUser)
    return updated


def resend_partner_invitation(
    db: Session, clock: Clock, inviter: Inviter, principal: Principal, user_id: int
) -> Queued:
    """Send a partner user who has not set a password yet a new invitation (admins only)."""
    partner = partners_repo.lock_partner(db, principal.partner_id)  # resends at once take turns
    user = repo.get_partner_user(db, partner.id, user_id)  # another partner's: 404 before the role's 403
    _caller_now(db, principal).require_admin()  # the role as it is under the lock
    return _reinvite(db, inviter, clock.now(), principal, user, partner.name)


# Invitations


def invitation_is_open(db: Session, clock: Clock, token: str, partner_id: int | None = None) -> bool:
    """Whether the invitation is open (on a partner's own domain, `partner_id`: one of its own)."""
    return repo.find_invitation(db, token, clock.now(), partner_id) is not None


def accept_invitation(
    db: Session, clock: Clock, token: str, password: str, partner_id: int | None = None
) -> bool:
    """Set the password through a one-time link; False when the link is unknown, used or expired,
    or, on a partner's own domain (`partner_id`), another partner's.

    A weak password raises `WeakPassword` and leaves the link open for another try. The user's
    open reset links stop working, as when a password is changed or reset: a link asked for
    before would otherwise choose the password again."""
    now = clock.now()
    invitation = repo.find_invitation(db, token, now, partner_id)
    if invitation is None:
        return False
    user: ClientUser | PartnerUser | None
    if invitation.client_user_id is not None:
        user = db.get(ClientUser, invitation.client_user_id)
    else:
        user = db.get(PartnerUser, invitation.partner_user_id)
    if user is None:
        return False
    check_password(password, user.email)
    user.password_hash = hash_password(password)
    invitation.used_at = now
    accounts_repo.close_resets(db, mfa.kind_of(user), user.id, now)
    audit(
        db,
        partner_id=invitation.partner_id,
        client_id=user.client_id if isinstance(user, ClientUser) else None,
        actor=f"{'client_user' if isinstance(user, ClientUser) else 'partner_user'}:{user.id}",
        action="user.password_set",
        target=f"invitation:{invitation.id}",
        at=now,
    )
    db.flush()
    return True


# API keys


def own_keys(db: Session, principal: Principal, limit: int, offset: int) -> tuple[Sequence[ApiKey], int]:
    """The caller's own API keys, and how many there are."""
    return repo.list_own_keys(db, principal, limit, offset)


def _new_key(
    db: Session, now: datetime, name: str, owner: PartnerUser | ClientUser, partner_id: int
) -> tuple[ApiKey, str]:
    # A key's prefix is unique and random (48 bits): should one be taken, another is drawn.
    for attempt in range(KEY_ATTEMPTS):
        new = new_api_key()
        key = ApiKey(
            partner_id=partner_id,
            partner_user_id=owner.id if isinstance(owner, PartnerUser) else None,
            client_id=owner.client_id if isinstance(owner, ClientUser) else None,
            client_user_id=owner.id if isinstance(owner, ClientUser) else None,
            name=name,
            prefix=new.prefix,
            secret_hash=new.secret_hash,
            created_at=now,
        )
        try:
            with db.begin_nested():
                db.add(key)
        except IntegrityError:
            if attempt == KEY_ATTEMPTS - 1 or not repo.key_prefix_taken(db, new.prefix):
                raise
            continue
        return key, new.secret
    raise AssertionError("unreachable")


def _key_created(db: Session, principal: Principal, key: ApiKey, now: datetime) -> None:
    audit(
        db,
        partner_id=key.partner_id,
        client_id=key.client_id,
        actor=principal.actor,
        action="api_key.created",
        target=f"api_key:{key.id}",
        at=now,
        details={"name": key.name, "prefix": key.prefix},
    )


def create_own_key(db: Session, clock: Clock, principal: Principal, name: str) -> tuple[ApiKey, str]:
    now = clock.now()
    owner: PartnerUser | ClientUser | None
    # FOR KEY SHARE: the user cannot be removed between this read and the key's insert.
    held = {"key_share": True}
    owner = (
        db.get(PartnerUser, principal.user_id, with_for_update=held)
        if principal.is_partner
        else db.get(ClientUser, principal.user_id, with_for_update=held)
    )
    if owner is None:
        # Removed since the request was authenticated: its key or session is gone with it.
        raise Unauthenticated("The calling user no longer exists.")
    key, secret = _new_key(db, now, name, owner, principal.partner_id)
    _key_created(db, principal, key, now)
    return key, secret


def create_key_for_client_user(
    db: Session, clock: Clock, principal: Principal, client_id: int, user_id: int, name: str
) -> tuple[ApiKey, str]:
    """A partner admin or editor creates a key for one of a client's users. The partner is locked
    first, as for any change of the client's users: a removal at once waits, or is waited for."""
    partners_repo.lock_partner(db, principal.partner_id)
    client = clients_repo.get_client(db, principal, client_id)
    user = repo.get_client_user(db, client, user_id)
    if not principal.is_partner:
        raise Forbidden("Only partner admins and editors create keys for a client's users.")
    _caller_now(db, principal).require_write()  # the role as it is under the lock
    now = clock.now()
    key, secret = _new_key(db, now, name, user, client.partner_id)
    _key_created(db, principal, key, now)
    return key, secret


def revoke_own_key(db: Session, clock: Clock, principal: Principal, key_id: int) -> None:
    key = repo.get_own_key(db, principal, key_id)
    if key.revoked_at is not None:
        return
    now = clock.now()
    key.revoked_at = now
    audit(
        db,
        partner_id=key.partner_id,
        client_id=key.client_id,
        actor=principal.actor,
        action="api_key.revoked",
        target=f"api_key:{key.id}",
        at=now,
        details={"prefix": key.prefix},
    )
    db.flush()


# Me


async def read_me(reads: Reads, principal: Principal, now: datetime) -> bytes:
    """Who is calling, and for a client user, the client with its status and trial clock, as JSON
    (`MeOut`); read without leaving the event loop (`db.reads`)."""
    own = None
    if principal.is_partner:
        user = await repo.read_partner_user(reads, principal)
    else:
        user, own = await repo.read_client_user(reads, principal)
    return me_json(user, own, principal, now)


def me_read_with_key(row: Any, principal: Principal, now: datetime) -> bytes:
    """The same from what `repo.ME_WITH_KEY` read beside the caller's API key."""
    return me_json(*repo.me_read_with_key(row, principal), principal, now)


# `GET /api/1/me` answers kept as JSON (`me_json`).
_KEPT_ME = KeptJson()


def me_json(
    user: tuple[int, str, str, str], own: repo.OwnClient | None, principal: Principal, now: datetime
) -> bytes:
    """`me_of` as JSON, made once while what it shows is the same: the user, their own client,
    what the clock shows of its trial (`lifecycle.trial_reading`) and the caller's kind and partner."""
    reading = None if own is None else lifecycle.trial_reading(own, now)
    key = (user, own, principal.kind, principal.partner_id, reading)
    return _KEPT_ME.json(key, lambda: me_of(user, own, principal, now))


def me_of(
    user: tuple[int, str, str, str], own: repo.OwnClient | None, principal: Principal, now: datetime
) -> MeOut:
    user_id, email, name, role = user
    return MeOut(
        user=MeUser(
            id=user_id,
            kind=principal.kind,
            email=email,
            name=name,
            role=role,
            partner_id=principal.partner_id,
        ),
        client=None if own is None else MeClient.of(own, now),
    )
