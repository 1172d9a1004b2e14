"""Logs are one structured line per record, never hold a secret, and never stall the server
(SPEC §12 "Errors and logs")."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from tenantry.app import create_app
from tenantry.logs import flush_logs
from tests.conftest import REDIS_URL
from tests.factories import add_user, csrf_of, key_for, new_client
from tests.servers import served


@pytest.fixture
def json_logs(settings):  # type: ignore[no-untyped-def]
    return settings.model_copy(update={"log_format": "json", "log_level": "DEBUG"})


def _lines(capfd: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    flush_logs()
    out = capfd.readouterr().err
    records = []
    for line in out.splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def test_an_unexpected_error_is_logged_as_one_line_without_local_variables(json_logs, clock, database, capfd):
    app = create_app(json_logs, clock=clock, database=database)

    @app.get("/fails-for-a-test")
    async def fails(request: Request) -> None:
        password = "hunter2-local-secret"  # a local variable a rich traceback would print
        raise ValueError(f"could not parse {len(password)} characters")

    from fastapi.testclient import TestClient

    capfd.readouterr()
    with TestClient(app, raise_server_exceptions=False) as http:
        response = http.get("/fails-for-a-test", headers={"X-Request-ID": "trace-me-123"})
    records = _lines(capfd)
    assert response.status_code == 500
    errors = [r for r in records if r.get("event") == "unhandled error"]
    assert len(errors) == 1
    assert errors[0]["error_type"] == "ValueError"
    assert errors[0]["error"] == "could not parse 20 characters"
    assert errors[0]["request_id"] == "trace-me-123"
    assert errors[0]["route"] == "/fails-for-a-test"
    everything = json.dumps(records)
    assert "hunter2-local-secret" not in everything
    assert "Traceback" not in everything


def test_log_lines_are_json_objects_when_asked(json_logs, clock, database, capfd):
    from fastapi.testclient import TestClient

    capfd.readouterr()
    with TestClient(create_app(json_logs, clock=clock, database=database)) as http:
        http.get("/api/1/partner")
    flush_logs()
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert lines
    for line in lines:
        record = json.loads(line)
        assert {"event", "level", "timestamp"} <= set(record)


def test_no_secret_reaches_the_log(database_url, make_partner, tmp_path):
    """A whole session of a server, run as an operator runs it, with everything that carries a
    secret: keys in headers, passwords in forms and bodies, invitation and published-link tokens,
    webhook secrets. The log is read afterwards."""
    partner = make_partner(dashboards=10, users=10, published_links=10, api_calls_per_day=1000)
    log_path = tmp_path / "server.log"
    secrets: list[str] = [partner.api_key]
    env = {"TENANTRY_LOG_FORMAT": "json", "TENANTRY_LOG_LEVEL": "DEBUG"}
    with served(database_url, REDIS_URL, log_path, "--no-worker", **env) as url:
        with httpx.Client(base_url=url, headers=partner.headers, timeout=30) as http:
            client_id = new_client(http, partner, "trial")
            user = add_user(http, partner, client_id, "someone@client.test", password="a long secret 1")
            secrets.append("a long secret 1")
            invited = http.post(
                f"/api/1/clients/{client_id}/users",
                json={"email": "invited@client.test", "name": "Invited", "role": "member"},
            )
            assert invited.status_code == 201
            client_key = key_for(http, partner, client_id, user["id"])
            secrets.append(client_key["Authorization"].split()[1])
            http.get("/api/1/me", headers=client_key)
            hook = http.post("/api/1/webhooks", json={"url": "https://hooks.example.com/x"})
            if hook.status_code == 201:
                secrets.append(hook.json()["secret"])
            source = http.post(
                f"/api/1/clients/{client_id}/datasources",
                json={"name": "S", "kind": "inline", "rows": [{"a": 1}]},
            ).json()
            board = http.post(
                f"/api/1/clients/{client_id}/dashboards",
                json={"name": "D", "klips": [{"title": "T", "kind": "table", "datasource_id": source["id"]}]},
            ).json()
            link = http.post(f"/api/1/dashboards/{board['id']}/published-links", json={"name": "L"}).json()
            token = link["url"].rsplit("/", 1)[1]
            secrets.append(token)
        with httpx.Client(base_url=url, timeout=30) as browser:
            browser.get(f"/published/{token}")
            page = browser.get("/login")
            browser.post(
                "/login",
                data={
                    "email": "someone@client.test",
                    "password": "wrong guess 12345",
                    "csrf_token": csrf_of(page.text),
                },
            )
            secrets.append("wrong guess 12345")
            browser.post(
                "/login",
                data={
                    "email": "someone@client.test",
                    "password": "a long secret 1",
                    "csrf_token": csrf_of(page.text),
                },
            )
            session = browser.cookies.get("tenantry_session")
            if session:
                secrets.append(session)
            browser.get("/api/1/partner", headers={"Authorization": "Bearer not-a-key-but-a-credential"})
            secrets.append("not-a-key-but-a-credential")
    log = log_path.read_text()
    assert "/published/" in log  # the access log was written
    for secret in secrets:
        assert secret not in log, f"a secret reached the log: {secret[:6]}…"


def test_the_log_never_shows_an_invitation_link_token(database_url, make_partner, tmp_path):
    partner = make_partner(dashboards=10, users=10, published_links=10, api_calls_per_day=1000)
    log_path = tmp_path / "server.log"
    with (
        served(database_url, REDIS_URL, log_path, "--no-worker", TENANTRY_LOG_FORMAT="json") as url,
        httpx.Client(base_url=url, headers=partner.headers, timeout=30) as http,
    ):
        client_id = new_client(http, partner, "trial")
        invited = http.post(
            f"/api/1/clients/{client_id}/users",
            json={"email": "invited@client.test", "name": "Invited", "role": "member"},
        )
        assert invited.status_code == 201
    log = log_path.read_text()
    assert not re.search(r"/invite/[A-Za-z0-9_\-]{16,}", log)


def test_http_requests_are_counted_by_route_and_status(app, http, partner):
    @app.get("/fails-for-a-metrics-test")
    async def fails() -> None:
        raise RuntimeError("boom")

    http.get("/api/1/partner", headers=partner.headers)
    http.get("/fails-for-a-metrics-test")
    metrics = http.get("/metrics").text
    assert re.search(
        r'tenantry_http_requests_total\{method="GET",route="/api/1/partner",status="200"\} [1-9]', metrics
    )
    assert re.search(
        r'tenantry_http_requests_total\{method="GET",route="/fails-for-a-metrics-test",status="500"\} 1\.0',
        metrics,
    )
    assert (
        'tenantry_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/api/1/partner"}'
        in metrics
    )


def test_made_up_methods_add_no_metric_series_of_their_own(http):
    for n in range(5):
        http.request(f"MADEUP{n}", "/api/1/no-such-thing")
    metrics = http.get("/metrics").text
    assert "MADEUP" not in metrics
    other = re.search(
        r'tenantry_http_requests_total\{method="other",route="unmatched",status="401"\} (\S+)', metrics
    )
    assert other is not None and float(other.group(1)) >= 5
