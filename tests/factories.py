"""Small factories for tests that need clients in a status, their users and keys (over HTTP), and
for signing in and sending forms as a browser does."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from tenantry.auth.secrets import parse_prefix

PASSWORD = "a long secret 1"  # the client users' of `add_user`
ADMIN_PASSWORD = "correct horse battery"  # the partner admin's of the `make_partner` fixture
ROOMY = {"dashboards": 1, "users": 3, "published_links": 1, "api_calls_per_day": 100}


def new_client(http: Any, partner: Any, status: str = "trial", **resources: int) -> int:
    body: dict[str, Any] = {"name": f"Client {status}", "status": status}
    if status != "setup" or resources:
        body["resources"] = {**ROOMY, **resources}
    response = http.post("/api/1/clients", json=body, headers=partner.headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def add_user(
    http: Any,
    partner: Any,
    client_id: int,
    email: str,
    *,
    password: str | None = PASSWORD,
    role: str = "admin",
) -> dict[str, Any]:
    body: dict[str, Any] = {"email": email, "name": email.split("@")[0], "role": role}
    if password is not None:
        body["password"] = password
    response = http.post(f"/api/1/clients/{client_id}/users", json=body, headers=partner.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def key_for(http: Any, partner: Any, client_id: int, user_id: int) -> dict[str, str]:
    response = http.post(
        f"/api/1/clients/{client_id}/users/{user_id}/api-keys", json={"name": "test"}, headers=partner.headers
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['secret']}"}


def prefix_of(headers: dict[str, str]) -> str:
    """The prefix of the API key in these headers (what the key lookup reads by)."""
    prefix = parse_prefix(headers["Authorization"].removeprefix("Bearer "))
    assert prefix is not None
    return prefix


def set_status(http: Any, partner: Any, client_id: int, status: str, **extra: Any) -> None:
    """Change a client's status through the API (with `extra` fields of the same PATCH, e.g.
    `resources=`); the change must be allowed."""
    response = http.patch(
        f"/api/1/clients/{client_id}", json={"status": status, **extra}, headers=partner.headers
    )
    assert response.status_code == 200, response.text


def client_with_user(
    http: Any, partner: Any, clock: Any, status: str, email: str, **resources: int
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """A client in any effective status, with one admin user (added while it could be) and a key.

    `trial_expired` moves the clock past the trial's end; `disabled` goes through Active.
    """
    created = {"trial": "trial", "trial_expired": "trial", "active": "active", "disabled": "active"}[status]
    client_id = new_client(http, partner, created, **resources)
    user = add_user(http, partner, client_id, email)
    headers = key_for(http, partner, client_id, user["id"])
    if status == "disabled":
        set_status(http, partner, client_id, "disabled")
    if status == "trial_expired":
        clock.advance(timedelta(days=15))
    return client_id, user, headers


def csrf_of(page_text: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page_text)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)


def sign_in(http: Any, email: str, password: str) -> Any:
    """Through the /login form, as a browser would: the page first (for its CSRF token), then the post."""
    page = http.get("/login")
    form = {"email": email, "password": password, "csrf_token": csrf_of(page.text)}
    return http.post("/login", data=form, follow_redirects=False)


def post_form(http: Any, path: str, page: str, **form: str) -> Any:
    """Send a form as a browser would, signed in: the CSRF token from the page it is on."""
    data = {"csrf_token": csrf_of(http.get(page).text), **form}
    return http.post(path, data=data, follow_redirects=False)


def admin_email(db: Any, partner: Any) -> str:
    """The e-mail address of the partner's admin (who signs in with `ADMIN_PASSWORD`)."""
    from tenantry.db.models import PartnerUser

    return str(db.get(PartnerUser, partner.admin_user_id).email)


def enter(http: Any, client_id: int, mode: str = "admin") -> Any:
    """A partner user signed in to the console enters a client ("sign in as")."""
    csrf = csrf_of(http.get("/partner").text)
    form = {"client_id": str(client_id), "mode": mode, "csrf_token": csrf}
    return http.post("/partner/sign-in-as", data=form, follow_redirects=False)


def add_partner_viewer(database: Any, partner: Any, clock: Any, email: str = "viewer@partner.test") -> None:
    """A partner user who may only look (role `viewer`), signing in with `PASSWORD`."""
    from tenantry.auth.secrets import hash_password
    from tenantry.db.models import PartnerUser

    with database.session(write=True) as session:
        session.add(
            PartnerUser(
                partner_id=partner.id,
                email=email,
                name="Viewer",
                role="viewer",
                password_hash=hash_password(PASSWORD),
                created_at=clock.now(),
            )
        )
        session.commit()


def drop_every_connection(database: Any) -> None:
    """The PostgreSQL server ends every connection to the test database but the asking one, as a
    restart would."""
    from sqlalchemy import text

    with database.engine.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        conn.commit()
