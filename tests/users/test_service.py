"""The user use cases (SPEC §4 "add or remove client users", §6 allocations and the pool, §11
invitations), called directly with a session: no HTTP, no app. Each refusal is checked in the
same session, where nothing the refused call would have changed may have been written."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from tenantry.auth.principal import Principal
from tenantry.db.access_models import Invitation
from tenantry.db.models import ApiKey, Client, ClientUser, PartnerUser
from tenantry.db.worker_models import OutboxMail
from tenantry.errors import (
    AllocationExceeded,
    Duplicate,
    Forbidden,
    NotFound,
    PoolExhausted,
    StatusForbids,
    WeakPassword,
)
from tenantry.mail import SmtpMailer
from tenantry.users.schemas import ClientUserCreate, ClientUserUpdate, PartnerUserCreate, PartnerUserUpdate
from tenantry.users.service import (
    Inviter,
    accept_invitation,
    add_client_user,
    add_partner_user,
    create_key_for_client_user,
    invitation_is_open,
    remove_client_user,
    remove_partner_user,
    resend_partner_invitation,
    update_client_user,
    update_partner_user,
)
from tests.services import Clients, table

# Every write goes through the `session` fixture and is rolled back with it.
pytestmark = pytest.mark.rolled_back

PASSWORD = "a long secret 1"
# Invitations are queued for the worker, which alone talks to the SMTP server.
INVITER = Inviter(SmtpMailer("127.0.0.1", 1, "tenantry@example.test"), "https://tenantry.example.test")


def by_email(session: Any, principal: Principal) -> str:
    stored = PartnerUser if principal.is_partner else ClientUser
    return str(session.get(stored, principal.user_id).email)


def add(service: Clients, client_id: int, email: str = "ann@client.test", by=None, **body: Any):  # type: ignore[no-untyped-def]
    data = ClientUserCreate.model_validate({"email": email, "name": "Ann", "password": PASSWORD, **body})
    return add_client_user(service.session, service.clock, INVITER, by or service.admin, client_id, data)


def stored_caller(service: Clients, role: str, client: Client | None = None) -> Principal:
    """Another caller of the partner, with a row of its own: a partner user of `role`, or a user of
    `client` (the services read the caller's role again from its row)."""
    user: PartnerUser | ClientUser
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.test"
    now = service.clock.now()
    if client is None:
        user = PartnerUser(
            partner_id=service.admin.partner_id, email=email, name=role, role=role, created_at=now
        )
    else:
        user = ClientUser(client_id=client.id, email=email, name=role, role=role, created_at=now)
    service.session.add(user)
    service.session.flush()
    if client is None:
        return Principal("partner_user", service.admin.partner_id, user.id, role)
    return Principal("client_user", service.admin.partner_id, user.id, role, client_id=client.id)


def users_of(service: Clients, client_id: int) -> list[str]:
    rows = service.session.scalars(select(ClientUser.email).where(ClientUser.client_id == client_id))
    return sorted(rows)


# SPEC §4, the row "add or remove client users (seed)", and the sentence of each refusal.
SPEC_4 = """
| status        | add or remove | refusal                                   |
|---------------|---------------|-------------------------------------------|
| setup         | ✗             | while the client is in Setup mode.        |
| trial         | ✓             |                                           |
| trial_expired | ✗             | while the client is in an expired trial.  |
| active        | ✓             |                                           |
| disabled      | ✗             | while the client is disabled.             |
"""
STATUSES = [pytest.param(status, mark == "✓", words, id=status) for status, mark, words in table(SPEC_4)]


class TestClientUsersByStatus:
    @pytest.mark.parametrize(("status", "allowed", "words"), STATUSES)
    def test_users_are_added_only_in_trial_and_active(self, clients, status, allowed, words):
        service = clients()
        client = service.in_status(status)
        if allowed:
            user, invitation = add(service, client.id)
            assert (user.email, user.role, invitation) == ("ann@client.test", "member", None)
            assert client.usage_users == 1
            return
        with pytest.raises(StatusForbids) as refused:
            add(service, client.id)
        assert refused.value.detail == f"Users cannot be added {words}"
        assert refused.value.extensions["client_status"] == status
        assert users_of(service, client.id) == []
        assert client.usage_users == 0

    @pytest.mark.parametrize(("status", "allowed", "words"), STATUSES)
    def test_users_are_removed_only_in_trial_and_active(self, clients, session, status, allowed, words):
        service = clients()
        client = service.in_status(status)
        user = ClientUser(
            client_id=client.id,
            email="ann@client.test",
            name="Ann",
            role="member",
            created_at=service.clock.now(),
        )
        session.add(user)
        client.usage_users = 1
        session.flush()
        if allowed:
            remove_client_user(session, service.clock, service.admin, client.id, user.id)
            assert (users_of(service, client.id), client.usage_users) == ([], 0)
            return
        with pytest.raises(StatusForbids) as refused:
            remove_client_user(session, service.clock, service.admin, client.id, user.id)
        assert refused.value.detail == f"Users cannot be removed {words}"
        assert (users_of(service, client.id), client.usage_users) == (["ann@client.test"], 1)


class TestClientUsers:
    def test_users_beyond_the_clients_allocation_are_refused(self, clients):
        service = clients()
        client = service.in_status("active", users=2)
        add(service, client.id, "one@client.test")
        add(service, client.id, "two@client.test")
        with pytest.raises(AllocationExceeded) as refused:
            add(service, client.id, "three@client.test")
        assert refused.value.extensions == {"resource": "users", "allocated": 2, "used": 2}
        assert users_of(service, client.id) == ["one@client.test", "two@client.test"]
        assert client.usage_users == 2

    def test_an_email_is_unique_within_a_client_only(self, clients):
        service = clients()
        first, second = service.in_status("trial"), service.in_status("trial")
        add(service, first.id, "ann@client.test")
        with pytest.raises(Duplicate):
            add(service, first.id, "ann@client.test")
        assert first.usage_users == 1
        assert add(service, second.id, "ann@client.test")[0].client_id == second.id

    def test_a_weak_password_is_refused_and_adds_no_one(self, clients):
        service = clients()
        client = service.in_status("trial")
        with pytest.raises(WeakPassword):
            add(service, client.id, password="short")
        assert (users_of(service, client.id), client.usage_users) == ([], 0)

    def test_a_user_without_a_password_is_invited_by_a_queued_mail(self, clients, session):
        service = clients()
        client = service.in_status("trial")
        user, invitation = add(service, client.id, password=None)
        assert invitation is not None and invitation.queued
        assert user.password_hash is None
        (mail,) = session.scalars(select(OutboxMail)).all()
        assert (mail.kind, mail.status, mail.recipients) == ("invitation", "pending", ["ann@client.test"])
        assert session.scalar(select(func.count()).select_from(Invitation)) == 1


# Who manages a client's users: partner admins and editors, and the client's own admins.
ROLES = """
| caller         | add | remove |
|----------------|-----|--------|
| partner admin  | ✓   | ✓      |
| partner editor | ✓   | ✓      |
| partner viewer | ✗   | ✗      |
| client admin   | ✓   | ✓      |
| client member  | ✗   | ✗      |
"""
ROLE_ROWS = [
    pytest.param(caller, action, mark == "✓", id=f"{caller} {action}")
    for caller, *marks in table(ROLES)
    for action, mark in zip(("add", "remove"), marks, strict=True)
]


class TestWhoManagesUsers:
    @pytest.mark.parametrize(("caller", "action", "allowed"), ROLE_ROWS)
    def test_each_caller_manages_users_as_its_role_allows(self, clients, session, caller, action, allowed):
        service = clients()
        client = service.in_status("trial", users=3)
        existing, _ = add(service, client.id, "existing@client.test")
        kind, role = caller.split()
        by = stored_caller(service, role, client if kind == "client" else None)

        def act() -> None:
            if action == "add":
                add(service, client.id, "new@client.test", by=by)
            else:
                remove_client_user(session, service.clock, by, client.id, existing.id)

        if allowed:
            act()
            return
        with pytest.raises(Forbidden):
            act()
        own = [by_email(session, by)] if kind == "client" else []
        assert users_of(service, client.id) == sorted(["existing@client.test", *own])

    @pytest.mark.parametrize("kind", ["partner", "client"])
    def test_a_caller_demoted_or_removed_since_its_request_was_authenticated_is_refused(
        self, clients, session, kind
    ):
        """The role is read again from the caller's row once the partner is locked: a request
        authenticated as an admin, whose admin role another request took away meanwhile, no longer
        acts as one (two admins demoting or removing each other at once keep one)."""
        service = clients()
        client = service.in_status("trial", users=3)
        existing, _ = add(service, client.id, "existing@client.test")
        role = "admin" if kind == "client" else "editor"
        demoted = stored_caller(service, role, client if kind == "client" else None)
        removed = stored_caller(service, role, client if kind == "client" else None)
        stored = PartnerUser if kind == "partner" else ClientUser
        session.get(stored, demoted.user_id).role = "viewer" if kind == "partner" else "member"
        session.delete(session.get(stored, removed.user_id))
        session.flush()
        for by in (demoted, removed):
            with pytest.raises(Forbidden):
                add(service, client.id, "new@client.test", by=by)
            with pytest.raises(Forbidden):
                remove_client_user(session, service.clock, by, client.id, existing.id)
            with pytest.raises(Forbidden):
                update_client_user(
                    session, service.clock, by, client.id, existing.id, ClientUserUpdate(role="admin")
                )
        own = [by_email(session, demoted)] if kind == "client" else []
        assert users_of(service, client.id) == sorted(["existing@client.test", *own])
        assert session.get(ClientUser, existing.id).role == "member"

    def test_a_client_admin_cannot_remove_themself(self, clients, session):
        service = clients()
        client = service.in_status("trial")
        admin, _ = add(service, client.id, "boss@client.test", role="admin")
        myself = Principal("client_user", service.admin.partner_id, admin.id, "admin", client_id=client.id)
        with pytest.raises(Forbidden):
            remove_client_user(session, service.clock, myself, client.id, admin.id)
        assert users_of(service, client.id) == ["boss@client.test"]

    def test_another_partners_client_is_not_found(self, clients):
        ours, theirs = clients(), clients()
        client = theirs.in_status("trial")
        with pytest.raises(NotFound):
            add(ours, client.id)
        assert users_of(theirs, client.id) == []


def add_partner(service: Clients, email: str, by=None, **body: Any):  # type: ignore[no-untyped-def]
    data = PartnerUserCreate.model_validate({"email": email, "name": "Ed", "password": PASSWORD, **body})
    return add_partner_user(service.session, service.clock, INVITER, by or service.admin, data)


class TestPartnerUsers:
    # SPEC §6: the partner's own users count against the plan's users (the admin is the first).
    @pytest.mark.parametrize(
        ("plan_users", "added", "refused"),
        [
            pytest.param(-1, 5, False, id="unlimited"),
            pytest.param(3, 2, False, id="up to the plan"),
            pytest.param(3, 3, True, id="one beyond the plan"),
            pytest.param(1, 1, True, id="the admin fills the plan"),
        ],
    )
    def test_partner_users_count_against_the_pool(self, clients, plan_users, added, refused):
        service = clients(users=plan_users)
        for n in range(added - 1):
            add_partner(service, f"ed{n}@partner.test")
        if not refused:
            add_partner(service, "last@partner.test")
            assert service.partner.used_users == 1 + added
            return
        with pytest.raises(PoolExhausted) as refusal:
            add_partner(service, "last@partner.test")
        assert refusal.value.extensions == {"resource": "users", "asked": 1, "remaining": 0}
        assert service.partner.used_users == added

    def test_clients_allocations_leave_less_room_for_partner_users(self, clients):
        service = clients(users=3)
        service.create("trial", resources={"users": 2})
        with pytest.raises(PoolExhausted):
            add_partner(service, "ed@partner.test")

    @pytest.mark.parametrize("role", ["editor", "viewer"])
    def test_only_an_admin_adds_or_removes_partner_users(self, clients, session, role):
        service = clients()
        ed, _ = add_partner(service, "ed@partner.test")
        by = stored_caller(service, role)
        with pytest.raises(Forbidden):
            add_partner(service, "other@partner.test", by=by)
        with pytest.raises(Forbidden):
            remove_partner_user(session, service.clock, by, ed.id)
        assert service.partner.used_users == 2

    def test_an_admin_demoted_or_removed_since_its_request_was_authenticated_is_refused(
        self, clients, session
    ):
        """The role is read again from the caller's row once the partner is locked: of two admins
        demoting or removing each other at once, the second to run is no admin any more."""
        service = clients()
        ed, _ = add_partner(service, "ed@partner.test", role="admin")
        demoted, removed = stored_caller(service, "admin"), stored_caller(service, "admin")
        session.get(PartnerUser, demoted.user_id).role = "viewer"
        session.delete(session.get(PartnerUser, removed.user_id))
        session.flush()
        for by in (demoted, removed):
            with pytest.raises(Forbidden):
                add_partner(service, "other@partner.test", by=by)
            with pytest.raises(Forbidden):
                remove_partner_user(session, service.clock, by, ed.id)
            with pytest.raises(Forbidden):
                update_partner_user(session, service.clock, by, ed.id, PartnerUserUpdate(role="viewer"))
        assert session.get(PartnerUser, ed.id).role == "admin"
        assert service.partner.used_users == 2

    def test_a_caller_demoted_since_its_request_was_authenticated_resends_no_invitation_and_makes_no_key(
        self, clients, session
    ):
        service = clients()
        invited, _ = add_partner(service, "invited@partner.test", password=None)
        client = service.in_status("active")
        member, _ = add(service, client.id)
        admin, editor = stored_caller(service, "admin"), stored_caller(service, "editor")
        session.get(PartnerUser, admin.user_id).role = "viewer"
        session.get(PartnerUser, editor.user_id).role = "viewer"
        session.flush()
        with pytest.raises(Forbidden):
            resend_partner_invitation(session, service.clock, INVITER, admin, invited.id)
        with pytest.raises(Forbidden):
            create_key_for_client_user(session, service.clock, editor, client.id, member.id, "made late")
        assert (
            session.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.client_user_id == member.id))
            == 0
        )

    def test_an_admin_removes_others_but_never_themself(self, clients, session):
        service = clients()
        ed, _ = add_partner(service, "ed@partner.test")
        remove_partner_user(session, service.clock, service.admin, ed.id)
        assert service.partner.used_users == 1
        with pytest.raises(Forbidden):
            remove_partner_user(session, service.clock, service.admin, service.admin.user_id)
        assert session.get(PartnerUser, service.admin.user_id) is not None

    def test_a_partner_users_email_is_unique_across_partners(self, clients):
        first, second = clients(), clients()
        add_partner(first, "ed@partner.test")
        with pytest.raises(Duplicate):
            add_partner(second, "ed@partner.test")
        assert second.partner.used_users == 1


def invite(service: Clients) -> str:
    """Add a client user without a password; return the token of the link mailed to them."""
    client = service.in_status("trial")
    add(service, client.id, password=None)
    text = service.session.scalars(select(OutboxMail.text)).one()
    found = re.search(r"/invite/(\S+)", text)
    assert found is not None
    return found.group(1)


class TestInvitations:
    @pytest.mark.parametrize(
        ("after", "accepted"),
        [
            pytest.param(timedelta(0), True, id="at once"),
            pytest.param(timedelta(days=7, seconds=-1), True, id="a second before 7 days"),
            pytest.param(timedelta(days=7), False, id="after 7 days"),
        ],
    )
    def test_an_invitation_sets_a_password_within_seven_days(self, clients, session, after, accepted):
        service = clients()
        token = invite(service)
        service.clock.advance(after)
        assert accept_invitation(session, service.clock, token, PASSWORD) is accepted
        user = session.scalars(select(ClientUser)).one()
        assert (user.password_hash is not None) is accepted

    def test_an_invitation_works_once(self, clients, session):
        service = clients()
        token = invite(service)
        assert accept_invitation(session, service.clock, token, PASSWORD)
        assert not invitation_is_open(session, service.clock, token)
        assert accept_invitation(session, service.clock, token, "another long secret") is False

    def test_a_weak_password_leaves_the_invitation_open(self, clients, session):
        service = clients()
        token = invite(service)
        with pytest.raises(WeakPassword):
            accept_invitation(session, service.clock, token, "short")
        assert invitation_is_open(session, service.clock, token)
        assert session.scalars(select(ClientUser.password_hash)).one() is None

    def test_an_unknown_token_opens_nothing(self, clients, session):
        service = clients()
        invite(service)
        assert accept_invitation(session, service.clock, "not-a-token", PASSWORD) is False
