"""SPEC §12 "Text": data values never break a page or a file. Control characters other than tab
and line breaks, noncharacters and lone surrogates are replaced with U+FFFD on ingest (inline rows
and url sources, column names too), and no text makes the rows listing, the live portal page,
the published page, a PDF, a PNG or an e-mailed export answer 500 — also for rows stored before
the change, which are drawn safely whatever they hold."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import update

from tenantry.app import create_app
from tenantry.charts import svg
from tenantry.db.dashboard_models import DataSource
from tenantry.mail import SmtpMailer
from tests.content import create_dashboard, make_client
from tests.factories import ADMIN_PASSWORD, PASSWORD, add_user, admin_email, sign_in

R = "\ufffd"
# name: (as sent, as stored)
NASTY: dict[str, tuple[str, str]] = {
    "NUL": ("a\x00b", f"a{R}b"),
    "SOH": ("\x01start", f"{R}start"),
    "vertical tab": ("v\x0bt", f"v{R}t"),
    "escape sequence": ("\x1b[31mred", f"{R}[31mred"),
    "DEL": ("d\x7fel", f"d{R}el"),
    "C1": ("c\x85\x9b1", f"c{R}{R}1"),
    "U+FFFF": ("\uffff", R),
    "U+FFFE": ("x\ufffe", f"x{R}"),
    "U+FDD0": ("\ufdd0", R),
    "plane 16 noncharacter": ("\U0010ffff", R),
    "lone high surrogate": ("\ud800", R),
    "lone low surrogate": ("x\udc00y", f"x{R}y"),
    "reversed pair": ("\udc00\ud800", R + R),
    "tab and line breaks": ("a\tb\r\nc\nd", "a\tb\r\nc\nd"),
    "line separator": ("l\u2028s", "l\u2028s"),
    "right-to-left override": ("\u202eevil", "\u202eevil"),
    "zero width": ("z\u200bw\ufeff", "z\u200bw\ufeff"),
    "emoji": ("👩‍👩‍👧 🏳️‍🌈", "👩‍👩‍👧 🏳️‍🌈"),
    "combining": ("Z̸̡̛a̶l̵g̷o̴", "Z̸̡̛a̶l̵g̷o̴"),
    "other scripts": ("漢字 عربى עִבְרִית", "漢字 عربى עִבְרִית"),
    "markup": ("<script>alert(1)</script> & \"'", "<script>alert(1)</script> & \"'"),
    "typst markup": ('#panic("x") $x^2$ *b* ]) "', '#panic("x") $x^2$ *b* ]) "'),
    "long": ("x" * 5000, "x" * 5000),
}
MAX_FLOAT = 1.7976931348623157e308
# Numbers at the edges: beyond a float, sums that overflow one, negative zero.
NUMBERS = [
    ("big", 10**30),
    ("beyond a float", 10**400),
    ("very negative", -(10**200)),
    ("max", MAX_FLOAT),
    ("max", MAX_FLOAT),
    ("max again", MAX_FLOAT),
    ("negative zero", -0.0),
    ("tenth", 0.1),
]
KLIPS = [
    {"title": "Last note", "kind": "value", "columns": {"value": "note"}},
    {"title": "Everything", "kind": "table", "columns": {}},
    {"title": "By label", "kind": "bar", "columns": {"x": "label", "y": "amount"}},
    {"title": "Trend", "kind": "line", "columns": {"x": "label", "y": "amount"}},
    {"title": "Share", "kind": "pie", "columns": {"label": "label", "value": "amount"}},
]
NASTY_COLUMN = ("col\x00\n\ud800\uffff", f"col{R}{R}{R}{R}")


def nasty_rows(sent: bool = True) -> list[dict[str, Any]]:
    which = 0 if sent else 1
    column = NASTY_COLUMN[which]
    rows: list[dict[str, Any]] = [
        {"label": pair[which], "amount": i + 1, "note": pair[which], column: pair[which]}
        for i, pair in enumerate(NASTY.values())
    ]
    rows += [{"label": label, "amount": n, "note": n, column: None} for label, n in NUMBERS]
    return rows


def send_json(http, method: str, path: str, body: Any, headers: dict[str, str]):
    return http.request(
        method, path, content=json.dumps(body), headers={**headers, "Content-Type": "application/json"}
    )


def strict_text(response) -> str:
    """The answer's body as text: valid UTF-8 with no lone surrogate and no unsafe control."""
    text = response.content.decode("utf-8", errors="strict")
    unsafe = [c for c in text if (ord(c) < 32 and c not in "\t\n\r") or 0xD800 <= ord(c) <= 0xDFFF]
    assert unsafe == [], f"unsafe characters in the answer: {unsafe[:5]!r}"
    return text


@pytest.fixture
def board(http, partner, clock):
    """An Active client with an admin user, a source of nasty rows and a dashboard of every kind."""
    client_id = make_client(http, partner, "active")
    add_user(http, partner, client_id, "admin@client.test")
    body = {"name": "Nasty", "kind": "inline", "rows": nasty_rows()}
    created = send_json(http, "POST", f"/api/1/clients/{client_id}/datasources", body, partner.headers)
    assert created.status_code == 201, created.text
    source_id = created.json()["id"]
    dashboard = create_dashboard(http, partner, client_id, source_id, klips=KLIPS, name="Nasty board")
    assert dashboard.status_code == 201, dashboard.text
    return client_id, source_id, dashboard.json()["id"]


def assert_rows_listing_is_scrubbed(http, partner, source_id: int) -> None:
    response = http.get(f"/api/1/datasources/{source_id}/rows?limit=200", headers=partner.headers)
    assert response.status_code == 200, response.text
    strict_text(response)
    assert response.json()["items"] == nasty_rows(sent=False)


def assert_every_surface_answers(http, partner, dashboard_id: int) -> None:
    for fmt, magic in (("pdf", b"%PDF"), ("png", b"\x89PNG")):
        response = http.get(f"/api/1/dashboards/{dashboard_id}/export?format={fmt}", headers=partner.headers)
        assert response.status_code == 200, (fmt, response.text[:300])
        assert response.content.startswith(magic)
        if fmt == "pdf":
            text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
            assert "Nasty board" in text and "Everything" in text
        else:
            assert Image.open(io.BytesIO(response.content)).size[0] > 1000
    link = http.post(
        f"/api/1/dashboards/{dashboard_id}/published-links", json={"name": "Wall"}, headers=partner.headers
    )
    assert link.status_code == 201, link.text
    path = link.json()["url"][link.json()["url"].index("/published/") :]
    page = http.get(path)
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in strict_text(page)
    live = http.get(f"{path}/live")
    assert live.status_code == 200 and strict_text(live)


class TestInlineRows:
    def test_rows_are_scrubbed_on_ingest_and_listed_safely(self, http, partner, board):
        _, source_id, _ = board
        assert_rows_listing_is_scrubbed(http, partner, source_id)

    def test_every_surface_answers_with_nasty_rows(self, http, partner, board):
        _, _, dashboard_id = board
        assert_every_surface_answers(http, partner, dashboard_id)

    def test_the_live_portal_page_and_its_poll_answer(self, http, partner, board):
        _, _, dashboard_id = board
        sign_in(http, "admin@client.test", PASSWORD)
        page = http.get(f"/app/dashboards/{dashboard_id}")
        assert page.status_code == 200
        assert "<script>alert(1)</script>" not in strict_text(page)
        poll = http.get(f"/app/dashboards/{dashboard_id}/live")
        assert poll.status_code == 200 and "html" in poll.json()
        strict_text(poll)

    def test_the_console_page_of_the_client_answers(self, http, partner, board, db):
        client_id, _, _ = board
        email = admin_email(db, partner)
        db.rollback()
        sign_in(http, email, ADMIN_PASSWORD)
        page = http.get(f"/partner/clients/{client_id}")
        assert page.status_code == 200
        strict_text(page)

    def test_an_emailed_export_is_delivered(
        self, settings, clock, database, smtp_server, partner, board, make_worker
    ):
        _, _, dashboard_id = board
        mailer = SmtpMailer(smtp_server.host, smtp_server.port, "reports@tenantry.test")
        with TestClient(create_app(settings, clock=clock, database=database, mailer=mailer)) as http:
            for fmt in ("pdf", "png"):
                response = http.post(
                    f"/api/1/dashboards/{dashboard_id}/email",
                    json={"to": ["boss@client.test"], "format": fmt},
                    headers=partner.headers,
                )
                assert response.status_code == 202, response.text
                assert response.json()["queued"] is True
        assert make_worker(mailer).run_mails() == 2
        assert [m.get_content_type() for m in smtp_server.messages] == ["multipart/mixed"] * 2


class TestUrlSources:
    @pytest.mark.parametrize("fmt", ["json", "csv"])
    def test_a_fetched_source_is_scrubbed_like_inline_rows(
        self, http, partner, database, clock, data_server, settings, fmt
    ):
        from tenantry.datasources.fetch import fetch_rows
        from tenantry.datasources.service import refresh_source
        from tenantry.outbound import Guard

        if fmt == "json":
            body = json.dumps(nasty_rows())  # lone surrogates travel as \\u escapes
        else:
            import csv

            out = io.StringIO()
            writer = csv.writer(out)
            rows = [r for r in nasty_rows() if isinstance(r["amount"], int) and abs(r["amount"]) < 1000]
            columns = list(rows[0])

            def utf8(value: object) -> str:
                # UTF-8 cannot carry a lone surrogate: in a CSV file those arrive as "?".
                return str(value).encode("utf-8", "replace").decode()

            writer.writerow([utf8(c) for c in columns])
            for row in rows:
                writer.writerow([utf8(row[c]) for c in columns])
            body = out.getvalue() + "e,1e999,1e999,\n"
        url = data_server.serve(f"/nasty.{fmt}", body.encode("utf-8", "surrogatepass"), "text/plain")
        client_id = make_client(http, partner, "active")
        created = http.post(
            f"/api/1/clients/{client_id}/datasources",
            json={"name": "Remote", "kind": "url", "url": url, "format": fmt},
            headers=partner.headers,
        )
        source_id = created.json()["id"]
        with database.session(write=True) as session:
            guard = Guard.from_settings(settings)
            outcome = refresh_source(
                session,
                session.get(DataSource, source_id),
                clock.now(),
                lambda url, fmt: fetch_rows(url, fmt, guard=guard),
            )
            session.commit()
        assert outcome.ok, outcome.error
        listing = http.get(f"/api/1/datasources/{source_id}/rows?limit=200", headers=partner.headers)
        assert listing.status_code == 200
        strict_text(listing)
        items = listing.json()["items"]
        if fmt == "json":
            assert items == nasty_rows(sent=False)
        else:
            assert f"col{R}{R}?{R}" in items[0]
            assert items[0]["label"] == "a\ufffdb"
            # A number too large for a float stays text: infinity is not JSON.
            assert items[-1]["amount"] == "1e999"
        dashboard = create_dashboard(http, partner, client_id, source_id, klips=KLIPS, name="Nasty board")
        assert_every_surface_answers(http, partner, dashboard.json()["id"])


class TestRowsStoredBeforeTheChange:
    def test_unscrubbed_rows_already_stored_still_draw_and_export(self, app, http, partner, board, database):
        """Rows written before ingest scrubbed them: every drawing surface copes on its own."""
        _, source_id, dashboard_id = board
        with database.session(write=True) as session:
            session.execute(update(DataSource).where(DataSource.id == source_id).values(rows=nasty_rows()))
            session.commit()
        app.state.services.renderer.live.klips.clear()
        assert_every_surface_answers(http, partner, dashboard_id)

    @pytest.mark.parametrize("klip", KLIPS, ids=[k["kind"] for k in KLIPS])
    def test_a_chart_of_unscrubbed_rows_is_well_formed_svg(self, klip):
        drawing = svg.render(klip["kind"], "Title \x00\ud800", nasty_rows(), klip["columns"])
        drawing.encode("utf-8")  # no lone surrogate
        ET.fromstring(drawing)  # well-formed XML: no control character XML refuses
