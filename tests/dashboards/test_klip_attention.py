"""A klip whose data source changed under it is drawn as a "needs attention" card that names the
column it misses; whoever only views it (a client member, the public of a published link) learns
no other column of the source (SPEC §12 "Who reads what")."""

from __future__ import annotations

from tests.content import ROWS, create_dashboard, inline_source, path_of, publish, share
from tests.factories import PASSWORD, add_user, client_with_user, sign_in

KLIPS = [{"title": "Total", "kind": "value", "columns": {"value": "sales"}}]
# The source after a refresh: `sales` is gone, and columns nobody drew are there.
CHANGED = [{**row, "employee_ssn": "078-05-1120", "salary_of_ceo": 990000} for row in ROWS]
for row in CHANGED:
    del row["sales"]


def _board(http, partner, clock):
    client_id, _, _ = client_with_user(http, partner, clock, "active", "admin@client.test", dashboards=3)
    member = add_user(http, partner, client_id, "member@client.test", role="member")
    source_id = inline_source(http, partner, client_id)
    response = create_dashboard(http, partner, client_id, source_id, klips=KLIPS, name="Board")
    assert response.status_code == 201, response.text
    board = response.json()["id"]
    share(http, partner, board, member["id"])
    patched = http.patch(f"/api/1/datasources/{source_id}", json={"rows": CHANGED}, headers=partner.headers)
    assert patched.status_code == 200, patched.text
    return board


def test_a_member_does_not_learn_the_sources_other_columns_from_a_broken_klip(http, partner, clock):
    board = _board(http, partner, clock)
    sign_in(http, "member@client.test", PASSWORD)
    page = http.get(f"/app/dashboards/{board}")
    assert page.status_code == 200
    assert "Needs attention: Its data source changed: there is no column &#x27;sales&#x27;" in page.text
    assert "employee_ssn" not in page.text
    assert "salary_of_ceo" not in page.text


def test_a_published_page_does_not_list_the_sources_columns_either(http, partner, clock):
    board = _board(http, partner, clock)
    link = publish(http, partner, board)
    assert link.status_code == 201, link.text
    http.cookies.clear()
    page = http.get(path_of(link.json()))
    assert page.status_code == 200
    assert "Needs attention: Its data source changed: there is no column &#x27;sales&#x27;" in page.text
    assert "employee_ssn" not in page.text
    assert "salary_of_ceo" not in page.text


def test_the_builder_is_told_the_columns_the_source_has(http, partner, clock):
    board = _board(http, partner, clock)
    klip_id = http.get(f"/api/1/dashboards/{board}", headers=partner.headers).json()["klips"][0]["id"]
    refused = http.patch(
        f"/api/1/dashboards/{board}/klips/{klip_id}", json={"title": "Still total"}, headers=partner.headers
    )
    assert refused.status_code == 422
    assert "employee_ssn" in refused.json()["detail"]
