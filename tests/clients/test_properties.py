"""Client properties (SPEC §14): `GET|PUT /api/1/clients/{id}/properties`, a `{key: value}`
object that PUT replaces whole. Partner users read them (viewers too), partner admins and editors
replace them; a client's admins and editors read them; no client user changes them; members see
nothing of them; another partner's or another client's are not found."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tenantry.db.models import AuditEvent, ClientProperty
from tenantry.fields import ONE_LINE_PATTERN
from tests.factories import add_user, client_with_user, key_for, new_client

VALUES = {"account": "acme-42", "region": "eu", "db_name": "sales_acme"}


def path(client_id: int) -> str:
    return f"/api/1/clients/{client_id}/properties"


def stored(database, client_id: int) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with database.session() as db:
        rows = db.scalars(select(ClientProperty).where(ClientProperty.client_id == client_id)).all()
        return {row.key: row.value for row in rows}


class TestReadingAndReplacing:
    def test_a_new_client_has_no_properties(self, http, partner):
        answer = http.get(path(new_client(http, partner)), headers=partner.headers)
        assert (answer.status_code, answer.json()) == (200, {})

    def test_put_stores_the_values_and_get_reads_them_back(self, http, partner):
        client_id = new_client(http, partner)
        put = http.put(path(client_id), json=VALUES, headers=partner.headers)
        assert (put.status_code, put.json()) == (200, VALUES)
        assert http.get(path(client_id), headers=partner.headers).json() == VALUES

    def test_put_replaces_every_property(self, http, partner, database):
        client_id = new_client(http, partner)
        http.put(path(client_id), json=VALUES, headers=partner.headers)
        answer = http.put(path(client_id), json={"region": "us", "plan": "gold"}, headers=partner.headers)
        assert answer.json() == {"plan": "gold", "region": "us"}
        assert stored(database, client_id) == {"plan": "gold", "region": "us"}
        http.put(path(client_id), json={}, headers=partner.headers)
        assert stored(database, client_id) == {}

    def test_a_change_is_audited_by_key_without_the_values(self, http, partner, database):
        client_id = new_client(http, partner)
        http.put(path(client_id), json=VALUES, headers=partner.headers)
        http.put(
            path(client_id),
            json={**VALUES, "account": "acme-43", "region": "us"},
            headers=partner.headers,
        )
        with database.session() as db:
            events = db.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "client.properties_changed")
                .order_by(AuditEvent.id)
            ).all()
        assert [e.details for e in events] == [
            {"added": ["account", "db_name", "region"], "removed": [], "changed": []},
            {"added": [], "removed": [], "changed": ["account", "region"]},
        ]
        assert "acme" not in str([e.details for e in events])

    def test_the_same_values_again_change_and_audit_nothing(self, http, partner, database):
        client_id = new_client(http, partner)
        http.put(path(client_id), json=VALUES, headers=partner.headers)
        http.put(path(client_id), json=VALUES, headers=partner.headers)
        with database.session() as db:
            count = len(
                db.scalars(select(AuditEvent).where(AuditEvent.action == "client.properties_changed")).all()
            )
        assert count == 1

    def test_deleting_the_client_removes_its_properties(self, http, partner, database):
        client_id = new_client(http, partner, "setup")
        http.put(path(client_id), json=VALUES, headers=partner.headers)
        assert http.delete(f"/api/1/clients/{client_id}", headers=partner.headers).status_code == 204
        assert stored(database, client_id) == {}


class TestBadInputIsRefusedAndChangesNothing:
    @pytest.mark.parametrize(
        ("body", "loc_part"),
        [
            ({"Account": "x"}, "Account"),
            ({"1st": "x"}, "1st"),
            ({"with-dash": "x"}, "with-dash"),
            ({"": "x"}, ""),
            ({"a" * 41: "x"}, "a" * 41),
            ({"account": 42}, "account"),
            ({"account": None}, "account"),
            ({"account": ["a"]}, "account"),
            ({"account": "x" * 2001}, "account"),
            ({"account": "line\nbreak"}, "account"),
        ],
        ids=[
            "upper case key",
            "key starting with a digit",
            "dash in key",
            "empty key",
            "key of 41 characters",
            "number value",
            "null value",
            "list value",
            "value over 2000 characters",
            "control character in value",
        ],
    )
    def test_a_bad_key_or_value_is_a_422_naming_it(self, http, partner, database, body, loc_part):
        client_id = new_client(http, partner)
        http.put(path(client_id), json=VALUES, headers=partner.headers)
        answer = http.put(path(client_id), json={"region": "us", **body}, headers=partner.headers)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert loc_part in answer.json()["errors"][0]["loc"]
        assert stored(database, client_id) == VALUES

    def test_more_than_a_hundred_keys_are_refused(self, http, partner, database):
        client_id = new_client(http, partner)
        many = {f"k{n}": "v" for n in range(101)}
        assert http.put(path(client_id), json=many, headers=partner.headers).status_code == 422
        assert (
            http.put(
                path(client_id), json=dict(list(many.items())[:100]), headers=partner.headers
            ).status_code
            == 200
        )

    @pytest.mark.parametrize("body", [["account", "x"], "account=x", 42])
    def test_a_body_that_is_not_an_object_is_refused(self, http, partner, body):
        answer = http.put(path(new_client(http, partner)), json=body, headers=partner.headers)
        assert answer.status_code == 422

    def test_the_api_document_says_what_keys_and_values_are_taken_and_no_others(self, http):
        spec = http.get("/api/1/openapi.json").json()
        body = spec["paths"]["/api/1/clients/{client_id}/properties"]["put"]["requestBody"]
        schema = body["content"]["application/json"]["schema"]
        assert schema["additionalProperties"] is False
        value = {"type": "string", "maxLength": 2000, "pattern": ONE_LINE_PATTERN}
        assert schema["patternProperties"] == {"^[a-z][a-z0-9_]{0,39}$": value}
        assert schema["maxProperties"] == 100

    def test_the_longest_key_and_value_are_accepted(self, http, partner):
        body = {"a" + "b" * 39: "v" * 2000}
        answer = http.put(path(new_client(http, partner)), json=body, headers=partner.headers)
        assert (answer.status_code, answer.json()) == (200, body)


class TestWhoMay:
    def test_another_partners_client_is_not_found(self, http, partner, make_partner, database):
        other = make_partner()
        client_id = new_client(http, partner)
        http.put(path(client_id), json=VALUES, headers=partner.headers)
        assert http.get(path(client_id), headers=other.headers).status_code == 404
        assert http.put(path(client_id), json={"x": "y"}, headers=other.headers).status_code == 404
        assert stored(database, client_id) == VALUES

    def test_a_client_user_sees_only_its_own_clients_properties(self, http, partner, clock, database):
        mine, _, headers = client_with_user(http, partner, clock, "active", "admin@mine.test")
        theirs = new_client(http, partner)
        http.put(path(theirs), json=VALUES, headers=partner.headers)
        assert http.get(path(theirs), headers=headers).status_code == 404
        assert http.put(path(theirs), json={"x": "y"}, headers=headers).status_code == 404
        assert http.get(path(mine), headers=headers).status_code == 200
        assert stored(database, theirs) == VALUES

    @pytest.mark.parametrize(("role", "reads"), [("admin", True), ("editor", True), ("member", False)])
    def test_client_users_read_by_role_and_never_write(self, http, partner, clock, database, role, reads):
        client_id, _, _ = client_with_user(http, partner, clock, "active", "first@client.test")
        http.put(path(client_id), json=VALUES, headers=partner.headers)
        user = add_user(http, partner, client_id, f"{role}@client.test", role=role)
        headers = key_for(http, partner, client_id, user["id"])
        read = http.get(path(client_id), headers=headers)
        assert read.status_code == (200 if reads else 403)
        if reads:
            assert read.json() == VALUES
        write = http.put(path(client_id), json={"account": "someone-else"}, headers=headers)
        assert write.status_code == 403
        assert write.json()["code"] == "forbidden"
        assert stored(database, client_id) == VALUES

    @pytest.mark.parametrize(("role", "writes"), [("admin", True), ("editor", True), ("viewer", False)])
    def test_partner_users_read_and_admins_and_editors_write(
        self, http, partner, add_partner_user, database, role, writes
    ):
        client_id = new_client(http, partner)
        http.put(path(client_id), json=VALUES, headers=partner.headers)
        headers = add_partner_user(partner, role)
        assert http.get(path(client_id), headers=headers).json() == VALUES
        write = http.put(path(client_id), json={"account": "b"}, headers=headers)
        assert write.status_code == (200 if writes else 403)
        assert stored(database, client_id) == ({"account": "b"} if writes else VALUES)

    def test_an_anonymous_request_is_refused(self, http, partner):
        client_id = new_client(http, partner)
        assert http.get(path(client_id)).status_code == 401
        assert http.put(path(client_id), json=VALUES).status_code == 401
