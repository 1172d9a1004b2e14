"""Fetching url sources with their full settings (method, headers, query, body, auth, xlsx,
records, pagination, Google Sheets links) from a real HTTP server on loopback."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import openpyxl
import pytest

from tenantry.datasources import fetch as fetch_module
from tenantry.datasources.fetch import FetchError, fetch_source, next_link, sheets_export_url
from tenantry.datasources.placeholders import Context, MissingProperty
from tenantry.datasources.request import SourceRequest
from tenantry.outbound import AllowList, Guard
from tests.content import make_client
from tests.servers import local_http_server

# The API server listens on 127.0.0.1, which only an allow-list opens.
LOOPBACK = Guard(AllowList.parse("127.0.0.1"))
ACME = Context(client_id=7, external_id="ac-1", name="Acme & Co", properties={"account": "a/b c"})


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Api:
    """A real HTTP server whose answer to each request a test computes (`answer(seen)`)."""

    base: str = ""
    answer: Callable[[Seen], Answer] = lambda seen: (404, {}, b"")
    seen: list[Seen] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def api() -> Iterator[Api]:
    state = Api()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            parts = urlsplit(self.path)
            seen = Seen(
                self.command,
                parts.path,
                parse_qs(parts.query),
                {k.lower(): v for k, v in self.headers.items()},
                body,
            )
            state.seen.append(seen)
            status, headers, payload = state.answer(seen)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if "drip" not in headers:
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if "drip" in headers:
                for byte in payload:
                    if state.stop.wait(0.3):
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                return
            self.wfile.write(payload)

        do_GET = do_POST = _handle

        def log_message(self, *args: Any) -> None:
            pass

    with local_http_server(Handler) as base:
        state.base = base
        try:
            yield state
        finally:
            state.stop.set()


def request(url: str, fmt: str = "json", context: Context | None = ACME, **settings: Any) -> SourceRequest:
    values: dict[str, Any] = {
        "method": "GET",
        "headers": {},
        "query": {},
        "body": None,
        "auth": None,
        "records": None,
        "paginate": None,
        **settings,
    }
    return SourceRequest(kind="url", url=url, format=fmt, sql=None, context=context, **values)


def fetch(req: SourceRequest, **options: Any) -> list[dict[str, Any]]:
    return fetch_source(req, guard=LOOPBACK, **options)


def as_json(value: Any, status: int = 200, **headers: str) -> Answer:
    return status, {"Content-Type": "application/json", **headers}, json.dumps(value).encode()


class TestRequestSettings:
    def test_query_values_are_merged_into_the_query_the_url_already_has(self, api):
        api.answer = lambda seen: as_json([{"a": 1}])
        fetch(request(api.base + "/rows?fixed=1", query={"since": "2026-01-01", "n": "5"}))
        assert api.seen[0].query == {"fixed": ["1"], "since": ["2026-01-01"], "n": ["5"]}

    def test_headers_are_sent_as_given(self, api):
        api.answer = lambda seen: as_json([{"a": 1}])
        fetch(request(api.base + "/rows", headers={"X-Api-Key": "k-123456"}))
        assert api.seen[0].headers["x-api-key"] == "k-123456"

    def test_a_post_sends_its_body_as_json_when_it_is_json(self, api):
        api.answer = lambda seen: as_json([{"a": 1}])
        fetch(request(api.base + "/report", method="POST", body='{"range": "month"}'))
        assert api.seen[0].method == "POST"
        assert api.seen[0].body == b'{"range": "month"}'
        assert api.seen[0].headers["content-type"] == "application/json"

    def test_a_get_sends_no_body(self, api):
        api.answer = lambda seen: as_json([{"a": 1}])
        fetch(request(api.base + "/rows", body="ignored"))
        assert api.seen[0].method == "GET" and api.seen[0].body == b""

    def test_basic_auth_sends_the_user_name_and_password(self, api):
        api.answer = lambda seen: as_json([{"a": 1}])
        fetch(request(api.base + "/rows", auth={"type": "basic", "username": "ann", "password": "pa:ss"}))
        assert api.seen[0].headers["authorization"] == "Basic " + base64.b64encode(b"ann:pa:ss").decode()

    def test_bearer_auth_sends_the_token(self, api):
        api.answer = lambda seen: as_json([{"a": 1}])
        fetch(request(api.base + "/rows", auth={"type": "bearer", "token": "tok-abcdef"}))
        assert api.seen[0].headers["authorization"] == "Bearer tok-abcdef"

    @pytest.mark.parametrize("status", [401, 403])
    def test_refused_credentials_are_reported_plainly(self, api, status):
        api.answer = lambda seen: as_json({"error": "no"}, status)
        with pytest.raises(FetchError, match=rf"^The server refused the credentials \(HTTP {status}\)\.$"):
            fetch(request(api.base + "/rows", auth={"type": "bearer", "token": "wrong-token"}))

    def test_a_redirect_to_another_server_does_not_carry_the_secrets(self, api):
        def answer(seen: Seen) -> Answer:
            if seen.path == "/start":
                # "localhost" is another origin than 127.0.0.1 for the same server.
                return 302, {"Location": api.base.replace("127.0.0.1", "localhost") + "/moved"}, b""
            return as_json([{"a": 1}])

        api.answer = answer
        guard = Guard(AllowList.parse("127.0.0.1, localhost"))
        req = request(
            api.base + "/start", headers={"X-Api-Key": "k-123456"}, auth={"type": "bearer", "token": "t-1234"}
        )
        assert fetch_source(req, guard=guard) == [{"a": 1}]
        assert api.seen[0].headers["x-api-key"] == "k-123456"
        assert "x-api-key" not in api.seen[1].headers and "authorization" not in api.seen[1].headers

    def test_a_redirect_on_the_same_server_keeps_the_secrets(self, api):
        api.answer = lambda seen: (
            (302, {"Location": "/moved"}, b"") if seen.path == "/start" else as_json([{"a": 2}])
        )
        assert fetch(request(api.base + "/start", auth={"type": "bearer", "token": "t-1234"})) == [{"a": 2}]
        assert api.seen[1].headers["authorization"] == "Bearer t-1234"

    def test_a_redirected_post_becomes_a_get_without_its_body(self, api):
        api.answer = lambda seen: (
            (303, {"Location": "/result"}, b"") if seen.method == "POST" else as_json([{"a": 1}])
        )
        assert fetch(request(api.base + "/report", method="POST", body='{"q": 1}')) == [{"a": 1}]
        assert (api.seen[1].method, api.seen[1].body) == ("GET", b"")
        assert "content-type" not in api.seen[1].headers


class TestPlaceholders:
    def test_placeholders_are_filled_in_the_url_query_headers_and_body(self, api):
        api.answer = lambda seen: as_json([{"a": 1}])
        fetch(
            request(
                api.base + "/accounts/{{client.prop.account}}/rows",
                method="POST",
                query={"client": "{{client.id}}"},
                headers={"X-Customer": "{{client.external_id}}"},
                body='{"name": "{{client.name}}"}',
            )
        )
        seen = api.seen[0]
        # In the path the value is percent-encoded: its "/" does not add a path segment.
        assert seen.path == "/accounts/a%2Fb%20c/rows"
        assert seen.query == {"client": ["7"]}
        assert seen.headers["x-customer"] == "ac-1"
        assert seen.body == b'{"name": "Acme & Co"}'

    def test_a_value_in_the_url_cannot_add_a_query_parameter(self, api):
        api.answer = lambda seen: as_json([{"a": 1}])
        context = Context(1, None, "x", {"account": "1&admin=true"})
        fetch(request(api.base + "/rows?account={{client.prop.account}}", context=context))
        assert api.seen[0].query == {"account": ["1&admin=true"]}

    def test_a_missing_property_fails_the_fetch_naming_it_before_anything_is_sent(self, api):
        with pytest.raises(MissingProperty, match=r"^The client has no property 'region'\.$"):
            fetch(request(api.base + "/rows", query={"r": "{{client.prop.region}}"}))
        assert api.seen == []

    def test_a_url_made_malformed_by_a_value_is_a_fetch_error(self, api):
        context = Context(1, None, "x", {"port": "http"})
        with pytest.raises(FetchError, match=r"^The URL is malformed\.$"):
            fetch(request("http://127.0.0.1:{{client.prop.port}}/rows", context=context, query={"a": "1"}))

    def test_a_header_value_that_would_break_the_request_is_refused(self, api):
        context = Context(1, None, "x", {"account": "a\r\nX-Evil: 1"})
        with pytest.raises(FetchError, match="header X-Account has a line break"):
            fetch(
                request(api.base + "/rows", headers={"X-Account": "{{client.prop.account}}"}, context=context)
            )
        assert api.seen == []

    def test_a_header_value_that_is_not_ascii_is_refused_by_name(self, api):
        context = Context(1, None, "Café Müller", {})
        with pytest.raises(FetchError, match=r"^The header X-Name may only hold ASCII characters"):
            fetch(request(api.base + "/rows", headers={"X-Name": "{{client.name}}"}, context=context))
        assert api.seen == []

    def test_an_invalid_header_name_is_refused(self, api):
        with pytest.raises(FetchError, match="not a valid header name"):
            fetch(request(api.base + "/rows", headers={"X Bad": "1"}))
        assert api.seen == []


class TestSecretsStayOutOfErrors:
    def test_a_token_echoed_by_the_server_never_appears_in_the_error(self, api):
        token = "sekret-token-0042"
        # The server puts the token it got into a column name of an unusable row.
        api.answer = lambda seen: as_json([{seen.headers["x-api-key"]: {"nested": 1}}])
        with pytest.raises(FetchError) as caught:
            fetch(request(api.base + "/rows", headers={"X-Api-Key": token}))
        assert token not in str(caught.value)
        assert "*****" in str(caught.value)

    def test_a_sql_password_is_masked_in_whatever_the_connector_reports(self, monkeypatch):
        def echo(request: SourceRequest, **options: Any) -> list[dict[str, Any]]:
            raise FetchError(f"login failed for password {request.sql['password']}")  # type: ignore[index]

        monkeypatch.setattr("tenantry.datasources.sql.fetch_sql", echo)
        sql = {"engine": "postgresql", "host": "db.example", "password": "pw-9f8e7d", "query": "select 1"}
        req = SourceRequest(kind="sql", url=None, format=None, sql=sql)
        with pytest.raises(FetchError, match=r"^login failed for password \*\*\*\*\*$"):
            fetch_source(req, guard=LOOPBACK)

    def test_a_bearer_token_and_its_basic_form_are_masked_too(self, api):
        credential = base64.b64encode(b"ann:hunter2hunter2").decode()
        api.answer = lambda seen: as_json([{seen.headers["authorization"]: [1]}])
        with pytest.raises(FetchError) as caught:
            fetch(
                request(
                    api.base + "/rows",
                    auth={"type": "basic", "username": "ann", "password": "hunter2hunter2"},
                )
            )
        assert credential not in str(caught.value)


def _workbook_with(parts: dict[str, bytes]) -> bytes:
    """A workbook of one sheet, with some of its parts replaced or added."""
    book = openpyxl.Workbook()
    book.active.append(["a"])
    plain = io.BytesIO()
    book.save(plain)
    source = zipfile.ZipFile(io.BytesIO(plain.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            archive.writestr(info.filename, parts.get(info.filename, source.read(info.filename)))
        for name in parts.keys() - set(source.namelist()):
            archive.writestr(name, parts[name])
    return out.getvalue()


class TestFormats:
    def test_an_xlsx_first_sheet_gives_rows_named_by_its_first_row(self, api):
        workbook = openpyxl.Workbook()
        sheet = workbook.active
        sheet.append(["month", "sales", "when"])
        sheet.append(["Jan", 120, None])
        sheet.append(["Feb", 80.5, "late"])
        workbook.create_sheet("other").append(["ignored"])
        data = io.BytesIO()
        workbook.save(data)
        api.answer = lambda seen: (200, {"Content-Type": "application/octet-stream"}, data.getvalue())
        assert fetch(request(api.base + "/book.xlsx", "xlsx")) == [
            {"month": "Jan", "sales": 120, "when": None},
            {"month": "Feb", "sales": 80.5, "when": "late"},
        ]

    def test_a_workbook_that_unpacks_to_too_much_is_refused_before_it_is_read(self, api, monkeypatch):
        workbook = openpyxl.Workbook()
        workbook.active.append(["text"])
        workbook.active.append(["x" * 50_000])  # compresses to almost nothing
        data = io.BytesIO()
        workbook.save(data)
        monkeypatch.setattr(fetch_module, "MAX_XLSX_UNPACKED", 40_000)
        api.answer = lambda seen: (200, {}, data.getvalue())
        with pytest.raises(FetchError, match="unpacks to more than"):
            fetch(request(api.base + "/book.xlsx", "xlsx"))

    def test_a_workbook_whose_text_cells_unpack_to_too_much_is_refused_before_it_is_read(
        self, api, monkeypatch
    ):
        strings = b"<sst>" + b"<si><t>x</t></si>" * 3_000 + b"</sst>"  # 51 KB, compressed to almost nothing
        data = _workbook_with({"xl/sharedStrings.xml": strings})
        monkeypatch.setattr(fetch_module, "MAX_XLSX_SHARED_STRINGS", 40_000)
        api.answer = lambda seen: (200, {}, data)
        with pytest.raises(FetchError, match=r"^The workbook's text cells unpack to more than 16 MB\.$"):
            fetch(request(api.base + "/book.xlsx", "xlsx"))

    def test_a_sheet_that_claims_every_cell_is_read_no_further_than_its_lines_allow(self, api):
        # A few kilobytes: a header, then one value in the sheet's last row, under a <dimension>
        # of A1:XFD1048576. Read as the sheet claims, that is a million blank rows of 16,384 cells.
        sheet = (
            b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            b'<dimension ref="A1:XFD1048576"/><sheetData>'
            b'<row r="1"><c r="A1" t="inlineStr"><is><t>a</t></is></c></row>'
            b'<row r="1048576"><c r="A1048576" t="n"><v>1</v></c></row>'
            b"</sheetData></worksheet>"
        )
        api.answer = lambda seen: (200, {}, _workbook_with({"xl/worksheets/sheet1.xml": sheet}))
        with pytest.raises(
            FetchError, match=r"^The sheet has more than 100,000 lines, blank ones included\.$"
        ):
            fetch(request(api.base + "/book.xlsx", "xlsx"))

    @pytest.mark.parametrize("records", [None, "items"])
    def test_json_nested_deeper_than_any_parser_goes_is_a_fetch_error(self, api, records):
        api.answer = lambda seen: (200, {"Content-Type": "application/json"}, b"[" * 100_000)
        with pytest.raises(FetchError, match=r"^The JSON is nested too deeply\.$"):
            fetch(request(api.base + "/rows", records=records))

    def test_a_file_that_is_not_a_workbook_is_a_fetch_error(self, api):
        api.answer = lambda seen: (200, {}, b"month,sales\nJan,1\n")
        with pytest.raises(FetchError, match=r"^The file is not an xlsx workbook\.$"):
            fetch(request(api.base + "/book.xlsx", "xlsx"))

    def test_an_html_page_where_json_was_expected_is_reported_plainly(self, api):
        api.answer = lambda seen: (200, {"Content-Type": "text/html"}, b"<!DOCTYPE html><p>Sign in</p>")
        with pytest.raises(FetchError, match=r"^The server's answer is not JSON\.$"):
            fetch(request(api.base + "/rows"))

    def test_a_json_answer_may_start_with_a_byte_order_mark(self, api):
        api.answer = lambda seen: (200, {}, b'\xef\xbb\xbf[{"a": 1}]')
        assert fetch(request(api.base + "/rows")) == [{"a": 1}]

    def test_records_select_the_array_of_records(self, api):
        api.answer = lambda seen: as_json({"data": {"items": [{"a": 1}, {"a": 2}]}, "total": 2})
        assert fetch(request(api.base + "/rows", records="data.items")) == [{"a": 1}, {"a": 2}]

    def test_records_may_reshape_the_records(self, api):
        api.answer = lambda seen: as_json({"items": [{"id": 1, "meta": {"n": "x"}}]})
        assert fetch(request(api.base + "/rows", records="items[].{id: id, n: meta.n}")) == [
            {"id": 1, "n": "x"}
        ]

    @pytest.mark.parametrize("records", ["total", "missing.path", "data"])
    def test_records_that_select_no_list_are_a_fetch_error(self, api, records):
        api.answer = lambda seen: as_json({"data": {"items": []}, "total": 2})
        with pytest.raises(FetchError, match=r"^The records expression selects no list of records\.$"):
            fetch(request(api.base + "/rows", records=records))

    def test_an_invalid_records_expression_is_a_fetch_error(self, api):
        api.answer = lambda seen: as_json({"data": []})
        with pytest.raises(FetchError, match="not valid JMESPath"):
            fetch(request(api.base + "/rows", records="data[?"))


class TestPagination:
    def test_link_header_pages_are_followed_until_there_is_no_next(self, api):
        def answer(seen: Seen) -> Answer:
            page = int(seen.query.get("page", ["1"])[0])
            link = {"Link": f'<{api.base}/rows?page={page + 1}>; rel="next", </rows?page=1>; rel="first"'}
            return as_json([{"page": page}], **(link if page < 3 else {}))

        api.answer = answer
        rows = fetch(
            request(
                api.base + "/rows",
                paginate={"type": "link_header"},
                auth={"type": "bearer", "token": "t-1234"},
            )
        )
        assert rows == [{"page": 1}, {"page": 2}, {"page": 3}]
        assert all(seen.headers["authorization"] == "Bearer t-1234" for seen in api.seen)

    def test_a_next_link_to_another_server_is_refused(self, api):
        api.answer = lambda seen: as_json(
            [{"a": 1}], Link='<https://elsewhere.example/rows?page=2>; rel="next"'
        )
        with pytest.raises(FetchError, match="another server"):
            fetch(request(api.base + "/rows", paginate={"type": "link_header"}))
        assert len(api.seen) == 1

    def test_page_param_counts_pages_until_an_empty_one(self, api):
        def answer(seen: Seen) -> Answer:
            page = int(seen.query["p"][0])
            return as_json({"items": [{"page": page}] if page <= 2 else []})

        api.answer = answer
        rows = fetch(
            request(
                api.base + "/rows?p=9&x=1",
                records="items",
                paginate={"type": "page_param", "param": "p", "max_pages": 10},
            )
        )
        assert rows == [{"page": 1}, {"page": 2}]
        assert [seen.query for seen in api.seen] == [{"p": [str(n)], "x": ["1"]} for n in (1, 2, 3)]

    def test_page_param_stops_at_max_pages(self, api):
        api.answer = lambda seen: as_json([{"page": int(seen.query["page"][0])}])
        rows = fetch(
            request(api.base + "/rows", paginate={"type": "page_param", "param": "page", "max_pages": 4})
        )
        assert [r["page"] for r in rows] == [1, 2, 3, 4]

    @pytest.mark.parametrize(
        "paginate", [{"type": "link_header"}, {"type": "page_param", "param": "page", "max_pages": 500}]
    )
    def test_never_more_than_twenty_pages_are_fetched(self, api, paginate):
        api.answer = lambda seen: as_json([{"a": 1}], Link='</rows?more=1>; rel="next"')
        assert len(fetch(request(api.base + "/rows", paginate=paginate))) == 20
        assert len(api.seen) == 20

    def test_the_size_cap_is_over_all_pages_together(self, api):
        page = json.dumps([{"text": "x" * 900}]).encode()
        api.answer = lambda seen: (200, {"Content-Type": "application/json"}, page)
        paginate = {"type": "page_param", "param": "page", "max_pages": 5}
        assert len(fetch(request(api.base + "/rows", paginate=paginate), max_bytes=5 * len(page))) == 5
        with pytest.raises(FetchError, match="larger than"):
            fetch(request(api.base + "/rows", paginate=paginate), max_bytes=3 * len(page))

    def test_the_deadline_is_over_all_pages_together(self, api):
        # Each page takes about 0.3 s: no page is slow, but four of them are over a 1 s deadline.
        def answer(seen: Seen) -> Answer:
            time.sleep(0.3)
            return as_json([{"a": 1}])

        api.answer = answer
        started = time.monotonic()
        with pytest.raises(FetchError, match=r"^timed out$"):
            fetch(
                request(
                    api.base + "/rows", paginate={"type": "page_param", "param": "page", "max_pages": 10}
                ),
                timeout=1.0,
            )
        assert time.monotonic() - started < 1.5

    def test_a_dripping_server_is_cut_off_at_the_deadline(self, api):
        api.answer = lambda seen: (200, {"drip": "1"}, b'[{"a": 1}]' * 10)
        started = time.monotonic()
        with pytest.raises(FetchError, match=r"^timed out$"):
            fetch(request(api.base + "/rows"), timeout=1.0)
        assert time.monotonic() - started < 1.6


class TestLinks:
    @pytest.mark.parametrize(
        ("link", "export"),
        [
            (
                "https://docs.google.com/spreadsheets/d/1AbC-d_9/edit#gid=42",
                "https://docs.google.com/spreadsheets/d/1AbC-d_9/export?format=csv&gid=42",
            ),
            (
                "https://docs.google.com/spreadsheets/d/1AbC/edit?usp=sharing",
                "https://docs.google.com/spreadsheets/d/1AbC/export?format=csv",
            ),
            (
                "https://docs.google.com/spreadsheets/d/1AbC/edit?gid=7#gid=7",
                "https://docs.google.com/spreadsheets/d/1AbC/export?format=csv&gid=7",
            ),
            (
                "https://docs.google.com/spreadsheets/d/e/2PACX-1vQx_9/pubhtml",
                "https://docs.google.com/spreadsheets/d/e/2PACX-1vQx_9/pub?output=csv",
            ),
            (
                "https://docs.google.com/spreadsheets/d/e/2PACX-1vQx_9/pubhtml?gid=5&single=true",
                "https://docs.google.com/spreadsheets/d/e/2PACX-1vQx_9/pub?output=csv&gid=5&single=true",
            ),
            (
                "https://docs.google.com/spreadsheets/d/e/2PACX-1vQx_9/pub?gid=5&single=true&output=html",
                "https://docs.google.com/spreadsheets/d/e/2PACX-1vQx_9/pub?output=csv&gid=5&single=true",
            ),
        ],
    )
    def test_a_google_sheets_sharing_link_becomes_its_csv_export(self, link, export):
        assert sheets_export_url(link) == export

    @pytest.mark.parametrize(
        "url",
        [
            "https://docs.google.com/spreadsheets/d/1AbC/export?format=csv&gid=0",
            "https://docs.google.com/spreadsheets/d/e/2PACX-1vQx_9/pub?gid=0&single=true&output=csv",
            "https://example.com/spreadsheets/d/1AbC/edit#gid=0",
            "https://docs.google.com.evil.example/spreadsheets/d/1AbC/edit",
        ],
    )
    def test_other_urls_are_left_alone(self, url):
        assert sheets_export_url(url) is None

    def test_a_next_link_is_found_among_others_and_made_absolute(self):
        header = '<https://a.example/x?page=1>; rel="prev", </x?page=3>; rel="next"'
        assert next_link(header, "https://a.example/x?page=2") == "https://a.example/x?page=3"
        assert next_link('<https://a.example/x>; rel="last"', "https://a.example/") is None


class TestRefreshingThroughTheWorker:
    """A stored source, its secrets sealed, refreshed by the worker for its client."""

    TOKEN = "tok-live-5f0c2a9e"

    def source(self, http, partner, api, **settings: Any) -> tuple[int, int]:
        client_id = make_client(http, partner, "active")
        properties = http.put(
            f"/api/1/clients/{client_id}/properties", json={"account": "a/b"}, headers=partner.headers
        )
        assert properties.status_code == 200, properties.text
        body = {
            "name": "Orders",
            "kind": "url",
            "url": api.base + "/accounts/{{client.prop.account}}/orders",
            "format": "json",
            "headers": {"X-Api-Key": self.TOKEN},
            "query": {"client": "{{client.id}}"},
            "records": "items",
            **settings,
        }
        created = http.post(f"/api/1/clients/{client_id}/datasources", json=body, headers=partner.headers)
        assert created.status_code == 201, created.text
        return client_id, created.json()["id"]

    def refresh(self, http, partner, worker, source_id: int) -> dict[str, Any]:
        queued = http.post(f"/api/1/datasources/{source_id}/refresh", headers=partner.headers)
        assert queued.status_code == 202, queued.text
        worker.run_once()
        return http.get(f"/api/1/datasources/{source_id}", headers=partner.headers).json()  # type: ignore[no-any-return]

    def test_the_worker_fetches_with_the_clients_values_and_the_opened_secret(
        self, http, partner, worker, api
    ):
        api.answer = lambda seen: as_json({"items": [{"n": 1}, {"n": 2}]})
        client_id, source_id = self.source(http, partner, api)
        stored = self.refresh(http, partner, worker, source_id)
        assert stored["last_error"] is None and stored["row_count"] == 2
        seen = api.seen[-1]
        assert seen.path == "/accounts/a%2Fb/orders"
        assert seen.query == {"client": [str(client_id)]}
        assert seen.headers["x-api-key"] == self.TOKEN

    def test_a_token_the_server_echoes_never_reaches_last_error(self, http, partner, worker, api):
        api.answer = lambda seen: as_json({"items": [{"ok": 1}]})
        _, source_id = self.source(http, partner, api)
        assert self.refresh(http, partner, worker, source_id)["row_count"] == 1
        # Now the server answers with the token it got as a column name of an unusable row.
        api.answer = lambda seen: as_json({"items": [{"key " + seen.headers["x-api-key"]: {"x": 1}}]})
        stored = self.refresh(http, partner, worker, source_id)
        assert stored["last_error"] and "*****" in stored["last_error"]
        assert self.TOKEN not in json.dumps(stored)
        assert stored["row_count"] == 1  # the last good rows stay

    def test_a_missing_property_fails_the_refresh_naming_it(self, http, partner, worker, api):
        api.answer = lambda seen: as_json({"items": []})
        client_id, source_id = self.source(http, partner, api)
        cleared = http.put(f"/api/1/clients/{client_id}/properties", json={}, headers=partner.headers)
        assert cleared.status_code == 200
        stored = self.refresh(http, partner, worker, source_id)
        assert stored["last_error"] == "The client has no property 'account'."
        assert api.seen == []
