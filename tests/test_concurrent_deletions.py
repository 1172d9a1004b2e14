"""Deleting, changing and adding the same things from several requests at once: one deletion wins
and the others are 404, counts given back once, and never a 500 or a deadlock's 503, on PostgreSQL
as on SQLite (each test sends its requests together to a real server on loopback)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select

from tenantry.db.models import AuditEvent
from tests.concurrently import ROUNDS, THREADS, at_once, built, statuses
from tests.content import create_dashboard, inline_source
from tests.factories import new_client

__all__ = ["built"]  # the fixture, used by name


def _http(server_url: str, partner: Any) -> httpx.Client:
    return httpx.Client(base_url=server_url, headers=partner.headers, timeout=60)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(out, "PNG")
    return out.getvalue()


SCHEDULE = {"frequency": "daily", "time": "08:00", "format": "pdf", "recipients": {"emails": ["x@r.test"]}}


# --- deleting the same thing from several requests at once: one 204, the others 404 ----------
# (as SQLite answers; API keys and published links are revoked, idempotently, and hold up)


def _make_domain(http: httpx.Client, r: int) -> str:
    made = http.post("/api/1/partner/domains", json={"hostname": f"d{r}.example.test"})
    assert made.status_code == 201, made.text
    return f"/api/1/partner/domains/{made.json()['id']}"


def _make_webhook(http: httpx.Client, r: int) -> str:
    made = http.post("/api/1/webhooks", json={"url": f"http://127.0.0.1:9/h{r}"})
    assert made.status_code == 201, made.text
    return f"/api/1/webhooks/{made.json()['id']}"


def _make_schedule(http: httpx.Client, r: int, b: dict[str, Any]) -> str:
    made = http.post(f"/api/1/dashboards/{b['dashboard_id']}/schedules", json=SCHEDULE)
    assert made.status_code == 201, made.text
    return f"/api/1/schedules/{made.json()['id']}"


def _make_dashboard(http: httpx.Client, r: int, b: dict[str, Any]) -> str:
    made = create_dashboard(http, NOH, b["client_id"], b["source_id"], name=f"X{r}")
    assert made.status_code == 201, made.text
    return f"/api/1/dashboards/{made.json()['id']}"


class _NoHeaders:
    headers: dict[str, str] = {}


NOH = _NoHeaders()

DELETABLE: dict[str, Callable[[httpx.Client, int, dict[str, Any]], str]] = {
    "domain": lambda h, r, b: _make_domain(h, r),
    "webhook": lambda h, r, b: _make_webhook(h, r),
    "schedule": _make_schedule,
    "dashboard": _make_dashboard,
    "datasource": lambda h, r, b: "/api/1/datasources/" + str(inline_source(h, NOH, b["client_id"])),
}


@pytest.mark.parametrize("kind", sorted(DELETABLE))
def test_deleting_the_same_object_from_several_requests_at_once_answers_one_204_and_404s_never_a_500(
    server_url, partner, built, kind
):
    paths: list[str] = []

    def make() -> None:
        with _http(server_url, partner) as http:
            paths.append(DELETABLE[kind](http, len(paths), built))

    answers = at_once(
        server_url, lambda i: partner.headers, lambda h, r, i: h.delete(paths[r]), before=make, rounds=4
    )
    assert statuses(answers) == {204: 4, 404: 4 * (THREADS - 1)}


def _two_dashboards(http: httpx.Client, partner: Any, published_links: int) -> tuple[int, int, list[int]]:
    """A Trial client holding its allocation of 2 dashboards (over one source): (client, source,
    dashboards)."""
    client_id = new_client(http, partner, "trial", dashboards=2, users=0, published_links=published_links)
    source_id = inline_source(http, partner, client_id)
    ids = [create_dashboard(http, partner, client_id, source_id, name=f"D{n}").json()["id"] for n in range(2)]
    return client_id, source_id, ids


def test_deleting_a_dashboard_from_several_requests_at_once_gives_its_place_back_once(server_url, partner):
    # A DELETE that got past a lookup made before another deleted it gave the dashboard back again:
    # the usage dropped below what the client holds, and its allocation could then be exceeded.
    seen = []
    for _r in range(4):
        with _http(server_url, partner) as http:
            client_id, source_id, ids = _two_dashboards(http, partner, published_links=0)
        at_once(
            server_url,
            lambda i: partner.headers,
            lambda h, rr, i, target=ids[0]: h.delete(f"/api/1/dashboards/{target}"),
            rounds=1,
        )
        with _http(server_url, partner) as http:
            usage = http.get(f"/api/1/clients/{client_id}").json()["usage"]["dashboards"]
            more = [
                create_dashboard(http, partner, client_id, source_id, name=f"M{n}").status_code
                for n in range(2)
            ]
            held = http.get(f"/api/1/clients/{client_id}/dashboards").json()["total"]
        seen.append((usage, more, held))
    # usage 1 after the delete; one more dashboard fits the allocation of 2, the next is refused.
    assert seen == [(1, [201, 409], 2)] * 4


# --- schedules --------------------------------------------------------------------------------


def test_patching_and_deleting_a_schedule_at_once_never_answers_500(server_url, partner, built):
    ids: list[int] = []

    def make() -> None:
        with _http(server_url, partner) as http:
            ids.append(
                http.post(f"/api/1/dashboards/{built['dashboard_id']}/schedules", json=SCHEDULE).json()["id"]
            )

    answers = at_once(
        server_url,
        lambda i: partner.headers,
        lambda h, r, i: (
            h.delete(f"/api/1/schedules/{ids[r]}")
            if i % 2
            else h.patch(f"/api/1/schedules/{ids[r]}", json={"time": f"0{i}:30"})
        ),
        before=make,
    )
    assert set(statuses(answers)) <= {200, 204, 404}, statuses(answers)


# --- branding -----------------------------------------------------------------------------------


def test_putting_and_deleting_the_partner_logo_at_once_never_answers_503(server_url, partner):
    png = _png()
    answers = at_once(
        server_url,
        lambda i: {**partner.headers, "Content-Type": "image/png"},
        lambda h, r, i: (
            h.put("/api/1/partner/branding/logo", content=png)
            if i % 2
            else h.delete("/api/1/partner/branding/logo")
        ),
    )
    assert set(statuses(answers)) <= {200, 204, 404}, statuses(answers)


# --- MFA --------------------------------------------------------------------------------------


def test_beginning_totp_from_several_requests_at_once_never_answers_500(
    server_url, partner, add_partner_user
):
    heads: list[dict[str, str]] = []
    answers = at_once(
        server_url,
        lambda i: heads[-1],
        lambda h, r, i: h.post("/api/1/me/mfa/totp"),
        before=lambda: heads.append(add_partner_user(partner, "editor")),
    )
    assert statuses(answers) == {201: ROUNDS * THREADS}


def _add_schedule(server_url: str, partner: Any, built: dict[str, Any], paths: list[str]) -> None:
    with _http(server_url, partner) as http:
        paths.append(_make_schedule(http, len(paths), built))


def test_deleting_a_schedule_from_several_requests_at_once_records_one_unscheduled_event(
    server_url, partner, built, db
):
    paths: list[str] = []
    at_once(
        server_url,
        lambda i: partner.headers,
        lambda h, r, i: h.delete(paths[r]),
        before=lambda: _add_schedule(server_url, partner, built, paths),
        rounds=4,
    )
    db.rollback()
    count = db.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.partner_id == partner.id, AuditEvent.action == "report.unscheduled")
    )
    assert count == 4


def test_revoking_a_link_while_its_dashboard_is_deleted_gives_the_link_back_once(server_url, partner):
    seen = []
    for _r in range(4):
        with _http(server_url, partner) as http:
            client_id, _source_id, boards = _two_dashboards(http, partner, published_links=2)
            links = [
                http.post(f"/api/1/dashboards/{b}/published-links", json={"name": "L"}).json()["id"]
                for b in boards
            ]
        at_once(
            server_url,
            lambda i: partner.headers,
            lambda h, rr, i, link=links[0], board=boards[0]: (
                h.delete(f"/api/1/published-links/{link}")
                if i % 2
                else h.delete(f"/api/1/dashboards/{board}")
            ),
            rounds=1,
        )
        with _http(server_url, partner) as http:
            usage = http.get(f"/api/1/clients/{client_id}").json()["usage"]["published_links"]
            more = [
                http.post(
                    f"/api/1/dashboards/{boards[1]}/published-links", json={"name": f"M{n}"}
                ).status_code
                for n in range(2)
            ]
        seen.append((usage, more))
    # One live link (on the dashboard left) of an allocation of 2: one more fits, the next is refused.
    assert seen == [(1, [201, 409])] * 4


# --- one object changed or used while it is deleted ----------------------------------------


def _each_round(server_url: str, partner: Any, make: Callable[[httpx.Client], Any], call, rounds: int = 4):
    """`rounds` times: `make` an object alone, then send `call(client, made, i)` from THREADS at once."""
    made: list[Any] = []

    def before() -> None:
        with _http(server_url, partner) as http:
            made.append(make(http))

    answers = at_once(
        server_url,
        lambda i: partner.headers,
        lambda h, r, i: call(h, made[r], i),
        before=before,
        rounds=rounds,
    )
    return statuses(answers)


def test_renaming_a_dashboard_while_it_is_deleted_never_answers_503(server_url, partner, built):
    got = _each_round(
        server_url,
        partner,
        lambda h: _make_dashboard(h, 0, built),
        lambda h, path, i: h.delete(path) if i == 0 else h.patch(path, json={"name": f"N{i}"}),
    )
    assert set(got) <= {200, 204, 404}, got


def test_adding_dashboards_to_a_client_while_it_is_deleted_never_answers_500(server_url, partner):
    def make(h: httpx.Client) -> tuple[int, int]:
        client_id = new_client(h, NOH, "setup")
        return client_id, inline_source(h, NOH, client_id)

    got = _each_round(
        server_url,
        partner,
        make,
        lambda h, m, i: (
            h.delete(f"/api/1/clients/{m[0]}")
            if i == 0
            else create_dashboard(h, NOH, m[0], m[1], name=f"Q{i}")
        ),
    )
    assert set(got) <= {201, 204, 404}, got


def test_deleting_a_template_from_several_requests_at_once_answers_one_204_and_404s(
    server_url, partner, built
):
    got = _each_round(
        server_url,
        partner,
        lambda h: h.post(f"/api/1/templates/from-dashboard/{built['dashboard_id']}").json()["id"],
        lambda h, template_id, i: h.delete(f"/api/1/templates/{template_id}"),
    )
    assert got == {204: 4, 404: 4 * (THREADS - 1)}, got
