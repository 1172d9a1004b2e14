"""Factories shared by the content tests (data sources, dashboards, exports, published links,
shares, keys made in the database) and readers of what exports hold. The local data server is
the `data_server` fixture (`tests/conftest.py`, built on `tests.servers.DataServer`)."""

from __future__ import annotations

import io
from typing import Any

from tests.factories import set_status

ROWS = [
    {"month": "Jan", "region": "North", "sales": 120},
    {"month": "Feb", "region": "South", "sales": 80},
    {"month": "Mar", "region": "North", "sales": 150},
]
ALL_KINDS = [
    {"title": "Total", "kind": "value", "columns": {"value": "sales"}},
    {"title": "Rows", "kind": "table", "columns": {}},
    {"title": "By month", "kind": "bar", "columns": {"x": "month", "y": "sales"}},
    {"title": "Trend", "kind": "line", "columns": {"x": "month", "y": "sales"}},
    {"title": "Share", "kind": "pie", "columns": {"label": "region", "value": "sales"}},
]
# Client keys are metered (SPEC §8): a client needs API calls per day for its keys to work.
ACTIVE_RESOURCES = {"dashboards": 5, "users": 2, "published_links": 3, "api_calls_per_day": 100}


def make_client(http, partner, status: str = "setup", resources: dict[str, int] | None = None) -> int:
    body: dict[str, Any] = {"name": f"Client {status}", "status": status}
    if status in ("trial", "active") or resources:
        body["resources"] = resources or ACTIVE_RESOURCES
    response = http.post("/api/1/clients", json=body, headers=partner.headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def inline_source(http, partner, client_id: int | None, rows: list[dict[str, Any]] = ROWS) -> int:
    path = f"/api/1/clients/{client_id}/datasources" if client_id else "/api/1/partner/datasources"
    response = http.post(
        path, json={"name": "Sales", "kind": "inline", "rows": rows}, headers=partner.headers
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def create_dashboard(http, partner, client_id: int | None, source_id: int, klips=ALL_KINDS, name="Sales"):
    path = f"/api/1/clients/{client_id}/dashboards" if client_id else "/api/1/partner/dashboards"
    body = {"name": name, "klips": [{**k, "datasource_id": source_id} for k in klips]}
    return http.post(path, json=body, headers=partner.headers)


def dashboard_in(http, partner, status: str, clock=None) -> tuple[int, int, int]:
    """A client in `status` with an inline source and a dashboard of every klip kind.

    Built in Setup (where anything may be built) and then moved, so every status is reachable.
    Returns (client_id, source_id, dashboard_id).
    """
    client_id = make_client(http, partner, "setup")
    source_id = inline_source(http, partner, client_id)
    response = create_dashboard(http, partner, client_id, source_id)
    assert response.status_code == 201, response.text
    move_to(http, partner, client_id, status, clock)
    return client_id, source_id, response.json()["id"]


def move_to(http, partner, client_id: int, status: str, clock=None) -> None:
    """Move a Setup client to `status` (`trial_expired`: a trial whose end has passed)."""
    target = {"trial_expired": "trial"}.get(status, status)
    if target == "disabled":
        set_status(http, partner, client_id, "active", resources=ACTIVE_RESOURCES)
    if target != "setup":
        set_status(http, partner, client_id, target, resources=ACTIVE_RESOURCES)
    if status == "trial_expired":
        clock.advance(days=15)


def partner_user_headers(db, clock, partner, role: str = "viewer") -> dict[str, str]:
    """Headers with the API key of a new partner user of `role`."""
    from tenantry.db.models import PartnerUser

    user = PartnerUser(
        partner_id=partner.id, email=f"{role}@partner.test", name=role, role=role, created_at=clock.now()
    )
    db.add(user)
    db.flush()
    return api_key_headers(db, clock, partner, partner_user_id=user.id)


def api_key_headers(db, clock, partner, **owner: int) -> dict[str, str]:
    """Headers with a new API key for `owner` (`partner_user_id=`, or `client_id=` and `client_user_id=`)."""
    from tenantry.auth.secrets import new_api_key
    from tenantry.db.models import ApiKey

    key = new_api_key()
    db.add(
        ApiKey(
            partner_id=partner.id,
            name="test",
            prefix=key.prefix,
            secret_hash=key.secret_hash,
            created_at=clock.now(),
            **owner,
        )
    )
    db.commit()
    return {"Authorization": f"Bearer {key.secret}"}


def client_key(db, clock, partner, client_id: int, role: str) -> tuple[int, dict[str, str]]:
    """A new client user of `role` made in the database, and the headers of an API key of theirs."""
    from tenantry.db.models import ClientUser

    user = ClientUser(
        client_id=client_id, email=f"{role}@client.test", name=role, role=role, created_at=clock.now()
    )
    db.add(user)
    db.flush()
    return user.id, api_key_headers(db, clock, partner, client_id=client_id, client_user_id=user.id)


PORTAL_KLIPS = [{"title": "Revenue", "kind": "table", "columns": {}}]


def portal_dashboard(http, partner, client_id: int, name: str = "Sales") -> tuple[int, int]:
    """A dashboard of one table klip over a new inline source; returns (dashboard_id, source_id)."""
    source_id = inline_source(http, partner, client_id)
    response = create_dashboard(http, partner, client_id, source_id, klips=PORTAL_KLIPS, name=name)
    assert response.status_code == 201, response.text
    return response.json()["id"], source_id


def share(http, partner, dashboard_id: int, *user_ids: int) -> None:
    """Share a dashboard with exactly these client users."""
    response = http.put(
        f"/api/1/dashboards/{dashboard_id}/shares", json={"user_ids": list(user_ids)}, headers=partner.headers
    )
    assert response.status_code == 200, response.text


def publish(http, partner, dashboard_id: int, **body: Any):
    """Ask for a published link of a dashboard; returns the response."""
    body.setdefault("name", "Board room")
    return http.post(f"/api/1/dashboards/{dashboard_id}/published-links", json=body, headers=partner.headers)


def path_of(link: dict[str, Any]) -> str:
    """The path of a published link's URL."""
    return str(link["url"][link["url"].index("/published/") :])


WATERMARK = "SETUP MODE"


def pdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def is_watermark_red(r: int, g: int, b: int) -> bool:
    """The watermark's translucent red, over white or over the chart blue (no chart colour is
    this: the palette's red is brighter and purer)."""
    return 200 <= r <= 235 and 70 <= g <= 110 and 70 <= b <= 110
