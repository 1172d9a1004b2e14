"""All SQL about users, invitations and API keys. Client users are reached through a scoped client."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.orm import Session

from tenantry.auth.principal import Principal
from tenantry.auth.repository import KeyCompanion
from tenantry.auth.secrets import hash_token
from tenantry.db.access_models import Invitation
from tenantry.db.models import ApiKey, Client, ClientUser, PartnerUser
from tenantry.db.prepared import PreparedSelect
from tenantry.db.reads import Reads
from tenantry.errors import NotFound


def list_client_users(
    db: Session, client_id: int, limit: int, offset: int
) -> tuple[Sequence[ClientUser], int]:
    where = ClientUser.client_id == client_id
    items = db.scalars(
        select(ClientUser).where(where).order_by(ClientUser.id).limit(limit).offset(offset)
    ).all()
    total = db.scalar(select(func.count()).select_from(ClientUser).where(where)) or 0
    return items, total


def get_client_user(db: Session, client: Client, user_id: int) -> ClientUser:
    """A user of a client already found through the scoping helper; any other user is 404."""
    user = db.scalars(
        select(ClientUser).where(ClientUser.id == user_id, ClientUser.client_id == client.id)
    ).one_or_none()
    if user is None:
        raise NotFound(f"No user {user_id} in client {client.id}.")
    return user


def client_email_taken(db: Session, client_id: int, email: str) -> bool:
    query = select(ClientUser.id).where(ClientUser.client_id == client_id, ClientUser.email == email)
    return db.scalars(query.limit(1)).first() is not None


def list_partner_users(
    db: Session, partner_id: int, limit: int, offset: int
) -> tuple[Sequence[PartnerUser], int]:
    where = PartnerUser.partner_id == partner_id
    items = db.scalars(
        select(PartnerUser).where(where).order_by(PartnerUser.id).limit(limit).offset(offset)
    ).all()
    total = db.scalar(select(func.count()).select_from(PartnerUser).where(where)) or 0
    return items, total


def get_partner_user(db: Session, partner_id: int, user_id: int) -> PartnerUser:
    user = db.scalars(
        select(PartnerUser).where(PartnerUser.id == user_id, PartnerUser.partner_id == partner_id)
    ).one_or_none()
    if user is None:
        raise NotFound(f"No partner user {user_id}.")
    return user


def partner_email_taken(db: Session, email: str) -> bool:
    return db.scalars(select(PartnerUser.id).where(PartnerUser.email == email).limit(1)).first() is not None


def find_invitation(
    db: Session, token: str, now: datetime, partner_id: int | None = None
) -> Invitation | None:
    """An unused, unexpired invitation (of `partner_id` when given); its user is locked against a
    concurrent second use."""
    query = select(Invitation).where(
        Invitation.token_hash == hash_token(token),
        Invitation.used_at.is_(None),
        Invitation.expires_at > now,
    )
    if partner_id is not None:
        query = query.where(Invitation.partner_id == partner_id)
    return db.scalars(query.with_for_update()).one_or_none()


def close_invitations(db: Session, user: ClientUser | PartnerUser, now: datetime) -> None:
    """Every open invitation of the user stops working (a new one is about to be sent)."""
    column = Invitation.client_user_id if isinstance(user, ClientUser) else Invitation.partner_user_id
    db.execute(
        update(Invitation)
        .where(column == user.id, Invitation.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )


def count_client_admins(db: Session, client_id: int) -> int:
    query = select(func.count()).select_from(ClientUser)
    return db.scalar(query.where(ClientUser.client_id == client_id, ClientUser.role == "admin")) or 0


def count_partner_admins(db: Session, partner_id: int) -> int:
    query = select(func.count()).select_from(PartnerUser)
    return db.scalar(query.where(PartnerUser.partner_id == partner_id, PartnerUser.role == "admin")) or 0


def _owned_keys(principal: Principal) -> Select[ApiKey]:
    if principal.is_partner:
        return select(ApiKey).where(ApiKey.partner_user_id == principal.user_id)
    return select(ApiKey).where(ApiKey.client_user_id == principal.user_id)


def list_own_keys(db: Session, principal: Principal, limit: int, offset: int) -> tuple[Sequence[ApiKey], int]:
    query = _owned_keys(principal)
    items = db.scalars(query.order_by(ApiKey.id).limit(limit).offset(offset)).all()
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    return items, total


def get_own_key(db: Session, principal: Principal, key_id: int) -> ApiKey:
    key = db.scalars(_owned_keys(principal).where(ApiKey.id == key_id)).one_or_none()
    if key is None:
        raise NotFound(f"No API key {key_id}.")
    return key


# Who is calling (`GET /api/1/me`, on every call of some integrations): prepared, read on the loop.
_PARTNER_USER = PreparedSelect(
    select(PartnerUser.id, PartnerUser.email, PartnerUser.name, PartnerUser.role).where(
        PartnerUser.id == bindparam("user_id"), PartnerUser.partner_id == bindparam("partner_id")
    )
)
# A client user with their own client (name, status, trial fields), in one statement.
_CLIENT_USER_AND_CLIENT = PreparedSelect(
    select(
        ClientUser.id,
        ClientUser.email,
        ClientUser.name,
        ClientUser.role,
        Client.id.label("client_id"),
        Client.name.label("client_name"),
        Client.status,
        Client.trial_started_at,
        Client.trial_ends_at,
        Client.trial_extended_at,
    )
    .join(Client, Client.id == ClientUser.client_id)
    .where(
        ClientUser.id == bindparam("user_id"),
        ClientUser.client_id == bindparam("client_id"),
        Client.partner_id == bindparam("partner_id"),
    )
)


async def read_partner_user(reads: Reads, principal: Principal) -> tuple[int, str, str, str]:
    """The calling partner user's (id, email, name, role)."""
    rows = await reads.run(_PARTNER_USER, user_id=principal.user_id, partner_id=principal.partner_id)
    if not rows:
        raise NotFound("The calling user no longer exists.")
    return rows[0]


class OwnClient(NamedTuple):
    id: int
    name: str
    status: str
    trial_started_at: datetime | None
    trial_ends_at: datetime | None
    trial_extended_at: datetime | None


# `GET /api/1/me`: the calling user and their own client, read in the API key's statement
# (`auth.repository.KeyCompanion`), which already joins the key's user and client.
ME_WITH_KEY = KeyCompanion(
    name="MeWithKey",
    columns=(
        PartnerUser.partner_id.label("partner_user_partner_id"),
        PartnerUser.email.label("partner_user_email"),
        PartnerUser.name.label("partner_user_name"),
        ClientUser.client_id.label("client_user_client_id"),
        ClientUser.email.label("client_user_email"),
        ClientUser.name.label("client_user_name"),
        Client.id.label("client_id"),
        Client.partner_id.label("client_partner_id"),
        Client.name.label("client_name"),
        Client.status.label("client_status"),
        Client.trial_started_at,
        Client.trial_ends_at,
        Client.trial_extended_at,
    ),
)


def me_read_with_key(row: Any, principal: Principal) -> tuple[tuple[int, str, str, str], OwnClient | None]:
    """The caller's (id, email, name, role) and own client as `ME_WITH_KEY` read them: what
    `read_partner_user` and `read_client_user` find, under the same conditions."""
    if principal.is_partner:
        if row.partner_user_partner_id != principal.partner_id:
            raise NotFound("The calling user no longer exists.")
        return (principal.user_id, row.partner_user_email, row.partner_user_name, principal.role), None
    if row.client_user_client_id != principal.client_id or row.client_partner_id != principal.partner_id:
        raise NotFound("The calling user no longer exists.")
    user = (principal.user_id, row.client_user_email, row.client_user_name, principal.role)
    own = OwnClient(
        row.client_id,
        row.client_name,
        row.client_status,
        row.trial_started_at,
        row.trial_ends_at,
        row.trial_extended_at,
    )
    return user, own


async def read_client_user(reads: Reads, principal: Principal) -> tuple[tuple[int, str, str, str], OwnClient]:
    """The calling client user's (id, email, name, role), and their own client."""
    rows = await reads.run(
        _CLIENT_USER_AND_CLIENT,
        user_id=principal.user_id,
        client_id=principal.client_id,
        partner_id=principal.partner_id,
    )
    if not rows:
        raise NotFound("The calling user no longer exists.")
    row = rows[0]
    return (row.id, row.email, row.name, row.role), OwnClient(*row[4:])


def key_prefix_taken(db: Session, prefix: str) -> bool:
    return db.scalar(select(ApiKey.id).where(ApiKey.prefix == prefix).limit(1)) is not None
