"""Data sources' secrets (SPEC §14): header values, `auth.password`, `auth.token` and a sql
source's `password` are write-only. Every answer shows "*****"; "*****" sent back keeps the
stored value; the database holds them sealed; they never reach the log, an idempotency record or
the audit trail; a stored secret never follows a source to another server; a worker fetches with
them, and a source whose secrets no configured key opens fails with a plain `last_error`."""

from __future__ import annotations

import io
import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tenantry.api import idempotency
from tenantry.datasources.request import SECRETS_UNREADABLE, request_of
from tenantry.datasources.schemas import MASK
from tenantry.db.dashboard_models import DataSource
from tenantry.db.models import AuditEvent, IdempotencyRecord
from tenantry.logs import configure_logging, flush_logs
from tenantry.settings import Settings
from tenantry.vault import Vault, load_vault
from tests.conftest import REDIS_URL
from tests.content import make_client
from tests.factories import client_with_user
from tests.servers import local_http_server, served

TOKEN = "tok-9f8e7d6c5b4a-bearer"
API_KEY = "hdr-1a2b3c4d5e6f-apikey"
PASSWORD = "pw-0a9b8c7d6e5f-basic"
DB_PASSWORD = "pw-5e6f7a8b9c0d-database"
SECRETS = (TOKEN, API_KEY, PASSWORD, DB_PASSWORD)

URL_WITH_EVERYTHING = {
    "name": "Billing",
    "kind": "url",
    "url": "https://api.example.com/v1/{{client.prop.account}}/sales.csv",
    "format": "csv",
    "headers": {"X-Api-Key": API_KEY, "X-Other": "other-" + API_KEY},
    "auth": {"type": "bearer", "token": TOKEN},
}
BASIC = {
    "name": "Basic",
    "kind": "url",
    "url": "https://api.example.com/sales.json",
    "format": "json",
    "auth": {"type": "basic", "username": "reports", "password": PASSWORD},
}
SQL = {
    "name": "Warehouse",
    "kind": "sql",
    "engine": "postgresql",
    "host": "db.example.com",
    "database": "sales",
    "username": "reader",
    "password": DB_PASSWORD,
    "query": "SELECT month, total FROM sales WHERE account = {{client.prop.account}}",
}


def create(http, partner, client_id, body, headers=None):  # type: ignore[no-untyped-def]
    return http.post(f"/api/1/clients/{client_id}/datasources", json=body, headers=headers or partner.headers)


def created(http, partner, client_id, body) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = create(http, partner, client_id, body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def stored(database, source_id: int) -> DataSource:  # type: ignore[no-untyped-def]
    with database.session() as db:
        source = db.get(DataSource, source_id)
        assert source is not None
        db.expunge(source)
        return source


def opened(app, database, source_id: int):  # type: ignore[no-untyped-def]
    """The request the worker would make, with the stored secrets opened by the app's vault."""
    return request_of(stored(database, source_id), app.state.services.vault, None)


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a secret is shown: {secret}"


class TestEveryAnswerMasksEverySecret:
    @pytest.mark.parametrize(
        ("body", "where", "expected"),
        [
            (URL_WITH_EVERYTHING, ("headers",), {"X-Api-Key": MASK, "X-Other": MASK}),
            (URL_WITH_EVERYTHING, ("auth",), {"type": "bearer", "token": MASK}),
            (BASIC, ("auth",), {"type": "basic", "username": "reports", "password": MASK}),
            (SQL, ("password",), MASK),
        ],
        ids=["header values", "bearer token", "basic password", "sql password"],
    )
    def test_the_created_source_the_source_and_the_list_show_the_mask(
        self, http, partner, body, where, expected
    ):
        client_id = make_client(http, partner)
        answer = create(http, partner, client_id, body)
        assert answer.status_code == 201, answer.text
        source_id = answer.json()["id"]
        one = http.get(f"/api/1/datasources/{source_id}", headers=partner.headers)
        listing = http.get(f"/api/1/clients/{client_id}/datasources", headers=partner.headers)
        for text, config in [
            (answer.text, answer.json()["config"]),
            (one.text, one.json()["config"]),
            (listing.text, listing.json()["items"][0]["config"]),
        ]:
            assert_no_secret(text)
            assert config[where[0]] == expected

    def test_the_settings_that_are_not_secret_are_shown_as_sent(self, http, partner):
        client_id = make_client(http, partner)
        body = {
            **BASIC,
            "query": {"from": "2026-01"},
            "records": "data.items",
            "method": "POST",
            "body": "{}",
        }
        config = created(http, partner, client_id, body)["config"]
        assert config["query"] == {"from": "2026-01"}
        assert (config["records"], config["method"], config["body"]) == ("data.items", "POST", "{}")
        sql = created(http, partner, client_id, SQL)["config"]
        assert {k: sql[k] for k in ("engine", "host", "port", "database", "username", "query")} == {
            "engine": "postgresql",
            "host": "db.example.com",
            "port": None,
            "database": "sales",
            "username": "reader",
            "query": SQL["query"],
        }

    def test_the_database_holds_the_secrets_sealed_and_the_settings_without_them(
        self, http, partner, database
    ):
        client_id = make_client(http, partner)
        for body in (URL_WITH_EVERYTHING, BASIC, SQL):
            source = stored(database, created(http, partner, client_id, body)["id"])
            assert source.secrets is not None and source.secrets.startswith("v1.")
            assert_no_secret(source.secrets)
            assert_no_secret(json.dumps(source.config))

    def test_a_source_without_secrets_stores_none(self, http, partner, database):
        client_id = make_client(http, partner)
        body = {"name": "Open", "kind": "url", "url": "https://example.com/a.csv", "format": "csv"}
        source = stored(database, created(http, partner, client_id, body)["id"])
        assert source.secrets is None
        assert source.config is not None and source.config["headers"] == []


class TestTheMaskKeepsTheStoredValue:
    def test_sending_the_masks_back_changes_nothing_secret(self, http, partner, app, database):
        client_id = make_client(http, partner)
        source_id = created(http, partner, client_id, URL_WITH_EVERYTHING)["id"]
        shown = http.get(f"/api/1/datasources/{source_id}", headers=partner.headers).json()["config"]
        answer = http.patch(
            f"/api/1/datasources/{source_id}",
            json={"name": "Renamed", "headers": shown["headers"], "auth": shown["auth"]},
            headers=partner.headers,
        )
        assert answer.status_code == 200, answer.text
        request = opened(app, database, source_id)
        assert request.headers == {"X-Api-Key": API_KEY, "X-Other": "other-" + API_KEY}
        assert request.auth == {"type": "bearer", "token": TOKEN}

    def test_one_secret_may_change_while_the_others_are_kept(self, http, partner, app, database):
        client_id = make_client(http, partner)
        source_id = created(http, partner, client_id, URL_WITH_EVERYTHING)["id"]
        answer = http.patch(
            f"/api/1/datasources/{source_id}",
            json={"headers": {"X-Api-Key": "new-key-value", "X-Other": MASK}},
            headers=partner.headers,
        )
        assert answer.status_code == 200, answer.text
        request = opened(app, database, source_id)
        assert request.headers == {"X-Api-Key": "new-key-value", "X-Other": "other-" + API_KEY}
        assert request.auth == {"type": "bearer", "token": TOKEN}  # not sent: kept

    def test_a_header_left_out_of_the_new_set_is_forgotten(self, http, partner, app, database):
        client_id = make_client(http, partner)
        source_id = created(http, partner, client_id, URL_WITH_EVERYTHING)["id"]
        answer = http.patch(
            f"/api/1/datasources/{source_id}", json={"headers": {"X-Api-Key": MASK}}, headers=partner.headers
        )
        assert answer.json()["config"]["headers"] == {"X-Api-Key": MASK}
        assert opened(app, database, source_id).headers == {"X-Api-Key": API_KEY}

    def test_a_basic_password_and_a_sql_password_are_kept_the_same_way(self, http, partner, app, database):
        client_id = make_client(http, partner)
        basic_id = created(http, partner, client_id, BASIC)["id"]
        sql_id = created(http, partner, client_id, SQL)["id"]
        kept = http.patch(
            f"/api/1/datasources/{basic_id}",
            json={"auth": {"type": "basic", "username": "other-user", "password": MASK}},
            headers=partner.headers,
        )
        assert kept.status_code == 200, kept.text
        assert opened(app, database, basic_id).auth == {
            "type": "basic",
            "username": "other-user",
            "password": PASSWORD,
        }
        kept = http.patch(
            f"/api/1/datasources/{sql_id}",
            json={"password": MASK, "database": "sales_2026"},
            headers=partner.headers,
        )
        assert kept.status_code == 200, kept.text
        assert opened(app, database, sql_id).sql["password"] == DB_PASSWORD
        assert opened(app, database, sql_id).sql["database"] == "sales_2026"

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({**URL_WITH_EVERYTHING, "headers": {"X-Api-Key": MASK}}, ["headers", "X-Api-Key"]),
            ({**BASIC, "auth": {"type": "basic", "username": "u", "password": MASK}}, ["auth", "password"]),
            ({**URL_WITH_EVERYTHING, "auth": {"type": "bearer", "token": MASK}}, ["auth", "token"]),
            ({**SQL, "password": MASK}, ["password"]),
        ],
    )
    def test_the_mask_on_a_new_source_is_refused_as_it_stands_for_nothing(
        self, http, partner, database, body, field
    ):
        client_id = make_client(http, partner)
        answer = create(http, partner, client_id, body)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["errors"][0]["loc"] == ["body", *field]
        with database.session() as db:
            assert db.scalars(select(DataSource)).all() == []

    def test_the_mask_for_a_header_that_was_never_stored_is_refused(self, http, partner, app, database):
        client_id = make_client(http, partner)
        source_id = created(http, partner, client_id, URL_WITH_EVERYTHING)["id"]
        answer = http.patch(
            f"/api/1/datasources/{source_id}",
            json={"headers": {"X-Api-Key": "changed", "X-Unknown": MASK}},
            headers=partner.headers,
        )
        assert answer.status_code == 422
        assert answer.json()["errors"][0]["loc"] == ["body", "headers", "X-Unknown"]
        assert opened(app, database, source_id).headers["X-Api-Key"] == API_KEY  # nothing changed


class TestAStoredSecretNeverFollowsTheSourceElsewhere:
    """The attack: the partner builds a source in a client's account with the partner's own
    token; the client's admin edits the source's URL to point at a server of their own, keeping
    the masked token, and reads it from the request the next refresh makes."""

    def test_a_client_admin_cannot_send_the_stored_secrets_to_another_server(
        self, http, partner, clock, app, database
    ):
        client_id, _, client_admin = client_with_user(http, partner, clock, "active", "boss@client.test")
        source_id = created(http, partner, client_id, URL_WITH_EVERYTHING)["id"]
        before = stored(database, source_id)
        answer = http.patch(
            f"/api/1/datasources/{source_id}",
            json={"url": "https://attacker.example.net/collect"},
            headers=client_admin,
        )
        assert answer.status_code == 422, answer.text
        fields = sorted(tuple(error["loc"][1:]) for error in answer.json()["errors"])
        assert fields == [("auth", "token"), ("headers", "X-Api-Key"), ("headers", "X-Other")]
        after = stored(database, source_id)
        assert (after.url, after.secrets, after.config) == (before.url, before.secrets, before.config)

    @pytest.mark.parametrize(
        "url",
        [
            "http://api.example.com/v1/sales.csv",  # the same host without TLS
            "https://api.example.com:8443/v1/sales.csv",  # another port
            "https://API.example.com.attacker.net/v1/sales.csv",
            "https://{{client.prop.host}}/v1/sales.csv",
        ],
    )
    def test_another_scheme_port_or_host_counts_as_another_server(self, http, partner, url):
        client_id = make_client(http, partner)
        source_id = created(http, partner, client_id, URL_WITH_EVERYTHING)["id"]
        answer = http.patch(
            f"/api/1/datasources/{source_id}",
            json={"url": url, "headers": {"X-Api-Key": MASK, "X-Other": MASK}},
            headers=partner.headers,
        )
        assert answer.status_code == 422, answer.text

    def test_the_same_server_under_another_path_keeps_the_secrets(self, http, partner, app, database):
        client_id = make_client(http, partner)
        source_id = created(http, partner, client_id, URL_WITH_EVERYTHING)["id"]
        answer = http.patch(
            f"/api/1/datasources/{source_id}",
            json={"url": "https://API.example.com:443/v2/report.csv"},
            headers=partner.headers,
        )
        assert answer.status_code == 200, answer.text
        assert opened(app, database, source_id).auth == {"type": "bearer", "token": TOKEN}

    def test_moving_with_every_secret_sent_again_is_allowed(self, http, partner, app, database):
        client_id = make_client(http, partner)
        source_id = created(http, partner, client_id, URL_WITH_EVERYTHING)["id"]
        answer = http.patch(
            f"/api/1/datasources/{source_id}",
            json={
                "url": "https://other.example.org/sales.csv",
                "headers": {"X-Api-Key": "for-the-other-server"},
                "auth": {"type": "bearer", "token": "other-token"},
            },
            headers=partner.headers,
        )
        assert answer.status_code == 200, answer.text
        request = opened(app, database, source_id)
        assert (request.headers, request.auth) == (
            {"X-Api-Key": "for-the-other-server"},
            {"type": "bearer", "token": "other-token"},
        )

    @pytest.mark.parametrize(
        "change", [{"host": "attacker.example.net"}, {"port": 6543}, {"engine": "mysql"}]
    )
    def test_a_sql_source_keeps_its_password_only_on_the_same_server(self, http, partner, database, change):
        client_id = make_client(http, partner)
        source_id = created(http, partner, client_id, SQL)["id"]
        before = stored(database, source_id)
        answer = http.patch(f"/api/1/datasources/{source_id}", json=change, headers=partner.headers)
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["loc"] == ["body", "password"]
        assert stored(database, source_id).config == before.config
        again = http.patch(
            f"/api/1/datasources/{source_id}", json={**change, "password": "new-one"}, headers=partner.headers
        )
        assert again.status_code == 200, again.text


class TestSecretsGoNowhereElse:
    def test_the_idempotency_record_holds_only_the_masked_answer(self, http, partner, database):
        client_id = make_client(http, partner)
        headers = {**partner.headers, "Idempotency-Key": "create-billing-source"}
        first = http.post(
            f"/api/1/clients/{client_id}/datasources", json=URL_WITH_EVERYTHING, headers=headers
        )
        replay = http.post(
            f"/api/1/clients/{client_id}/datasources", json=URL_WITH_EVERYTHING, headers=headers
        )
        assert first.status_code == replay.status_code == 201
        assert replay.json() == first.json()
        with database.session() as db:
            records = db.scalars(select(IdempotencyRecord)).all()
        assert len(records) == 1 and records[0].body
        stored = bytes(records[0].body)
        # Kept sealed (`api.idempotency`); opened, it is the masked answer, as replayed.
        body = idempotency._opened(http.app.state.services.vault, stored).decode()
        assert MASK not in stored.decode() and MASK in body
        assert_no_secret(stored.decode() + body + records[0].request_hash)

    def test_the_audit_trail_names_the_secrets_changed_but_holds_none(self, http, partner, database):
        client_id = make_client(http, partner)
        source_id = created(http, partner, client_id, URL_WITH_EVERYTHING)["id"]
        http.patch(
            f"/api/1/datasources/{source_id}",
            json={"headers": {"X-Api-Key": "rotated-" + API_KEY}, "auth": {"type": "bearer", "token": MASK}},
            headers=partner.headers,
        )
        with database.session() as db:
            details = [
                e.details
                for e in db.scalars(select(AuditEvent).where(AuditEvent.action.like("datasource.%")))
            ]
        assert any("headers.X-Api-Key" in (d or {}).get("secrets", []) for d in details)
        assert_no_secret(json.dumps(details))
        assert "rotated-" not in json.dumps(details)

    def test_no_secret_reaches_the_log(
        self, database_url, make_partner, tmp_path, make_worker, guarded_server, clock
    ):
        """A real server, run as an operator runs it (JSON logs at DEBUG), then a worker's
        refreshes; both logs are read afterwards."""
        partner = make_partner(dashboards=10, users=10, published_links=10, api_calls_per_day=1000)
        log_path = tmp_path / "server.log"
        env = {
            "TENANTRY_LOG_FORMAT": "json",
            "TENANTRY_LOG_LEVEL": "DEBUG",
            "TENANTRY_DATA_DIR": str(tmp_path),
            "TENANTRY_OUTBOUND_ALLOW": "127.0.0.1",
        }
        with (
            served(database_url, REDIS_URL, log_path, "--no-worker", **env) as url,
            httpx.Client(base_url=url, headers=partner.headers, timeout=30) as http,
        ):
            client_id = make_client(http, partner)
            ids = [
                created(http, partner, client_id, body)["id"] for body in (URL_WITH_EVERYTHING, BASIC, SQL)
            ]
            # A refused change (its body holds secrets), an accepted one, a malformed one.
            http.patch(
                f"/api/1/datasources/{ids[0]}",
                json={"url": "https://attacker.example.net/", "headers": {"X-Api-Key": API_KEY}},
            )
            http.patch(f"/api/1/datasources/{ids[2]}", json={"password": DB_PASSWORD})
            http.patch(f"/api/1/datasources/{ids[2]}", json={"password": [DB_PASSWORD]})
            moved = http.patch(
                f"/api/1/datasources/{ids[0]}",
                json={
                    "url": guarded_server["base"] + "/wrong",
                    "headers": {"X-Api-Key": API_KEY},
                    "auth": {"type": "bearer", "token": TOKEN},
                },
            )
            assert moved.status_code == 200, moved.text
        log = log_path.read_text()
        assert "/datasources" in log  # the requests were logged
        assert_no_secret(log)
        # The worker (in this process, reading the same key file) refreshes the sources: one
        # with its secrets, the others failing.
        clock.advance(datetime.now(UTC) - clock.now() + timedelta(minutes=1))  # the server's time
        stream = io.StringIO()
        configure_logging("DEBUG", "json", stream=stream)
        try:
            # Made after the logging is set up: its logger binds to the stream.
            worker = make_worker(vault=load_vault(Settings(data_dir=tmp_path, _env_file=None)))  # type: ignore[call-arg]
            worker.run_once()
            # The log is written by a thread of its own: wait (briefly) for the refresh's line.
            deadline = time.monotonic() + 5
            while '"source_id": 1' not in stream.getvalue() and time.monotonic() < deadline:
                flush_logs()
                time.sleep(0.05)
        finally:
            configure_logging()
        assert guarded_server["paths"] == ["/wrong"]
        assert '"rows": 2' in stream.getvalue()  # fetched with the secrets, and logged
        assert_no_secret(stream.getvalue())


@pytest.fixture
def guarded_server() -> Iterator[dict[str, Any]]:
    """A data server that answers only with the right key and token, and records what it got."""
    seen: dict[str, Any] = {"paths": [], "headers": []}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with lock:
                seen["paths"].append(self.path)
                seen["headers"].append(dict(self.headers.items()))
            allowed = self.headers.get("X-Api-Key") == API_KEY and self.headers.get("Authorization") == (
                f"Bearer {TOKEN}"
            )
            body = b"month,sales\nJan,1\nFeb,2\n" if allowed else b"no"
            self.send_response(200 if allowed else 401)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    with local_http_server(Handler) as base:
        seen["base"] = base
        yield seen


class TestTheWorkerFetchesWithTheSecrets:
    def _source(self, http, partner, base: str, client_id: int) -> int:  # type: ignore[no-untyped-def]
        body = {**URL_WITH_EVERYTHING, "url": base + "/v1/{{client.prop.account}}/sales.csv"}
        return int(created(http, partner, client_id, body)["id"])

    def test_a_refresh_sends_the_opened_secrets_and_the_clients_values(
        self, http, partner, worker, database, guarded_server
    ):
        client_id = make_client(http, partner)
        put = http.put(
            f"/api/1/clients/{client_id}/properties", json={"account": "acme/eu 1"}, headers=partner.headers
        )
        assert put.status_code == 200, put.text
        source_id = self._source(http, partner, guarded_server["base"], client_id)
        worker.run_once()
        source = stored(database, source_id)
        assert (source.last_error, source.row_count) == (None, 2)
        assert guarded_server["paths"] == ["/v1/acme%2Feu%201/sales.csv"]

    def test_a_missing_property_fails_the_refresh_naming_it(
        self, http, partner, worker, database, guarded_server
    ):
        client_id = make_client(http, partner)
        source_id = self._source(http, partner, guarded_server["base"], client_id)
        worker.run_once()
        assert stored(database, source_id).last_error == "The client has no property 'account'."
        assert guarded_server["paths"] == []

    def test_secrets_no_configured_key_opens_fail_the_refresh_plainly_and_the_api_still_answers(
        self, http, partner, make_worker, database, guarded_server
    ):
        client_id = make_client(http, partner)
        http.put(f"/api/1/clients/{client_id}/properties", json={"account": "a"}, headers=partner.headers)
        source_id = self._source(http, partner, guarded_server["base"], client_id)
        make_worker(vault=Vault(os.urandom(32))).run_once()  # the key was lost or replaced
        source = stored(database, source_id)
        assert (source.last_error, source.refresh_fail_count) == (SECRETS_UNREADABLE, 1)
        assert guarded_server["paths"] == []  # nothing was sent without its secrets
        shown = http.get(f"/api/1/datasources/{source_id}", headers=partner.headers)
        assert shown.status_code == 200
        assert shown.json()["config"]["auth"] == {"type": "bearer", "token": MASK}
        assert shown.json()["last_error"] == SECRETS_UNREADABLE

    def test_keeping_secrets_no_key_opens_is_refused_and_sending_them_again_mends_the_source(
        self, http, partner, app, database
    ):
        client_id = make_client(http, partner)
        source_id = created(http, partner, client_id, URL_WITH_EVERYTHING)["id"]
        with database.session(write=True) as db:
            source = db.get(DataSource, source_id)
            assert source is not None
            source.secrets = Vault(os.urandom(32)).seal(json.dumps({"auth.token": "lost"}))
            db.commit()
        kept = http.patch(
            f"/api/1/datasources/{source_id}", json={"headers": {"X-Api-Key": MASK}}, headers=partner.headers
        )
        assert kept.status_code == 422, kept.text
        assert SECRETS_UNREADABLE in kept.json()["detail"]
        mended = http.patch(
            f"/api/1/datasources/{source_id}",
            json={"headers": {"X-Api-Key": API_KEY}, "auth": {"type": "bearer", "token": TOKEN}},
            headers=partner.headers,
        )
        assert mended.status_code == 200, mended.text
        assert opened(app, database, source_id).auth == {"type": "bearer", "token": TOKEN}


class TestTestingAConnectionFollowsTheSameRule:
    """ "Test connection" on a source being edited stands "*****" for the stored secrets: with
    settings that point elsewhere it would be the same attack, answered at once."""

    def _prepare(self, database, partner, source_id: int, body: dict[str, Any], app):  # type: ignore[no-untyped-def]
        from pydantic import TypeAdapter

        from tenantry.auth.principal import Principal
        from tenantry.datasources import probe
        from tenantry.datasources.schemas import DataSourceCreate

        parsed = TypeAdapter(DataSourceCreate).validate_python(body)
        with database.session() as db:
            source = db.get(DataSource, source_id)
            assert source is not None
            caller = Principal("partner_user", partner.id, 0, "admin")
            return probe.prepare(
                db,
                caller,
                parsed,
                client_id=source.client_id,
                vault=app.state.services.vault,
                source_id=source_id,
            )

    def test_the_masks_with_another_server_are_refused(self, http, partner, app, database):
        from tenantry.errors import InvalidInput

        client_id = make_client(http, partner)
        source_id = created(http, partner, client_id, URL_WITH_EVERYTHING)["id"]
        body = {
            **URL_WITH_EVERYTHING,
            "url": "https://attacker.example.net/collect",
            "headers": {"X-Api-Key": MASK},
            "auth": {"type": "bearer", "token": MASK},
        }
        with pytest.raises(InvalidInput) as refused:
            self._prepare(database, partner, source_id, body, app)
        assert sorted(e["loc"][1:] for e in refused.value.extensions["errors"]) == [
            ["auth", "token"],
            ["headers", "X-Api-Key"],
        ]

    def test_the_masks_with_the_same_server_stand_for_the_stored_secrets(self, http, partner, app, database):
        client_id = make_client(http, partner)
        source_id = created(http, partner, client_id, URL_WITH_EVERYTHING)["id"]
        body = {
            **URL_WITH_EVERYTHING,
            "headers": {"X-Api-Key": MASK},
            "auth": {"type": "bearer", "token": MASK},
        }
        request = self._prepare(database, partner, source_id, body, app)
        assert (request.headers, request.auth) == ({"X-Api-Key": API_KEY}, {"type": "bearer", "token": TOKEN})

    def test_a_sql_password_mask_with_another_host_is_refused(self, http, partner, app, database):
        from tenantry.errors import InvalidInput

        client_id = make_client(http, partner)
        source_id = created(http, partner, client_id, SQL)["id"]
        with pytest.raises(InvalidInput):
            self._prepare(
                database, partner, source_id, {**SQL, "host": "evil.example.net", "password": MASK}, app
            )
        same = self._prepare(database, partner, source_id, {**SQL, "password": MASK}, app)
        assert same.sql is not None and same.sql["password"] == DB_PASSWORD


class TestSettingsOfAnotherKind:
    @pytest.mark.parametrize(
        ("body", "change", "field"),
        [
            (URL_WITH_EVERYTHING, {"password": "x"}, ["password"]),
            (URL_WITH_EVERYTHING, {"query": "SELECT 1"}, ["query"]),
            (SQL, {"headers": {"X-A": "b"}}, ["headers"]),
            (SQL, {"query": {"a": "b"}}, ["query"]),
            (SQL, {"url": "https://example.com/a.csv"}, ["url"]),
            (SQL, {"host": None}, ["host"]),
            ({"name": "I", "kind": "inline", "rows": [{"a": 1}]}, {"auth": None}, ["auth"]),
        ],
    )
    def test_a_setting_the_kind_does_not_have_is_refused_naming_it(
        self, http, partner, database, body, change, field
    ):
        client_id = make_client(http, partner)
        source_id = created(http, partner, client_id, body)["id"]
        before = stored(database, source_id)
        answer = http.patch(f"/api/1/datasources/{source_id}", json=change, headers=partner.headers)
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["loc"] == ["body", *field]
        after = stored(database, source_id)
        assert (after.config, after.secrets, after.url) == (before.config, before.secrets, before.url)
