"""A client's external id is one text however its accents are typed: `É` as one character and as
`E` followed by a combining accent are the same id (kept composed, NFC), so the same client cannot
be made twice, by the API, the import or a lookup."""

from __future__ import annotations

import sqlite3

from tenantry.db.migrate import upgrade
from tests.clients.test_import import import_json

COMPOSED = "\u00c9cole-42"  # "École-42", É as one character
DECOMPOSED = "E\u0301cole-42"  # the same, E then U+0301 COMBINING ACUTE ACCENT


def create(http, partner, external_id):
    return http.post(
        "/api/1/clients", json={"name": "School", "external_id": external_id}, headers=partner.headers
    )


class TestTheApi:
    def test_an_id_typed_decomposed_is_kept_composed(self, http, partner):
        made = create(http, partner, DECOMPOSED)
        assert made.status_code == 201, made.text
        assert made.json()["external_id"] == COMPOSED

    def test_the_same_id_typed_the_other_way_is_a_duplicate(self, http, partner):
        assert create(http, partner, COMPOSED).status_code == 201
        again = create(http, partner, DECOMPOSED)
        assert again.status_code == 409, again.text
        assert again.json()["code"] == "duplicate"
        assert http.get("/api/1/clients", headers=partner.headers).json()["total"] == 1

    def test_a_rename_to_the_other_spelling_of_a_taken_id_is_a_duplicate(self, http, partner):
        assert create(http, partner, COMPOSED).status_code == 201
        other = create(http, partner, "other").json()["id"]
        moved = http.patch(
            f"/api/1/clients/{other}", json={"external_id": DECOMPOSED}, headers=partner.headers
        )
        assert moved.status_code == 409, moved.text

    def test_a_lookup_finds_the_client_however_the_id_is_typed(self, http, partner):
        client_id = create(http, partner, COMPOSED).json()["id"]
        for typed in (COMPOSED, DECOMPOSED):
            found = http.get("/api/1/clients", params={"external_id": typed}, headers=partner.headers).json()
            assert [c["id"] for c in found["items"]] == [client_id], typed


class TestTheImport:
    def test_two_lines_with_the_two_spellings_are_duplicates(self, http, partner):
        rows = [{"name": "A", "external_id": COMPOSED}, {"name": "B", "external_id": DECOMPOSED}]
        answer = import_json(http, partner, rows, dry_run=True).json()
        assert answer["valid"] is False
        assert [r.get("code") for r in answer["rows"]] == [None, "duplicate"]

    def test_a_line_with_the_other_spelling_of_a_taken_id_is_a_duplicate(self, http, partner):
        assert create(http, partner, DECOMPOSED).status_code == 201
        answer = import_json(http, partner, [{"name": "A", "external_id": COMPOSED}], dry_run=True).json()
        assert [r.get("code") for r in answer["rows"]] == ["duplicate"]


def test_an_upgrade_composes_the_ids_stored_before_unless_another_client_holds_the_composed_one(tmp_path):
    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    upgrade(url, "0027_id_counters_repaired")
    db = sqlite3.connect(path)
    now = "2026-03-01 00:00:00.000000"
    db.execute(
        "INSERT INTO partners (name, timezone, created_at, plan_dashboards, plan_users, plan_published_links,"
        " plan_api_calls_per_day, trial_days, trial_extension_days, dashboard_price, user_price, currency,"
        " used_dashboards, used_users, used_published_links, allocated_dashboards, allocated_users,"
        " allocated_published_links, allocated_api_calls_per_day, client_count)"
        " VALUES ('P', 'UTC', ?, -1, -1, -1, -1, 14, 14, 10, 5, 'USD', 0, 0, 0, 0, 0, 0, 0, 3)",
        (now,),
    )
    for external_id in (DECOMPOSED, "Ame\u0301lie", "\u00c1ngel", "A\u0301ngel"):
        db.execute(
            "INSERT INTO clients (partner_id, name, external_id, description, status, alloc_dashboards,"
            " alloc_users, alloc_published_links, alloc_api_calls_per_day, usage_dashboards, usage_users,"
            " usage_published_links, created_at, status_changed_at)"
            " VALUES (1, 'C', ?, '', 'setup', 0, 0, 0, 0, 0, 0, 0, ?, ?)",
            (external_id, now, now),
        )
    db.commit()
    db.close()
    upgrade(url)
    db = sqlite3.connect(path)
    stored = [row[0] for row in db.execute("SELECT external_id FROM clients ORDER BY id")]
    db.close()
    # The last is left decomposed: its composed form is another client's.
    assert stored == [COMPOSED, "Am\u00e9lie", "\u00c1ngel", "A\u0301ngel"]
