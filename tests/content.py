"""Factories and a local HTTP data server shared by the content tests (data sources, dashboards,
exports, published links). Subpackages import the fixture in their conftest."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

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


@dataclass
class DataServer:
    """A real HTTP server on 127.0.0.1 whose answers a test sets per path."""

    base: str = ""
    routes: dict[str, tuple[int, str, bytes]] = field(default_factory=dict)
    stall: threading.Event = field(default_factory=threading.Event)
    hits: list[str] = field(default_factory=list)

    def serve(self, path: str, body: bytes | str, content_type: str = "text/csv", status: int = 200) -> str:
        self.routes[path] = (status, content_type, body.encode() if isinstance(body, str) else body)
        return self.base + path


@pytest.fixture
def data_server() -> Iterator[DataServer]:
    server_state = DataServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server_state.hits.append(self.path)
            if self.path == "/stall":
                server_state.stall.wait(5)
                return
            status, content_type, body = server_state.routes.get(self.path, (404, "text/plain", b"missing"))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    with local_http_server(Handler) as base:
        server_state.base = base
        try:
            yield server_state
        finally:
            server_state.stall.set()


@contextmanager
def local_http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 in a thread; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def make_client(http, partner, status: str = "setup", resources: dict[str, int] | None = None) -> int:
    body: dict[str, Any] = {"name": f"Client {status}", "status": status}
    if status in ("trial", "active") or resources:
        body["resources"] = resources or ACTIVE_RESOURCES
    response = http.post("/api/1/clients", json=body, headers=partner.headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def set_status(http, partner, client_id: int, status: str, **extra: Any) -> None:
    response = http.patch(
        f"/api/1/clients/{client_id}", json={"status": status, **extra}, headers=partner.headers
    )
    assert response.status_code == 200, response.text


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
