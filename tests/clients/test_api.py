"""The clients API (SPEC §3, §5, §6, §8, §9) driven over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tenantry.db.models import AuditEvent, Client, Event, StatusChange
from tests.queries import statements_sent

DAY = timedelta(days=1)
READY = {"dashboards": 1, "users": 1}


def create(http, partner, **body):
    body.setdefault("name", "Acme")
    return http.post("/api/1/clients", json=body, headers=partner.headers)


def patch(http, partner, client_id, **body):
    return http.patch(f"/api/1/clients/{client_id}", json=body, headers=partner.headers)


def pool_of(http, partner, resource):
    return http.get("/api/1/partner", headers=partner.headers).json()["pool"][resource]


class TestCreatingAClient:
    def test_a_new_client_starts_in_setup_with_nothing_allocated(self, http, partner):
        response = create(http, partner, name="Acme", description="A bakery", external_id="AC-1")
        assert response.status_code == 201
        body = response.json()
        assert body["status"] == body["effective_status"] == "setup"
        assert body["trial"] is None
        assert body["resources"] == {
            "dashboards": 0,
            "users": 0,
            "published_links": 0,
            "api_calls_per_day": 0,
        }
        assert body["usage"] == {"dashboards": 0, "users": 0, "published_links": 0, "api_calls_today": 0}
        assert body["external_id"] == "AC-1"
        assert http.get(f"/api/1/clients/{body['id']}", headers=partner.headers).json() == body

    def test_a_client_created_in_trial_gets_the_plans_trial_clock(self, http, partner, clock):
        body = create(http, partner, status="trial").json()
        assert body["trial"] == {
            "started_at": clock.now().isoformat().replace("+00:00", "Z"),
            "ends_at": (clock.now() + 14 * DAY).isoformat().replace("+00:00", "Z"),
            "days_remaining": 14,
            "extended": False,
            "extension_available": True,
            "expired": False,
        }

    def test_a_client_created_active_needs_a_dashboard_and_a_user_allocated(self, http, partner):
        refused = create(http, partner, status="active", resources={"dashboards": 1})
        assert refused.status_code == 409
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "activation_requirements_unmet"
        assert refused.json()["missing"] == ["users"]
        assert create(http, partner, status="active", resources=READY).json()["status"] == "active"

    def test_a_client_created_disabled_holds_nothing_of_the_pool_and_may_only_become_active(
        self, http, partner
    ):
        before = pool_of(http, partner, "dashboards")
        body = create(http, partner, status="disabled", resources={"dashboards": 2, "users": 1}).json()
        assert (body["status"], body["trial"]) == ("disabled", None)
        assert pool_of(http, partner, "dashboards") == before
        for refused in ("setup", "trial"):
            response = patch(http, partner, body["id"], status=refused)
            assert (response.status_code, response.json()["code"]) == (409, "invalid_transition")
        assert pool_of(http, partner, "dashboards") == before
        assert patch(http, partner, body["id"], status="active").json()["status"] == "active"
        assert pool_of(http, partner, "dashboards")["allocated"] == before["allocated"] + 2

    def test_a_duplicate_external_id_within_a_partner_is_refused(self, http, partner, make_partner):
        assert create(http, partner, external_id="X-1").status_code == 201
        duplicate = create(http, partner, external_id="X-1")
        assert duplicate.status_code == 409
        assert duplicate.json()["code"] == "duplicate"
        other = make_partner()
        assert create(http, other, external_id="X-1").status_code == 201

    def test_every_creation_writes_history_audit_and_an_event(self, http, partner, db):
        client_id = create(http, partner, status="trial").json()["id"]
        history = http.get(f"/api/1/clients/{client_id}/history", headers=partner.headers).json()
        assert [(h["from"], h["to"]) for h in history["items"]] == [(None, "trial")]
        assert history["items"][0]["actor"] == f"partner_user:{partner.admin_user_id}"
        assert db.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.client_id == client_id)
        )
        event = db.scalars(select(Event).where(Event.client_id == client_id)).one()
        assert event.type == "client.status_changed"
        assert event.data["to"] == "trial"


class TestBadInput:
    @pytest.mark.parametrize(
        "body",
        [
            {"name": "A", "status": "paused"},
            {"name": "A", "resources": {"dashboards": -1}},
            {"name": "A", "resources": {"dashboards": 1.5}},
            {"name": "A", "resources": {"dashboards": "3"}},
            {"name": "A", "resources": {"dashboards": True}},
            {"name": "A", "resources": {"pixels": 3}},
            {"name": "x" * 201},
            {"name": "   "},
            {"name": "A", "colour": "red"},
            {},
        ],
    )
    def test_a_malformed_body_is_a_422_problem_and_creates_nothing(self, http, partner, db, body):
        response = http.post("/api/1/clients", json=body, headers=partner.headers)
        assert response.status_code == 422
        problem = response.json()
        assert problem["code"] == "validation_error"
        assert problem["status"] == 422
        assert problem["detail"]
        assert db.scalar(select(func.count()).select_from(Client)) == 0

    def test_malformed_json_is_a_422_problem(self, http, partner):
        response = http.post(
            "/api/1/clients",
            content=b'{"name": ',
            headers={**partner.headers, "content-type": "application/json"},
        )
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"
        assert response.json()["detail"] == "The request body is not valid JSON."

    @pytest.mark.parametrize(
        ("method", "path", "allowed"),
        [
            ("PUT", "/api/1/clients", {"GET", "POST"}),
            ("PUT", "/api/1/clients/{id}", {"GET", "PATCH", "DELETE"}),
            ("POST", "/api/1/dashboards/1", {"GET", "PATCH", "DELETE"}),
        ],
    )
    def test_a_405_names_every_method_the_path_takes(self, http, partner, method, path, allowed):
        client_id = http.post("/api/1/clients", json={"name": "Acme"}, headers=partner.headers).json()["id"]
        refused = http.request(method, path.format(id=client_id), json={}, headers=partner.headers)
        assert refused.status_code == 405
        assert refused.headers["content-type"] == "application/problem+json"
        assert {m.strip() for m in refused.headers["allow"].split(",")} == allowed

    @pytest.mark.parametrize(
        "body",
        [
            '{"name": "Café"}'.encode("latin-1"),  # not UTF-8
            b'{"name": "Deep", "description": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # too deep to parse
        ],
    )
    def test_a_body_no_json_parser_reads_is_a_422_problem_and_changes_nothing(self, http, partner, db, body):
        response = http.post(
            "/api/1/clients", content=body, headers={**partner.headers, "content-type": "application/json"}
        )
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "validation_error"
        assert db.scalar(select(func.count()).select_from(Client)) == 0

    @pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=abc", "offset=-1", "status=paused"])
    def test_a_bad_list_parameter_is_a_422_problem(self, http, partner, query):
        response = http.get(f"/api/1/clients?{query}", headers=partner.headers)
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"

    def test_an_unknown_path_is_a_404_problem(self, http, partner):
        response = http.get("/api/1/nothing-here", headers=partner.headers)
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"

    def test_a_non_numeric_client_id_is_a_422_problem(self, http, partner):
        assert http.get("/api/1/clients/abc", headers=partner.headers).status_code == 422


class TestStatusChanges:
    def test_setting_the_same_status_is_a_no_op(self, http, partner):
        client_id = create(http, partner).json()["id"]
        assert patch(http, partner, client_id, status="setup").status_code == 200
        history = http.get(f"/api/1/clients/{client_id}/history", headers=partner.headers).json()
        assert history["total"] == 1

    def test_a_client_never_returns_to_setup(self, http, partner):
        client_id = create(http, partner, status="trial").json()["id"]
        refused = patch(http, partner, client_id, status="setup")
        assert refused.status_code == 409
        assert refused.json()["code"] == "invalid_transition"
        assert refused.json()["from"] == "trial"

    def test_an_active_client_never_returns_to_trial(self, http, partner):
        client_id = create(http, partner, status="active", resources=READY).json()["id"]
        assert patch(http, partner, client_id, status="trial").json()["code"] == "invalid_transition"

    def test_a_disabled_client_returns_only_to_active(self, http, partner):
        client_id = create(http, partner, status="active", resources=READY).json()["id"]
        assert patch(http, partner, client_id, status="disabled").json()["status"] == "disabled"
        assert patch(http, partner, client_id, status="trial").json()["code"] == "invalid_transition"
        assert patch(http, partner, client_id, status="active").json()["status"] == "active"

    def test_activation_with_the_allocation_in_the_same_request_is_atomic(self, http, partner):
        client_id = create(http, partner).json()["id"]
        refused = patch(http, partner, client_id, status="active", resources={"dashboards": 1})
        assert refused.json()["code"] == "activation_requirements_unmet"
        unchanged = http.get(f"/api/1/clients/{client_id}", headers=partner.headers).json()
        assert unchanged["resources"]["dashboards"] == 0
        assert unchanged["status"] == "setup"
        done = patch(http, partner, client_id, status="active", resources=READY)
        assert done.status_code == 200
        assert done.json()["status"] == "active"
        assert done.json()["resources"]["users"] == 1

    def test_a_refused_status_change_leaves_the_name_unchanged_too(self, http, partner):
        client_id = create(http, partner, name="Before").json()["id"]
        assert patch(http, partner, client_id, name="After", status="active").status_code == 409
        assert http.get(f"/api/1/clients/{client_id}", headers=partner.headers).json()["name"] == "Before"

    def test_the_activation_check_lists_what_is_missing_without_changing_anything(self, http, partner):
        client_id = create(http, partner).json()["id"]
        check = http.get(f"/api/1/clients/{client_id}/activation-check", headers=partner.headers).json()
        assert check == {"ready": False, "missing": ["dashboards", "users"]}
        patch(http, partner, client_id, resources=READY)
        check = http.get(f"/api/1/clients/{client_id}/activation-check", headers=partner.headers).json()
        assert check == {"ready": True, "missing": []}
        assert http.get(f"/api/1/clients/{client_id}", headers=partner.headers).json()["status"] == "setup"

    def test_the_audit_log_lists_every_record_newest_first_a_page_at_a_time(self, http, partner):
        client_id = create(http, partner).json()["id"]
        for n in range(3):
            changed = http.patch(
                f"/api/1/clients/{client_id}", json={"name": f"Acme {n}"}, headers=partner.headers
            )
            assert changed.status_code == 200, changed.text
        audit = http.get(f"/api/1/clients/{client_id}/audit", headers=partner.headers).json()
        assert audit["total"] == len(audit["items"]) == 4
        assert [r["action"] for r in audit["items"]] == ["client.updated"] * 3 + ["client.created"]
        assert [r["details"]["name"] for r in audit["items"][:3]] == ["Acme 2", "Acme 1", "Acme 0"]
        newest = audit["items"][0]
        assert newest["actor"] == f"partner_user:{partner.admin_user_id}"
        assert newest["target"] == f"client:{client_id}"
        assert set(newest) == {"id", "at", "actor", "action", "target", "details"}
        page = http.get(f"/api/1/clients/{client_id}/audit?limit=2&offset=2", headers=partner.headers).json()
        assert [r["id"] for r in page["items"]] == [r["id"] for r in audit["items"][2:]]
        assert (page["total"], page["limit"], page["offset"]) == (4, 2, 2)
        assert (
            http.get(f"/api/1/clients/{client_id}/audit?limit=0", headers=partner.headers).status_code == 422
        )

    def test_the_history_lists_every_transition_in_order(self, http, partner):
        client_id = create(http, partner, resources=READY).json()["id"]
        for target in ("trial", "active", "disabled", "active"):
            assert patch(http, partner, client_id, status=target, reason=f"to {target}").status_code == 200
        items = http.get(f"/api/1/clients/{client_id}/history", headers=partner.headers).json()["items"]
        assert [(i["from"], i["to"]) for i in items] == [
            (None, "setup"),
            ("setup", "trial"),
            ("trial", "active"),
            ("active", "disabled"),
            ("disabled", "active"),
        ]
        assert items[-1]["reason"] == "to active"


class TestTrialClock:
    def test_a_trial_expires_exactly_on_time_without_any_job(self, http, partner, clock):
        client_id = create(http, partner, status="trial").json()["id"]
        clock.advance(14 * DAY - timedelta(seconds=1))
        body = http.get(f"/api/1/clients/{client_id}", headers=partner.headers).json()
        assert body["effective_status"] == "trial"
        assert body["trial"]["days_remaining"] == 1
        clock.advance(seconds=1)
        body = http.get(f"/api/1/clients/{client_id}", headers=partner.headers).json()
        assert body["status"] == "trial"
        assert body["effective_status"] == "trial_expired"
        assert body["trial"]["days_remaining"] == 0
        assert body["trial"]["expired"] is True

    def test_one_extension_before_the_end_adds_fourteen_days(self, http, partner, clock):
        client_id = create(http, partner, status="trial").json()["id"]
        clock.advance(13 * DAY)
        extended = http.post(f"/api/1/clients/{client_id}/extend-trial", headers=partner.headers)
        assert extended.status_code == 200
        trial = extended.json()["trial"]
        assert trial["days_remaining"] == 15
        assert trial["extended"] is True
        assert trial["extension_available"] is False
        again = http.post(f"/api/1/clients/{client_id}/extend-trial", headers=partner.headers)
        assert again.status_code == 409
        assert again.json()["code"] == "trial_extension_unavailable"

    def test_an_extension_after_the_trial_ended_is_refused(self, http, partner, clock):
        client_id = create(http, partner, status="trial").json()["id"]
        clock.advance(14 * DAY)
        refused = http.post(f"/api/1/clients/{client_id}/extend-trial", headers=partner.headers)
        assert refused.json()["code"] == "trial_extension_unavailable"

    def test_an_expired_trial_can_still_be_activated_or_disabled(self, http, partner, clock):
        first = create(http, partner, status="trial", resources=READY).json()["id"]
        second = create(http, partner, status="trial").json()["id"]
        clock.advance(30 * DAY)
        assert patch(http, partner, first, status="active").json()["effective_status"] == "active"
        assert patch(http, partner, second, status="disabled").json()["effective_status"] == "disabled"

    def test_leaving_trial_keeps_the_trial_fields_as_history(self, http, partner):
        client_id = create(http, partner, status="trial", resources=READY).json()["id"]
        body = patch(http, partner, client_id, status="active").json()
        assert body["trial"]["started_at"] is not None
        assert body["trial"]["extension_available"] is False


class TestPool:
    def test_setup_allocations_do_not_count_and_trial_allocations_do(self, http, make_partner):
        partner = make_partner(dashboards=5, users=5)
        client_id = create(http, partner, resources={"dashboards": 5, "users": 4}).json()["id"]
        assert pool_of(http, partner, "dashboards") == {
            "total": 5,
            "used_by_partner": 0,
            "allocated": 0,
            "remaining": 5,
        }
        patch(http, partner, client_id, status="trial")
        assert pool_of(http, partner, "dashboards")["remaining"] == 0
        assert pool_of(http, partner, "users") == {
            "total": 5,
            "used_by_partner": 1,
            "allocated": 4,
            "remaining": 0,
        }

    def test_raising_an_allocation_beyond_the_pool_is_refused_with_the_numbers(self, http, make_partner):
        partner = make_partner(dashboards=5)
        client_id = create(http, partner, status="trial", resources={"dashboards": 3}).json()["id"]
        refused = patch(http, partner, client_id, resources={"dashboards": 6})
        assert refused.status_code == 409
        assert refused.json()["code"] == "pool_exhausted"
        assert refused.json()["resource"] == "dashboards"
        assert refused.json()["remaining"] == 2
        assert pool_of(http, partner, "dashboards")["allocated"] == 3

    def test_disabling_returns_the_allocation_and_reactivating_must_fit_again(self, http, make_partner):
        partner = make_partner(dashboards=2, users=10)
        first = create(http, partner, status="active", resources={"dashboards": 2, "users": 1}).json()["id"]
        patch(http, partner, first, status="disabled")
        assert pool_of(http, partner, "dashboards")["remaining"] == 2
        create(http, partner, status="active", resources={"dashboards": 1, "users": 1})
        refused = patch(http, partner, first, status="active")
        assert refused.json()["code"] == "pool_exhausted"
        assert http.get(f"/api/1/clients/{first}", headers=partner.headers).json()["status"] == "disabled"

    def test_an_expired_trial_still_holds_its_allocation(self, http, make_partner, clock):
        partner = make_partner(dashboards=3)
        create(http, partner, status="trial", resources={"dashboards": 3})
        clock.advance(40 * DAY)
        assert pool_of(http, partner, "dashboards")["remaining"] == 0

    def test_partner_api_calls_are_what_the_plan_has_left_after_client_allocations(self, http, make_partner):
        partner = make_partner(api_calls_per_day=1000)
        create(http, partner, status="trial", resources={"api_calls_per_day": 300})
        assert pool_of(http, partner, "api_calls_per_day") == {
            "total": 1000,
            "used_by_partner": 0,
            "allocated": 300,
            "remaining": 700,
        }

    def test_deleting_a_client_returns_its_allocation(self, http, make_partner):
        partner = make_partner(dashboards=3)
        client_id = create(http, partner, status="trial", resources={"dashboards": 3}).json()["id"]
        assert http.delete(f"/api/1/clients/{client_id}", headers=partner.headers).status_code == 204
        assert pool_of(http, partner, "dashboards")["remaining"] == 3
        assert http.get(f"/api/1/clients/{client_id}", headers=partner.headers).status_code == 404

    def test_an_allocation_change_reads_the_partner_once_and_its_timezone_from_that_row(
        self, http, partner, database
    ):
        client_id = create(http, partner, status="trial").json()["id"]
        with statements_sent(database.engine) as read:
            changed = patch(http, partner, client_id, resources={"dashboards": 2})
        assert changed.status_code == 200, changed.text
        assert changed.json()["resources"]["dashboards"] == 2
        assert changed.json()["usage"]["api_calls_today"] == 0  # counted on the partner's calendar
        assert len([statement for statement in read if "FROM partners" in statement]) == 1, read


class TestListing:
    def test_lists_are_paginated_with_totals(self, http, partner):
        for n in range(5):
            create(http, partner, name=f"C{n}")
        page = http.get("/api/1/clients?limit=2&offset=2", headers=partner.headers).json()
        assert [c["name"] for c in page["items"]] == ["C2", "C3"]
        assert (page["total"], page["limit"], page["offset"]) == (5, 2, 2)

    def test_lists_filter_by_status_external_id_and_search(self, http, partner, clock):
        create(http, partner, name="Acme Bakery", external_id="AB-1")
        create(http, partner, name="Blue Fin", status="trial")
        create(http, partner, name="Old Trial", status="trial")
        clock.advance(15 * DAY)
        create(http, partner, name="New Trial", status="trial")

        def names(query):
            return [
                c["name"]
                for c in http.get(f"/api/1/clients?{query}", headers=partner.headers).json()["items"]
            ]

        assert names("status=setup") == ["Acme Bakery"]
        assert names("status=trial") == ["Blue Fin", "Old Trial", "New Trial"]
        assert names("status=trial_expired") == ["Blue Fin", "Old Trial"]
        assert names("external_id=AB-1") == ["Acme Bakery"]
        assert names("q=bak") == ["Acme Bakery"]
        assert names("q=ab-") == ["Acme Bakery"]
        assert names("q=100%25") == []

    @pytest.mark.parametrize(
        ("name", "q"),
        [
            ("Ünïcødé GmbH", "ünï"),
            ("ΣΟΦΙΑ Α.Ε.", "σοφια"),
            ("ÉCOLE Lyon", "école"),
            # Python lowers a word's last Σ to ς and İ to i with a dot above; PostgreSQL, letter by
            # letter, to σ and i: a client is still found by its own name, on both.
            ("ΟΔΥΣΣΕΑΣ", "ΟΔΥΣΣΕΑΣ"),
            ("ΟΔΥΣΣΕΑΣ", "Οδυσσεας"),
            ("İstanbul Ltd", "İstanbul"),
            ("İSTANBUL Ltd", "istanbul"),
        ],
    )
    def test_the_search_ignores_case_in_every_alphabet(self, http, partner, name, q):
        # SQLite's LIKE folds only A-Z: the same search found the client on PostgreSQL alone.
        create(http, partner, name=name)
        create(http, partner, name="Someone Else")
        found = http.get("/api/1/clients", params={"q": q}, headers=partner.headers).json()
        assert [c["name"] for c in found["items"]] == [name]


class TestAccessControl:
    def test_no_key_is_401_and_a_wrong_key_is_401(self, http):
        assert http.get("/api/1/clients").status_code == 401
        wrong = http.get("/api/1/clients", headers={"Authorization": "Bearer tnt_000000000000_nope"})
        assert wrong.status_code == 401
        assert wrong.json()["code"] == "unauthenticated"

    def test_another_partners_client_is_not_found(self, http, partner, make_partner):
        client_id = create(http, partner).json()["id"]
        other = make_partner()
        for method, path in [
            ("get", f"/api/1/clients/{client_id}"),
            ("patch", f"/api/1/clients/{client_id}"),
            ("delete", f"/api/1/clients/{client_id}"),
            ("get", f"/api/1/clients/{client_id}/history"),
            ("get", f"/api/1/clients/{client_id}/audit"),
            ("get", f"/api/1/clients/{client_id}/activation-check"),
            ("post", f"/api/1/clients/{client_id}/extend-trial"),
        ]:
            kwargs = {"json": {"name": "Stolen"}} if method == "patch" else {}
            response = getattr(http, method)(path, headers=other.headers, **kwargs)
            assert response.status_code == 404, (method, path)
        assert http.get(f"/api/1/clients/{client_id}", headers=partner.headers).json()["name"] == "Acme"
        assert http.get("/api/1/clients", headers=other.headers).json()["total"] == 0

    def test_a_viewer_reads_but_cannot_change(self, http, partner, db, clock):
        from tests.content import partner_user_headers

        client_id = create(http, partner).json()["id"]
        headers = partner_user_headers(db, clock, partner, "viewer")
        assert http.get(f"/api/1/clients/{client_id}", headers=headers).status_code == 200
        refused = http.patch(f"/api/1/clients/{client_id}", json={"name": "X"}, headers=headers)
        assert refused.status_code == 403
        assert refused.json()["code"] == "forbidden"
        assert http.post("/api/1/clients", json={"name": "X"}, headers=headers).status_code == 403


class TestIdempotency:
    def test_the_same_key_and_body_replays_the_first_answer(self, http, partner, db):
        headers = {**partner.headers, "Idempotency-Key": "create-acme-1"}
        first = http.post("/api/1/clients", json={"name": "Acme"}, headers=headers)
        second = http.post("/api/1/clients", json={"name": "Acme"}, headers=headers)
        assert first.status_code == second.status_code == 201
        assert first.json() == second.json()
        assert second.headers["idempotent-replayed"] == "true"
        assert db.scalar(select(func.count()).select_from(Client)) == 1

    def test_the_same_key_with_another_body_is_a_conflict(self, http, partner):
        headers = {**partner.headers, "Idempotency-Key": "k-2"}
        http.post("/api/1/clients", json={"name": "Acme"}, headers=headers)
        conflict = http.post("/api/1/clients", json={"name": "Other"}, headers=headers)
        assert conflict.status_code == 409
        assert conflict.json()["code"] == "idempotency_conflict"

    def test_a_key_older_than_a_day_is_forgotten(self, http, partner, clock, db):
        headers = {**partner.headers, "Idempotency-Key": "k-3"}
        http.post("/api/1/clients", json={"name": "Acme"}, headers=headers)
        clock.advance(DAY + timedelta(seconds=1))
        again = http.post("/api/1/clients", json={"name": "Acme"}, headers=headers)
        assert again.status_code == 201
        assert "idempotent-replayed" not in again.headers
        assert db.scalar(select(func.count()).select_from(Client)) == 2

    def test_keys_belong_to_the_caller(self, http, partner, make_partner):
        other = make_partner()
        http.post(
            "/api/1/clients", json={"name": "Acme"}, headers={**partner.headers, "Idempotency-Key": "same"}
        )
        theirs = http.post(
            "/api/1/clients", json={"name": "Acme"}, headers={**other.headers, "Idempotency-Key": "same"}
        )
        assert theirs.status_code == 201
        assert "idempotent-replayed" not in theirs.headers


def test_the_openapi_document_and_docs_are_served(http):
    spec = http.get("/api/1/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert "/api/1/clients/{client_id}/activation-check" in spec["paths"]
    assert http.get("/api/1/docs").status_code == 200


def test_status_changes_are_recorded_once_per_transition(http, partner, db):
    client_id = create(http, partner, resources=READY).json()["id"]
    patch(http, partner, client_id, status="active")
    patch(http, partner, client_id, status="active")
    rows = db.scalars(select(StatusChange).where(StatusChange.client_id == client_id)).all()
    assert [(r.from_status, r.to_status) for r in rows] == [(None, "setup"), ("setup", "active")]
