"""Requests that replace a whole set (properties, shares, klips, rows) or make the next version,
sent at once: the answers are those SQLite gives, where each write request is alone.

On PostgreSQL (READ COMMITTED) two requests that "delete the old set, insert the new one" overlap
unless they lock the row the set hangs off; each test sends the same request from several threads
at once, released together, to a real server on loopback.
"""

from __future__ import annotations

import httpx

from tests.concurrently import ROUNDS, THREADS, at_once, built, statuses

__all__ = ["built"]  # the fixture, used by name


def test_partners_adding_the_same_partner_user_email_at_once_get_one_201_and_409s_never_a_500(
    server_url, make_partner
):
    # Partner-user e-mails are unique across the installation (uq_partner_users_email); each
    # request locks only its own partner, so the existence check and the insert race.
    partners = [make_partner() for _ in range(THREADS)]
    answers = at_once(
        server_url,
        lambda i: partners[i].headers,
        lambda h, r, i: h.post(
            "/api/1/partner/users", json={"email": f"same{r}@race.test", "name": "R", "role": "viewer"}
        ),
    )
    assert statuses(answers) == {201: ROUNDS, 409: ROUNDS * (THREADS - 1)}
    assert all(a.json()["code"] == "duplicate" for a in answers if a.status_code == 409)


def test_replacing_a_clients_properties_from_several_requests_at_once_never_answers_500(
    server_url, partner, built
):
    client_id = built["client_id"]
    answers = at_once(
        server_url,
        lambda i: partner.headers,
        lambda h, r, i: h.put(f"/api/1/clients/{client_id}/properties", json={"region": f"r{r}-{i}"}),
    )
    assert statuses(answers) == {200: ROUNDS * THREADS}
    with httpx.Client(base_url=server_url, headers=partner.headers) as http:
        kept = http.get(f"/api/1/clients/{client_id}/properties").json()
    assert list(kept) == ["region"]


def test_replacing_a_dashboards_shares_from_several_requests_at_once_never_answers_500(
    server_url, partner, built
):
    dashboard_id, users = built["dashboard_id"], built["users"]
    path = f"/api/1/dashboards/{dashboard_id}/shares"

    def unshare() -> None:
        with httpx.Client(base_url=server_url, headers=partner.headers) as http:
            assert http.put(path, json={"user_ids": []}).status_code == 200

    answers = at_once(
        server_url,
        lambda i: partner.headers,
        lambda h, r, i: h.put(path, json={"user_ids": users}),
        rounds=ROUNDS * 3,
        before=unshare,
    )
    assert statuses(answers) == {200: ROUNDS * 3 * THREADS}


def test_replacing_an_inline_sources_rows_from_several_requests_at_once_never_answers_500(
    server_url, partner, built
):
    source_id = built["source_id"]
    answers = at_once(
        server_url,
        lambda i: partner.headers,
        lambda h, r, i: h.patch(f"/api/1/datasources/{source_id}", json={"rows": [{"a": i}, {"a": r}]}),
    )
    assert statuses(answers) == {200: ROUNDS * THREADS}
    with httpx.Client(base_url=server_url, headers=partner.headers) as http:
        assert http.get(f"/api/1/datasources/{source_id}").json()["row_count"] == 2
        assert http.get(f"/api/1/datasources/{source_id}/rows").json()["total"] == 2


def test_replacing_a_dashboards_klips_from_several_requests_at_once_leaves_exactly_the_klips_sent(
    server_url, partner, built
):
    dashboard_id, source_id = built["dashboard_id"], built["source_id"]
    klips = [
        {"title": "Only", "kind": "bar", "datasource_id": source_id, "columns": {"x": "month", "y": "sales"}}
    ]
    left: list[list[str]] = []

    def look() -> None:
        with httpx.Client(base_url=server_url, headers=partner.headers) as http:
            left.append([k["title"] for k in http.get(f"/api/1/dashboards/{dashboard_id}").json()["klips"]])

    answers = at_once(
        server_url,
        lambda i: partner.headers,
        lambda h, r, i: h.patch(f"/api/1/dashboards/{dashboard_id}", json={"klips": klips}),
        after=look,
    )
    assert statuses(answers) == {200: ROUNDS * THREADS}
    # Every request asked for this one klip: however they interleave, one klip is what is left.
    assert left == [["Only"]] * ROUNDS


def test_updating_a_template_from_several_requests_at_once_makes_one_new_version_each(
    server_url, partner, built
):
    with httpx.Client(base_url=server_url, headers=partner.headers, timeout=60) as http:
        template = http.post(f"/api/1/templates/from-dashboard/{built['dashboard_id']}")
        assert template.status_code == 201, template.text
        template_id = template.json()["id"]
    answers = at_once(
        server_url,
        lambda i: partner.headers,
        lambda h, r, i: h.put(
            f"/api/1/templates/{template_id}", json={"name": f"T{r}-{i}", "dashboards": [{"name": "D"}]}
        ),
        rounds=2,
    )
    assert statuses(answers) == {200: 2 * THREADS}
    # SPEC §15: "a PUT makes the next version". 16 accepted PUTs after version 1: version 17,
    # and no two PUTs told they made the same version.
    versions = sorted(a.json()["version"] for a in answers)
    assert versions == list(range(2, 2 + 2 * THREADS))
    with httpx.Client(base_url=server_url, headers=partner.headers) as http:
        assert http.get(f"/api/1/templates/{template_id}").json()["version"] == 1 + 2 * THREADS
