"""Importing clients in bulk (SPEC §15): a CSV file or JSON rows, all of them or none."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from tenantry.db.access_models import Invitation
from tenantry.db.models import AuditEvent, Client, ClientProperty, ClientUser, Event, StatusChange
from tenantry.db.worker_models import OutboxMail
from tests.factories import add_user, new_client
from tests.queries import statements_sent

HEADER = "name,external_id,status,dashboards,users,published_links,api_calls_per_day,admin_email,admin_name"


def import_csv(http, partner, text: str, *, dry_run: bool = False, headers: dict[str, str] | None = None):
    return http.post(
        "/api/1/clients/import" + ("?dry_run=true" if dry_run else ""),
        content=text.encode(),
        headers={**(headers or partner.headers), "Content-Type": "text/csv"},
    )


def import_json(http, partner, rows: list[dict[str, Any]], *, dry_run: bool = False):
    return http.post(
        "/api/1/clients/import" + ("?dry_run=true" if dry_run else ""),
        json={"rows": rows},
        headers=partner.headers,
    )


def state(db) -> tuple[int, ...]:
    """Everything an import writes, counted (and the partner's pool): equal before and after means
    nothing changed."""
    db.rollback()
    counts = tuple(
        db.scalar(select(func.count()).select_from(model))
        for model in (
            Client,
            ClientUser,
            ClientProperty,
            StatusChange,
            AuditEvent,
            Event,
            OutboxMail,
            Invitation,
        )
    )
    return counts


def pool_of(http, partner) -> dict[str, Any]:
    return http.get("/api/1/partner", headers=partner.headers).json()["pool"]


def csv_of(*lines: str, header: str = HEADER) -> str:
    return "\n".join([header, *lines]) + "\n"


class TestAnImportThatFits:
    def test_every_line_becomes_a_client_with_its_status_allocation_and_properties(self, http, partner, db):
        text = csv_of(
            "Acme,AC-1,trial,1,2,0,100,boss@acme.test,Boss,eu",
            "Beta,,setup,,,,,,,",
            "Gamma,G-1,active,1,1,,,,,us",
            "Delta,D-1,disabled,3,3,,,,,",
            header=HEADER + ",prop.region",
        )
        response = import_csv(http, partner, text)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["valid"] is True
        assert [(r["line"], r["ok"]) for r in body["rows"]] == [(2, True), (3, True), (4, True), (5, True)]
        ids = [r["client_id"] for r in body["rows"]]
        clients = [http.get(f"/api/1/clients/{i}", headers=partner.headers).json() for i in ids]
        assert [(c["name"], c["external_id"], c["status"]) for c in clients] == [
            ("Acme", "AC-1", "trial"),
            ("Beta", None, "setup"),
            ("Gamma", "G-1", "active"),
            ("Delta", "D-1", "disabled"),
        ]
        assert clients[0]["resources"] == {
            "dashboards": 1,
            "users": 2,
            "published_links": 0,
            "api_calls_per_day": 100,
        }
        assert clients[0]["usage"]["users"] == 1
        properties = http.get(f"/api/1/clients/{ids[0]}/properties", headers=partner.headers).json()
        assert properties == {"region": "eu"}
        # The disabled client holds nothing of the pool: trial 1 + active 1 dashboards are counted.
        assert body["pool_after"]["dashboards"]["allocated"] == 2
        assert pool_of(http, partner)["dashboards"] == body["pool_after"]["dashboards"]

    def test_an_imported_client_has_the_history_audit_and_event_of_one_created_by_post(
        self, http, partner, db
    ):
        body = {"name": "Acme", "status": "trial", "resources": {"dashboards": 1, "users": 1}, "reason": ""}
        posted = http.post("/api/1/clients", json=body, headers=partner.headers).json()["id"]
        imported = import_csv(http, partner, csv_of("Acme,,trial,1,1,,,,")).json()["rows"][0]["client_id"]

        def records(client_id: int) -> list[Any]:
            db.rollback()
            history = [
                (c.from_status, c.to_status)
                for c in db.scalars(select(StatusChange).where(StatusChange.client_id == client_id))
            ]
            audits = [
                (a.action, a.details)
                for a in db.scalars(select(AuditEvent).where(AuditEvent.client_id == client_id))
            ]
            events = [e.type for e in db.scalars(select(Event).where(Event.client_id == client_id))]
            shown = http.get(f"/api/1/clients/{client_id}", headers=partner.headers).json()
            return [history, audits, events, {k: v for k, v in shown.items() if k != "id"}]

        assert records(imported) == records(posted)

    def test_the_admin_of_a_line_is_invited_by_e_mail(self, http, partner, db):
        import_csv(http, partner, csv_of("Acme,AC-1,trial,1,2,,,boss@acme.test,The Boss"))
        user = db.scalars(select(ClientUser)).one()
        assert (user.email, user.name, user.role, user.password_hash) == (
            "boss@acme.test",
            "The Boss",
            "admin",
            None,
        )
        invitation = db.scalars(select(Invitation)).one()
        assert invitation.client_user_id == user.id

    def test_what_an_import_reads_does_not_grow_with_its_lines(self, http, make_partner, database):
        """Its reads and savepoints: the rows it writes may leave one by one (the driver's choice)."""
        partner = make_partner(dashboards=1000, users=1000, published_links=1000)

        def sent_for(first: int, count: int) -> int:
            lines = [
                f"Client {i},EXT-{i},trial,1,1,0,10,admin{i}@client.test,Admin {i}"
                for i in range(first, first + count)
            ]
            with statements_sent(database.engine) as statements:
                response = import_csv(http, partner, csv_of(*lines))
            assert response.status_code == 201, response.text
            return len([s for s in statements if not s.lstrip().upper().startswith("INSERT")])

        sent_for(0, 3)  # the first import reads what later ones find kept (the partner's brand)
        assert sent_for(100, 40) == sent_for(200, 4)

    def test_json_rows_are_imported_like_csv_lines(self, http, partner):
        response = import_json(
            http,
            partner,
            [{"name": "Acme", "status": "trial", "dashboards": 1, "users": 1, "prop.region": "eu"}],
        )
        assert response.status_code == 201, response.text
        assert response.json()["rows"][0]["line"] == 1

    def test_a_dry_run_answers_what_would_happen_and_changes_nothing(self, http, partner, db):
        before, pool_before = state(db), pool_of(http, partner)
        response = import_csv(http, partner, csv_of("Acme,AC-1,trial,2,2,,,boss@acme.test,"), dry_run=True)
        assert response.status_code == 200
        body = response.json()
        assert body["valid"] is True
        assert body["rows"] == [{"line": 2, "ok": True}]
        assert body["pool_after"]["dashboards"]["remaining"] == pool_before["dashboards"]["remaining"] - 2
        assert (state(db), pool_of(http, partner)) == (before, pool_before)


BAD_LINES = [
    # (what the line says, code)
    (",X-1,setup,,,,,,", "missing_name"),
    ("Acme,X-1,paused,,,,,,", "unknown_status"),
    ("Acme,X-1,trial,-1,,,,,", "out_of_range"),
    ("Acme,X-1,trial,2000000001,,,,,", "out_of_range"),
    ("Acme,X-1,trial,many,,,,,", "out_of_range"),
    ("Acme,X-1,trial,1,1,,,not-an-email,", "bad_email"),
    ("Acme,X-1,setup,1,1,,,boss@acme.test,", "status_forbids"),
    ("Acme,X-1,trial,1,0,,,boss@acme.test,", "allocation_exceeded"),
    ("Acme,X-1,active,0,1,,,,", "activation_requirements_unmet"),
    ("Acme,TAKEN,setup,,,,,,", "duplicate"),
    ("Acme,X-1,trial,11,,,,,", "pool_exhausted"),
]


class TestBlankLines:
    def test_a_line_of_spaces_is_left_out_like_a_line_of_empty_cells(self, http, partner):
        response = import_csv(http, partner, "name,external_id\nAcme,A-1\n , \n,\n")
        assert response.status_code == 201, response.text
        assert [(r["line"], r["ok"]) for r in response.json()["rows"]] == [(2, True)]


class TestARefusedImport:
    @pytest.mark.parametrize(("line", "code"), BAD_LINES)
    def test_a_bad_last_line_names_its_line_and_code_and_leaves_no_client(
        self, http, partner, db, line, code
    ):
        http.post(
            "/api/1/clients", json={"name": "Existing", "external_id": "TAKEN"}, headers=partner.headers
        )
        before, pool_before = state(db), pool_of(http, partner)
        response = import_csv(http, partner, csv_of("Good,G-1,trial,1,1,,,,", line))
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert (body["code"], body["valid"]) == ("import_refused", False)
        assert [(r["line"], r["ok"], r.get("code")) for r in body["rows"]] == [
            (2, True, None),
            (3, False, code),
        ]
        assert (state(db), pool_of(http, partner)) == (before, pool_before)
        dry = import_csv(http, partner, csv_of("Good,G-1,trial,1,1,,,,", line), dry_run=True)
        assert (dry.status_code, dry.json()["rows"]) == (200, body["rows"])

    def test_an_external_id_twice_in_the_file_names_both_lines(self, http, partner):
        body = import_csv(http, partner, csv_of("A,X-1,setup,,,,,,", "B,X-1,setup,,,,,,")).json()
        assert body["rows"][1]["code"] == "duplicate"
        assert "line 2" in body["rows"][1]["detail"]

    def test_a_record_spread_over_several_lines_is_named_by_its_first_line(self, http, partner):
        # A quoted cell may hold line breaks, and blank lines may separate records: the line a
        # refusal names is the one the record starts on, as a person counts in the file.
        text = csv_of(
            '"Two\nLines",X-1,setup,,,,,,',
            "",
            'C,X-2,setup,,,,,,,"a note\nover two lines"',
            "D,X-3,paused,,,,,,,",
            header=HEADER + ",prop.note",
        )
        body = import_csv(http, partner, text, dry_run=True).json()
        # Names and properties are one line each: both records are refused, on their first line.
        assert [(r["line"], r.get("code")) for r in body["rows"]] == [
            (2, "validation_error"),
            (5, "validation_error"),
            (7, "unknown_status"),
        ]

    def test_a_line_with_more_cells_than_the_header_names_its_first_line(self, http, partner):
        text = csv_of("A,,setup,,,,,,", '"B\nC",,setup,,,,,,,extra')
        response = import_csv(http, partner, text)
        assert response.status_code == 422
        assert "Line 3 has more cells" in response.json()["detail"]

    def test_a_quote_never_closed_refuses_the_file_naming_its_line(self, http, partner, db):
        before = state(db)
        response = import_csv(http, partner, 'name,external_id\nAcme,"A-1\nBeta,B-2\nGamma,G-3\n')
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["code"] == "validation_error", body
        assert "a quoted cell on line 2 is never closed" in body["detail"]
        assert state(db) == before

    def test_a_quote_opened_on_the_last_line_refuses_the_file(self, http, partner, db):
        # `"Beta,B-2` would be one name, "Beta,B-2", and a client without its external id.
        before = state(db)
        response = import_csv(http, partner, 'name,external_id\nAcme,A-1\n"Beta,B-2')
        assert response.status_code == 422, response.text
        assert "a quoted cell on line 3 is never closed" in response.json()["detail"]
        assert state(db) == before

    @pytest.mark.parametrize("column", ["dashboards", "template_id"])
    def test_a_cell_of_thousands_of_digits_is_refused_on_its_line(self, http, partner, db, column):
        before = state(db)
        text = f"name,{column}\nAcme,\nBeta,{'9' * 5000}\n"
        for dry_run in (True, False):
            response = import_csv(http, partner, text, dry_run=dry_run)
            assert response.status_code == (200 if dry_run else 422), response.text
            rows = response.json()["rows"]
            assert [(r["line"], r["ok"]) for r in rows] == [(2, True), (3, False)]
        assert state(db) == before

    def test_a_header_wider_than_the_columns_and_properties_refuses_the_file(self, http, partner, db):
        before = state(db)
        header = "name," + ",".join(f"prop.c{i}" for i in range(20_000))
        response = import_csv(http, partner, header + "\n" + "x\n" * 100)
        assert response.status_code == 422
        assert response.json()["field"] == "columns"
        assert "20,001 columns" in response.json()["detail"]
        assert state(db) == before

    def test_the_line_where_the_pool_runs_out_is_named(self, http, partner):
        # The partner's plan holds 10 dashboards: lines 2-4 take 4 each.
        text = csv_of("A,,trial,4,1,,,,", "B,,trial,4,1,,,,", "C,,trial,4,1,,,,", "D,,setup,4,1,,,,")
        body = import_csv(http, partner, text, dry_run=True).json()
        assert [(r["line"], r.get("code")) for r in body["rows"]] == [
            (2, None),
            (3, None),
            (4, "pool_exhausted"),
            (5, None),
        ]

    def test_an_unknown_template_is_refused_on_its_line(self, http, partner):
        body = import_csv(
            http, partner, csv_of("A,,setup,,,,,,,999999", header=HEADER + ",template_id")
        ).json()
        assert body["rows"][0]["code"] == "unknown_template"

    @pytest.mark.parametrize("template_id", ["99999999999999999999999", "0", 2**70])
    def test_a_template_id_no_template_can_have_is_an_unknown_template(self, http, partner, db, template_id):
        before = state(db)
        if isinstance(template_id, str):
            response = import_csv(
                http, partner, csv_of(f"A,,setup,,,,,,,{template_id}", header=HEADER + ",template_id")
            )
        else:
            rows = {"rows": [{"name": "A", "template_id": template_id}]}
            response = http.post("/api/1/clients/import", json=rows, headers=partner.headers)
        assert response.status_code == 422, response.text
        assert response.json()["rows"][0]["code"] == "unknown_template"
        assert state(db) == before

    @pytest.mark.parametrize(
        ("header", "column"),
        [
            (HEADER + ",colour", "colour"),
            ("external_id,status", "name"),
            (HEADER + ",prop.", "prop."),
        ],
    )
    def test_an_unknown_column_refuses_the_whole_file_naming_it(self, http, partner, db, header, column):
        before = state(db)
        response = import_csv(http, partner, header + "\n" + "x," * header.count(",") + "x\n")
        assert response.status_code == 422
        assert response.json()["field"] == column
        assert state(db) == before

    def test_a_column_named_twice_refuses_the_whole_file_naming_it(self, http, partner, db):
        before = state(db)
        response = import_csv(http, partner, "name,external_id,name\nAcme Corporation,acme,Acme Ltd\n")
        assert (response.status_code, response.json()["field"]) == (422, "name")
        assert "named twice" in response.json()["detail"]
        assert state(db) == before

    def test_a_bad_admin_name_is_refused_naming_admin_name_not_the_address(self, http, partner, db):
        before = state(db)
        body = import_csv(http, partner, "name,admin_email,admin_name\nAcme,boss@acme.test,Bo\x01ss\n").json()
        (row,) = body["rows"]
        assert (row["ok"], row["code"]) == (False, "validation_error")
        assert row["detail"].startswith("admin_name: ")
        assert state(db) == before

    def test_an_unknown_key_in_json_rows_refuses_the_whole_file(self, http, partner, db):
        before = state(db)
        response = import_json(http, partner, [{"name": "A"}, {"name": "B", "colour": "red"}])
        assert (response.status_code, response.json()["field"]) == (422, "colour")
        assert state(db) == before

    def test_a_bad_property_key_is_refused_on_its_line(self, http, partner):
        body = import_csv(http, partner, csv_of("A,,setup,,,,,,,x", header=HEADER + ",prop.Bad-Key")).json()
        assert body["rows"][0]["code"] == "validation_error"

    @pytest.mark.parametrize(
        ("content", "content_type"),
        [
            (b"\xff\xfe name\n", "text/csv"),
            (b"name\nA\n", "application/xml"),
            (b'{"rows": 3}', "application/json"),
        ],
    )
    def test_a_body_that_is_not_a_csv_file_or_json_rows_is_refused(
        self, http, partner, db, content, content_type
    ):
        before = state(db)
        response = http.post(
            "/api/1/clients/import",
            content=content,
            headers={**partner.headers, "Content-Type": content_type},
        )
        assert response.status_code == 422
        assert state(db) == before

    def test_a_file_over_the_body_limit_is_refused_with_413(self, http, partner, settings, db):
        before = state(db)
        text = HEADER + "\n" + "A,,setup,,,,,,\n" * (settings.max_body_bytes // 15 + 1)
        assert import_csv(http, partner, text).status_code == 413
        assert state(db) == before


class TestImportingWithATemplate:
    TEMPLATE = {
        "name": "Starter",
        "datasources": [
            {"ref": "sales", "name": "Sales", "kind": "inline", "rows": [{"month": "Jan", "sales": 3}]}
        ],
        "dashboards": [
            {
                "name": "Overview",
                "klips": [
                    {
                        "title": "Total",
                        "kind": "value",
                        "columns": {"value": "sales"},
                        "datasource_ref": "sales",
                    }
                ],
            }
        ],
    }

    def template(self, http, partner) -> int:
        response = http.post("/api/1/templates", json=self.TEMPLATE, headers=partner.headers)
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def test_a_line_with_a_template_gets_its_dashboards(self, http, partner):
        template_id = self.template(http, partner)
        text = csv_of(f"Acme,,trial,1,1,,,,,{template_id}", header=HEADER + ",template_id")
        response = import_csv(http, partner, text)
        assert response.status_code == 201, response.text
        client_id = response.json()["rows"][0]["client_id"]
        client = http.get(f"/api/1/clients/{client_id}", headers=partner.headers).json()
        assert client["usage"]["dashboards"] == 1
        assert (
            http.get(f"/api/1/templates/{template_id}/instances", headers=partner.headers).json()[0][
                "client_id"
            ]
            == client_id
        )

    def test_a_template_a_new_client_cannot_hold_refuses_the_file(self, http, partner, db):
        template_id = self.template(http, partner)
        before = state(db)
        text = csv_of(
            "Fine,,setup,,,,,,,", f"Small,,trial,0,1,,,,,{template_id}", header=HEADER + ",template_id"
        )
        response = import_csv(http, partner, text)
        assert response.status_code == 422
        assert [(r["line"], r.get("code")) for r in response.json()["rows"]] == [
            (2, None),
            (3, "allocation_exceeded"),
        ]
        assert state(db) == before

    def test_a_dry_run_refuses_the_line_whose_template_the_client_cannot_hold_and_changes_nothing(
        self, http, partner, db
    ):
        template_id = self.template(http, partner)
        before, pool_before = state(db), pool_of(http, partner)
        text = csv_of(
            "Fine,,setup,,,,,,,",
            f"Small,,trial,0,1,,,boss@small.test,,{template_id}",
            header=HEADER + ",template_id",
        )
        dry = import_csv(http, partner, text, dry_run=True)
        assert dry.status_code == 200, dry.text
        assert dry.json()["valid"] is False
        assert (state(db), pool_of(http, partner)) == (before, pool_before)
        # It answers what the import itself answers.
        real = import_csv(http, partner, text)
        assert real.status_code == 422
        assert dry.json()["rows"] == real.json()["rows"]
        assert [(r["line"], r.get("code")) for r in real.json()["rows"]] == [
            (2, None),
            (3, "allocation_exceeded"),
        ]

    def test_a_dry_run_of_a_template_that_fits_is_valid_and_changes_nothing(self, http, partner, db):
        template_id = self.template(http, partner)
        before = state(db)
        text = csv_of(f"Acme,,trial,1,1,,,,,{template_id}", header=HEADER + ",template_id")
        dry = import_csv(http, partner, text, dry_run=True)
        assert dry.status_code == 200, dry.text
        assert dry.json() | {"pool_after": None} == {
            "valid": True,
            "rows": [{"line": 2, "ok": True}],
            "pool_after": None,
        }
        assert state(db) == before
        assert http.get(f"/api/1/templates/{template_id}/instances", headers=partner.headers).json() == []

    def test_another_partners_template_is_unknown(self, http, partner, make_partner):
        template_id = self.template(http, make_partner())
        text = csv_of(f"Acme,,setup,,,,,,,{template_id}", header=HEADER + ",template_id")
        assert import_csv(http, partner, text).json()["rows"][0]["code"] == "unknown_template"


class TestWhoMayImport:
    def test_client_users_cannot_import(self, http, partner, db):
        client_id = new_client(http, partner, "trial")
        user = add_user(http, partner, client_id, "admin@client.test")
        key = http.post(
            f"/api/1/clients/{client_id}/users/{user['id']}/api-keys",
            json={"name": "k"},
            headers=partner.headers,
        ).json()["secret"]
        before = state(db)
        response = import_csv(
            http, partner, csv_of("A,,setup,,,,,,"), headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code in (403, 404)
        assert state(db) == before

    def test_another_partners_external_ids_do_not_collide(self, http, partner, make_partner):
        other = make_partner()
        http.post("/api/1/clients", json={"name": "Theirs", "external_id": "X-1"}, headers=other.headers)
        assert import_csv(http, partner, csv_of("Mine,X-1,setup,,,,,,")).status_code == 201
