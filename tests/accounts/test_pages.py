"""The account forms on the console's and the portal's pages: editing users, resending
invitations, and the partner's team."""

from __future__ import annotations

from sqlalchemy import select

from tenantry.db.models import ClientUser, PartnerUser
from tests.accounts.conftest import form_csrf
from tests.factories import PASSWORD, add_user, new_client, sign_in


def _post(http, page: str, path: str, **form: str):  # type: ignore[no-untyped-def]
    csrf = form_csrf(http.get(page).text) or ""
    return http.post(path, data={"csrf_token": csrf, **form}, follow_redirects=False)


def test_the_console_edits_a_client_user(partner_session, partner, db):
    http = partner_session
    client_id = new_client(http, partner)
    user = add_user(http, partner, client_id, "ann@client.test", role="member")
    page = f"/partner/clients/{client_id}"
    assert f'action="/partner/clients/{client_id}/users/{user["id"]}/edit"' in http.get(page).text
    answer = _post(http, page, f"{page}/users/{user['id']}/edit", name="Ann B", role="editor")
    assert answer.status_code == 303
    assert "Ann B is saved (editor)." in http.get(page).text
    db.rollback()
    assert db.get(ClientUser, user["id"]).role == "editor"


def test_the_console_refuses_demoting_the_last_admin_in_a_sentence(partner_session, partner, db):
    http = partner_session
    client_id = new_client(http, partner)
    user = add_user(http, partner, client_id, "boss@client.test", role="admin")
    page = f"/partner/clients/{client_id}"
    _post(http, page, f"{page}/users/{user['id']}/edit", name="Boss", role="member")
    assert "last admin" in http.get(page).text
    db.rollback()
    assert db.get(ClientUser, user["id"]).role == "admin"


def test_the_console_resends_an_invitation_only_to_users_without_a_password(partner_session, partner):
    http = partner_session
    client_id = new_client(http, partner)
    invited = add_user(http, partner, client_id, "new@client.test", password=None, role="member")
    done = add_user(http, partner, client_id, "old@client.test", role="member")
    page = f"/partner/clients/{client_id}"
    text = http.get(page).text
    assert f'{invited["id"]}/resend"' in text and f'{done["id"]}/resend"' not in text
    assert _post(http, page, f"{page}/users/{invited['id']}/resend").status_code == 303
    assert "new invitation" in http.get(page).text


def test_the_portal_admin_edits_a_user_of_its_client_only(http, partner, db):
    ours = new_client(http, partner)
    theirs = new_client(http, partner)
    add_user(http, partner, ours, "boss@client.test", role="admin")
    member = add_user(http, partner, ours, "ann@client.test", role="member")
    victim = add_user(http, partner, theirs, "victim@other.test", role="member")
    assert sign_in(http, "boss@client.test", PASSWORD).status_code == 303
    assert (
        _post(http, "/app", f"/app/users/{member['id']}/edit", name="Ann", role="editor").status_code == 303
    )
    _post(http, "/app", f"/app/users/{victim['id']}/edit", name="Mine", role="admin")
    db.rollback()
    assert db.get(ClientUser, member["id"]).role == "editor"
    assert (db.get(ClientUser, victim["id"]).name, db.get(ClientUser, victim["id"]).role) == (
        "victim",
        "member",
    )


def test_the_partner_admin_edits_the_team_on_the_account_page(partner_session, partner, add_partner_user, db):
    http = partner_session
    add_partner_user(partner, "viewer")
    viewer = db.scalars(select(PartnerUser).where(PartnerUser.role == "viewer")).one()
    db.rollback()
    assert "Your team" in http.get("/partner").text
    answer = _post(http, "/partner", f"/partner/users/{viewer.id}/edit", name="Vera", role="editor")
    assert answer.status_code == 303
    db.rollback()
    assert (db.get(PartnerUser, viewer.id).name, db.get(PartnerUser, viewer.id).role) == ("Vera", "editor")


def test_a_form_without_its_csrf_token_changes_no_user(partner_session, partner, db):
    http = partner_session
    client_id = new_client(http, partner)
    user = add_user(http, partner, client_id, "ann@client.test", role="member")
    http.post(f"/partner/clients/{client_id}/users/{user['id']}/edit", data={"name": "X", "role": "admin"})
    db.rollback()
    assert db.get(ClientUser, user["id"]).role == "member"
