"""The partner's credentials in a client's account (SPEC §13, §14): a partner builds a source in a
client's account with a token or a database user that reaches every client's data, and holds it to
this client's with a placeholder (`{{client.prop.account}}`), which clients may not set. A client's
admin or editor who keeps those credentials with "*****" may rename the source and change how often
it is refreshed, nothing it fetches (path, query, headers, body, SQL, database...), neither by
saving nor by "Test connection"; sending every secret again makes them the client's own. Partner
users are not held by this. The source records who set its secrets (`secrets_set_by`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command

from tenantry.datasources.request import request_of
from tenantry.datasources.schemas import MASK
from tenantry.db.dashboard_models import DataSource
from tenantry.db.migrate import alembic_config, upgrade
from tests.db import migrating
from tests.factories import PASSWORD, add_user, client_with_user, csrf_of, sign_in

PARTNER_NAME = "Northwind Agency"
TOKEN = "partner-token-7c1e-reads-every-account"
API_KEY = "partner-key-4b2d-reads-every-account"
DB_PASSWORD = "partner-db-9a3f-reads-every-account"
REFUSAL = f"These credentials were set by {PARTNER_NAME}: to change what this source fetches"

URL_SOURCE = {
    "name": "Deals",
    "kind": "url",
    "url": "https://crm.example.test/api/{{client.prop.account}}/deals.json",
    "format": "json",
    "method": "POST",
    "query": {"account": "{{client.prop.account}}"},
    "body": '{"account": {{client.prop.account}}}',
    "records": "deals",
    "headers": {"X-Api-Key": API_KEY},
    "auth": {"type": "bearer", "token": TOKEN},
}
URL_MASKS = {"headers": {"X-Api-Key": MASK}, "auth": {"type": "bearer", "token": MASK}}
URL_ANEW = {
    "headers": {"X-Api-Key": "client-own-key"},
    "auth": {"type": "bearer", "token": "client-own-token"},
}
SQL_SOURCE = {
    "name": "Warehouse",
    "kind": "sql",
    "engine": "postgresql",
    "host": "db.example.test",
    "database": "sales",
    "username": "agency_reader",
    "password": DB_PASSWORD,
    "query": "SELECT month, total FROM sales WHERE account = {{client.prop.account}}",
}

# What a client's editor changes to read another client's data, each with the secrets kept.
URL_REPOINTS = {
    "the url path": {"url": "https://crm.example.test/api/globex/deals.json"},
    "the query parameters": {"query": {"account": "globex"}},
    "a header": {"headers": {"X-Api-Key": MASK, "X-Account": "globex"}},
    "the body": {"body": '{"account": "globex"}'},
    "the method": {"method": "GET"},
    "the records": {"records": "everyone.deals"},
    "the pagination": {"paginate": {"type": "page_param", "param": "page"}},
}
SQL_REPOINTS = {
    "the sql query": {"query": "SELECT account, month, total FROM sales"},
    "the database": {"database": "globex_sales"},
    "the user name": {"username": "postgres"},
}


@pytest.fixture
def agency(make_partner):  # type: ignore[no-untyped-def]
    return make_partner(PARTNER_NAME, dashboards=10, users=10, published_links=10, api_calls_per_day=1000)


@pytest.fixture
def client_editor(http, agency, clock) -> tuple[int, dict[str, str]]:  # type: ignore[no-untyped-def]
    """A client of the agency and the API-key headers of one of its editors."""
    from tests.factories import key_for

    client_id, _, _ = client_with_user(http, agency, clock, "active", "boss@acme.test")
    editor = add_user(http, agency, client_id, "editor@acme.test", role="editor")
    return client_id, key_for(http, agency, client_id, editor["id"])


def created(http, owner, client_id: int, body: dict[str, Any], headers=None) -> int:  # type: ignore[no-untyped-def]
    answer = http.post(f"/api/1/clients/{client_id}/datasources", json=body, headers=headers or owner.headers)
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def stored(database, source_id: int) -> DataSource:  # type: ignore[no-untyped-def]
    with database.session() as db:
        source = db.get(DataSource, source_id)
        assert source is not None
        db.expunge(source)
        return source


def definition(source: DataSource) -> tuple[Any, ...]:
    return (source.name, source.url, source.format, source.config, source.secrets, source.secrets_set_by)


def patched(http, source_id: int, body: dict[str, Any], headers: dict[str, str]):  # type: ignore[no-untyped-def]
    return http.patch(f"/api/1/datasources/{source_id}", json=body, headers=headers)


def refused_fields(answer) -> list[tuple[str, ...]]:  # type: ignore[no-untyped-def]
    assert answer.status_code == 422, answer.text
    assert REFUSAL in answer.json()["detail"]
    return sorted(tuple(error["loc"][1:]) for error in answer.json()["errors"])


class TestAClientCannotAimThePartnersCredentialsElsewhere:
    @pytest.mark.parametrize("change", URL_REPOINTS.values(), ids=URL_REPOINTS.keys())
    def test_a_client_editor_changing_what_a_url_source_fetches_with_the_masks_is_refused(
        self, http, agency, client_editor, database, change
    ):
        client_id, editor = client_editor
        source_id = created(http, agency, client_id, URL_SOURCE)
        before = stored(database, source_id)
        answer = patched(http, source_id, {"name": "Mine", **URL_MASKS, **change}, editor)
        assert refused_fields(answer) == [("auth", "token"), ("headers", "X-Api-Key")]
        assert definition(stored(database, source_id)) == definition(before)

    def test_leaving_the_secrets_out_keeps_them_and_is_refused_the_same_way(
        self, http, agency, client_editor, database
    ):
        client_id, editor = client_editor
        source_id = created(http, agency, client_id, URL_SOURCE)
        before = stored(database, source_id)
        answer = patched(http, source_id, URL_REPOINTS["the url path"], editor)
        assert refused_fields(answer) == [("auth", "token"), ("headers", "X-Api-Key")]
        assert definition(stored(database, source_id)) == definition(before)

    def test_a_new_secret_beside_a_kept_one_is_refused(self, http, agency, client_editor, database):
        client_id, editor = client_editor
        source_id = created(http, agency, client_id, URL_SOURCE)
        before = stored(database, source_id)
        answer = patched(http, source_id, {"headers": {"X-Api-Key": "globex-key"}}, editor)
        assert refused_fields(answer) == [("auth", "token")]
        assert definition(stored(database, source_id)) == definition(before)

    @pytest.mark.parametrize("password", [{"password": MASK}, {}], ids=["masked", "left out"])
    @pytest.mark.parametrize("change", SQL_REPOINTS.values(), ids=SQL_REPOINTS.keys())
    def test_a_client_editor_changing_what_a_sql_source_reads_with_the_password_kept_is_refused(
        self, http, agency, client_editor, database, change, password
    ):
        client_id, editor = client_editor
        source_id = created(http, agency, client_id, SQL_SOURCE)
        before = stored(database, source_id)
        answer = patched(http, source_id, {"name": "Mine", **password, **change}, editor)
        assert refused_fields(answer) == [("password",)]
        assert definition(stored(database, source_id)) == definition(before)


class TestSendingEverySecretAgainMakesThemTheClients:
    @pytest.mark.parametrize("change", URL_REPOINTS.values(), ids=URL_REPOINTS.keys())
    def test_a_url_source_changes_and_its_secrets_become_the_clients(
        self, http, agency, client_editor, app, database, change
    ):
        client_id, editor = client_editor
        source_id = created(http, agency, client_id, URL_SOURCE)
        anew = {**URL_ANEW, **change}
        if "headers" in change:
            anew["headers"] = {"X-Api-Key": "client-own-key", "X-Account": "globex"}
        answer = patched(http, source_id, anew, editor)
        assert answer.status_code == 200, answer.text
        after = stored(database, source_id)
        assert after.secrets_set_by == "client"
        request = request_of(after, app.state.services.vault, None)
        assert request.auth == {"type": "bearer", "token": "client-own-token"}
        assert request.headers["X-Api-Key"] == "client-own-key"

    @pytest.mark.parametrize("change", SQL_REPOINTS.values(), ids=SQL_REPOINTS.keys())
    def test_a_sql_source_changes_and_its_password_becomes_the_clients(
        self, http, agency, client_editor, database, change
    ):
        client_id, editor = client_editor
        source_id = created(http, agency, client_id, SQL_SOURCE)
        answer = patched(http, source_id, {**change, "password": "client-own-password"}, editor)
        assert answer.status_code == 200, answer.text
        after = stored(database, source_id)
        assert after.secrets_set_by == "client"
        assert {key: after.config[key] for key in change} == change  # type: ignore[index]

    def test_the_clients_own_secrets_may_then_be_kept_through_any_change(
        self, http, agency, client_editor, database
    ):
        client_id, editor = client_editor
        source_id = created(http, agency, client_id, URL_SOURCE)
        assert patched(http, source_id, URL_ANEW, editor).status_code == 200
        answer = patched(http, source_id, {**URL_MASKS, **URL_REPOINTS["the query parameters"]}, editor)
        assert answer.status_code == 200, answer.text
        assert stored(database, source_id).secrets_set_by == "client"


class TestWhatAClientMayChangeWithThePartnersCredentials:
    @pytest.mark.parametrize(
        ("source", "masks"),
        [(URL_SOURCE, URL_MASKS), (URL_SOURCE, {}), (SQL_SOURCE, {"password": MASK}), (SQL_SOURCE, {})],
        ids=["url masked", "url left out", "sql masked", "sql left out"],
    )
    def test_the_name_and_the_refresh_interval_change_and_the_secrets_stay_the_partners(
        self, http, agency, client_editor, app, database, source, masks
    ):
        client_id, editor = client_editor
        source_id = created(http, agency, client_id, source)
        before = stored(database, source_id)
        answer = patched(http, source_id, {"name": "Our deals", "refresh_interval": 3600, **masks}, editor)
        assert answer.status_code == 200, answer.text
        after = stored(database, source_id)
        assert (after.name, after.refresh_interval) == ("Our deals", 3600)
        assert (after.url, after.format, after.config) == (before.url, before.format, before.config)
        vault = app.state.services.vault
        assert request_of(after, vault, None) == request_of(before, vault, None)  # sealed anew, the same
        assert after.secrets_set_by == "partner"

    def test_every_setting_sent_back_as_stored_with_the_masks_is_no_change(
        self, http, agency, client_editor, database
    ):
        client_id, editor = client_editor
        source_id = created(http, agency, client_id, URL_SOURCE)
        as_stored = {key: value for key, value in URL_SOURCE.items() if key != "kind"}
        answer = patched(http, source_id, {**as_stored, **URL_MASKS, "name": "Our deals"}, editor)
        assert answer.status_code == 200, answer.text
        assert stored(database, source_id).name == "Our deals"


class TestPartnerUsersKeepTheirWay:
    @pytest.mark.parametrize("change", URL_REPOINTS.values(), ids=URL_REPOINTS.keys())
    def test_a_partner_editor_repoints_a_url_source_on_the_same_server_with_the_masks(
        self, http, agency, add_partner_user, client_editor, database, change
    ):
        client_id, _ = client_editor
        source_id = created(http, agency, client_id, URL_SOURCE)
        answer = patched(http, source_id, {**URL_MASKS, **change}, add_partner_user(agency, "editor"))
        assert answer.status_code == 200, answer.text
        assert stored(database, source_id).secrets_set_by == "partner"

    @pytest.mark.parametrize("change", SQL_REPOINTS.values(), ids=SQL_REPOINTS.keys())
    def test_a_partner_admin_changes_a_sql_source_keeping_the_password(
        self, http, agency, client_editor, database, change
    ):
        client_id, _ = client_editor
        source_id = created(http, agency, client_id, SQL_SOURCE)
        answer = patched(http, source_id, {**change, "password": MASK}, agency.headers)
        assert answer.status_code == 200, answer.text
        assert stored(database, source_id).secrets_set_by == "partner"


class TestWhoSetTheSecretsIsRecorded:
    @pytest.mark.parametrize(
        ("body", "by", "expected"),
        [
            (URL_SOURCE, "partner", "partner"),
            (URL_SOURCE, "client", "client"),
            (SQL_SOURCE, "partner", "partner"),
            (SQL_SOURCE, "client", "client"),
            ({**SQL_SOURCE, "password": None}, "partner", None),
            (
                {"name": "Plain", "kind": "url", "url": "https://crm.example.test/open.csv", "format": "csv"},
                "client",
                None,
            ),
            ({"name": "Pasted", "kind": "inline", "rows": [{"a": 1}]}, "partner", None),
        ],
        ids=[
            "url by the partner",
            "url by a client",
            "sql by the partner",
            "sql by a client",
            "no password",
            "no secrets",
            "inline",
        ],
    )
    def test_a_new_source_records_who_set_its_secrets(
        self, http, agency, client_editor, database, body, by, expected
    ):
        client_id, editor = client_editor
        source_id = created(http, agency, client_id, body, agency.headers if by == "partner" else editor)
        assert stored(database, source_id).secrets_set_by == expected

    def test_a_partner_who_sends_a_secret_beside_the_clients_makes_them_the_partners(
        self, http, agency, client_editor, database
    ):
        client_id, editor = client_editor
        source_id = created(http, agency, client_id, URL_SOURCE, editor)
        answer = patched(
            http, source_id, {"auth": {"type": "bearer", "token": "partner-token"}}, agency.headers
        )
        assert answer.status_code == 200, answer.text
        assert stored(database, source_id).secrets_set_by == "partner"
        refused = patched(http, source_id, URL_REPOINTS["the url path"], editor)
        assert refused_fields(refused) == [("auth", "token"), ("headers", "X-Api-Key")]

    def test_removing_every_secret_leaves_no_one_recorded(self, http, agency, client_editor, database):
        client_id, editor = client_editor
        source_id = created(http, agency, client_id, URL_SOURCE)
        answer = patched(http, source_id, {"headers": {}, "auth": None}, editor)
        assert answer.status_code == 200, answer.text
        assert (stored(database, source_id).secrets, stored(database, source_id).secrets_set_by) == (
            None,
            None,
        )


class TestASourceDeployedFromATemplateIsThePartners:
    TEMPLATE = {
        "name": "Starter",
        "datasources": [{"ref": "deals", **URL_SOURCE}],
        "dashboards": [{"name": "Deals", "klips": [{"title": "Notes", "kind": "text", "text": "Hi"}]}],
    }

    def _deployed(self, http, agency, client_id: int) -> tuple[int, int]:  # type: ignore[no-untyped-def]
        made = http.post("/api/1/templates", json=self.TEMPLATE, headers=agency.headers)
        assert made.status_code == 201, made.text
        template_id = made.json()["id"]
        answer = http.post(
            f"/api/1/templates/{template_id}/deploy", json={"client_ids": [client_id]}, headers=agency.headers
        )
        assert answer.status_code == 200, answer.text
        (source_id,) = answer.json()["deployed"][0]["datasource_ids"]
        return template_id, source_id

    def test_a_client_editor_cannot_repoint_a_deployed_source_keeping_its_secrets(
        self, http, agency, client_editor, database
    ):
        client_id, editor = client_editor
        _, source_id = self._deployed(http, agency, client_id)
        before = stored(database, source_id)
        assert before.secrets_set_by == "partner"
        answer = patched(http, source_id, {**URL_MASKS, **URL_REPOINTS["the url path"]}, editor)
        assert refused_fields(answer) == [("auth", "token"), ("headers", "X-Api-Key")]
        assert definition(stored(database, source_id)) == definition(before)

    def test_updating_the_copy_gives_the_secrets_back_to_the_partner(
        self, http, agency, client_editor, database
    ):
        client_id, editor = client_editor
        template_id, source_id = self._deployed(http, agency, client_id)
        assert patched(http, source_id, URL_ANEW, editor).status_code == 200
        assert stored(database, source_id).secrets_set_by == "client"
        answer = http.post(
            f"/api/1/templates/{template_id}/update-instances", json={"force": True}, headers=agency.headers
        )
        assert answer.status_code == 200, answer.text
        assert stored(database, source_id).secrets_set_by == "partner"


CSV = "month,total\nJan,120\n"


@pytest.fixture
def portal_editor(http, agency, client_editor, data_server) -> Iterator[tuple[int, str]]:  # type: ignore[no-untyped-def]
    """A partner's source in the client's account on the test data server, scoped by the client's
    property, with the client's editor signed in to the portal; the source's id and the server."""
    client_id, _ = client_editor
    data_server.serve("/api/acme/deals.csv", CSV)
    data_server.serve("/api/globex/deals.csv", "month,total\nJan,999\n")
    answer = http.put(
        f"/api/1/clients/{client_id}/properties", json={"account": "acme"}, headers=agency.headers
    )
    assert answer.status_code == 200, answer.text
    body = {
        "name": "Deals",
        "kind": "url",
        "url": data_server.base + "/api/{{client.prop.account}}/deals.csv",
        "format": "csv",
        "headers": {"X-Api-Key": API_KEY},
    }
    source_id = created(http, agency, client_id, body)
    assert sign_in(http, "editor@acme.test", PASSWORD).status_code == 303
    yield source_id, data_server.base


def connection_test(http, source_id: int, **form: Any):  # type: ignore[no-untyped-def]
    fields = {"kind": "url", "name": "Deals", "format": "csv", "method": "GET", **form}
    csrf = csrf_of(http.get("/app").text)
    return http.post(f"/app/datasources/test?source={source_id}", data={"csrf_token": csrf, **fields})


class TestTestingAConnectionFollowsTheSameRule:
    def test_a_client_editor_testing_another_path_with_the_mask_is_refused_and_nothing_is_fetched(
        self, http, portal_editor, data_server
    ):
        source_id, base = portal_editor
        answer = connection_test(
            http,
            source_id,
            url=base + "/api/globex/deals.csv",
            header_name=["X-Api-Key"],
            header_value=[MASK],
        )
        assert answer.status_code == 422
        assert REFUSAL in answer.text
        assert data_server.hits == []

    def test_the_stored_settings_with_the_mask_are_tested_with_the_partners_secret(
        self, http, portal_editor, data_server
    ):
        source_id, base = portal_editor
        answer = connection_test(
            http,
            source_id,
            url=base + "/api/{{client.prop.account}}/deals.csv",
            header_name=["X-Api-Key"],
            header_value=[MASK],
        )
        assert "The connection works" in answer.text
        assert data_server.hits == ["/api/acme/deals.csv"]

    def test_another_path_with_the_secret_typed_again_is_tested(self, http, portal_editor, data_server):
        source_id, base = portal_editor
        answer = connection_test(
            http,
            source_id,
            url=base + "/api/globex/deals.csv",
            header_name=["X-Api-Key"],
            header_value=["client-own-key"],
        )
        assert "The connection works" in answer.text
        assert data_server.hits == ["/api/globex/deals.csv"]

    def test_a_client_editor_testing_another_database_with_the_masked_password_is_refused(
        self, http, agency, client_editor, app, database
    ):
        from pydantic import TypeAdapter

        from tenantry.auth.principal import Principal
        from tenantry.datasources import probe
        from tenantry.datasources.schemas import DataSourceCreate
        from tenantry.errors import InvalidInput

        client_id, _ = client_editor
        source_id = created(http, agency, client_id, SQL_SOURCE)
        body = TypeAdapter(DataSourceCreate).validate_python(
            {**SQL_SOURCE, "database": "globex_sales", "password": MASK}
        )
        editor = Principal("client_user", agency.id, 1, "editor", client_id)
        with database.session() as db, pytest.raises(InvalidInput) as refused:
            probe.prepare(db, editor, body, vault=app.state.services.vault, source_id=source_id)
        assert REFUSAL in str(refused.value)
        assert [error["loc"] for error in refused.value.extensions["errors"]] == [["body", "password"]]


class TestTheMigrationMarksStoredSecretsAsThePartners:
    BEFORE = "0030_schedule_emails_set_by"

    @pytest.fixture(params=migrating.ENGINES)
    def before(self, request, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
        """A database at the revision before, with a source holding secrets and one without."""
        with migrating.fresh_database(request.param, tmp_path) as url:
            upgrade(url, self.BEFORE)
            with migrating.filling(url) as add:
                add("partners", id=1, name="P", timezone="UTC", currency="USD")
                add("data_sources", id=1, partner_id=1, name="Token", kind="url", secrets="sealed-text")
                add("data_sources", id=2, partner_id=1, name="Open", kind="url", secrets=None)
                add("data_sources", id=3, partner_id=1, name="Pasted", kind="inline")
            yield url

    def test_sources_holding_secrets_are_marked_as_the_partners_and_the_others_as_no_ones(self, before):
        upgrade(before)
        assert migrating.rows(before, "SELECT id, secrets_set_by FROM data_sources ORDER BY id") == [
            (1, "partner"),
            (2, None),
            (3, None),
        ]

    def test_going_back_drops_the_record_and_ids_stay_never_reused_on_sqlite(self, before):
        upgrade(before)
        command.downgrade(alembic_config(before), self.BEFORE)
        assert migrating.rows(before, "SELECT id, name FROM data_sources ORDER BY id")[0] == (1, "Token")
        if before.startswith("sqlite"):
            ((sql,),) = migrating.rows(before, "SELECT sql FROM sqlite_master WHERE name = 'data_sources'")
            assert "AUTOINCREMENT" in sql
        upgrade(before)  # and forward again
