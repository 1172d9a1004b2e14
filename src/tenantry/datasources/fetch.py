"""Load rows from a data source through the outgoing-request guard (`tenantry.outbound`), with a
total deadline and a size cap.

`fetch_source` takes everything a fetch needs (a `SourceRequest`, secrets opened) and dispatches:
a `url` source is fetched here (`fetch_url`), an `sql` source by `tenantry.datasources.sql`. A url
source may be CSV, JSON (its records picked by a JMESPath expression) or XLSX, asked for with GET
or POST, headers, a query, a body, basic or bearer auth, and over several pages; the deadline and
the size cap hold for the whole fetch, every page and redirect together. `fetch_rows` stays as
the plain case (one GET, CSV or JSON).

Every failure becomes a `FetchError` whose message a person can act on; it is what the data
source shows as `last_error`. No secret is ever in it: messages are written without them, and
whatever a server echoes back is masked by `fetch_source` all the same.

Parsed rows are made safe on the way in (`tenantry.text.scrub`): control characters other than
tab and line breaks, noncharacters and lone surrogates become U+FFFD, in column names too, so no
value can later break a page, an export or the database.
"""

from __future__ import annotations

import base64
import csv
import datetime
import io
import json
import math
import re
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urljoin

import httpx
import jmespath
import jmespath.exceptions
import openpyxl

from tenantry.datasources.records import RecordsTooCostly, check_records, search_records
from tenantry.outbound import (
    MAX_REDIRECTS,
    TIMED_OUT,
    TOO_MANY_REDIRECTS,
    Answer,
    BodyTooLarge,
    Guard,
    OutboundError,
)
from tenantry.text import csv_records, scrub, scrub_column_name

TIMEOUT_SECONDS = 10.0
MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 50_000
MAX_COLUMNS = 200

if TYPE_CHECKING:
    from tenantry.datasources.request import SourceRequest

Row = dict[str, Any]

# Whole numbers a 64-bit integer holds exactly (any of 18 digits), as a JSON source keeps them;
# more digits (an order or card number) stay text rather than lose digits in a float.
_INT = re.compile(r"-?\d{1,18}")
_LONG_INT = re.compile(r"-?\d{19,}")
_LEADING_ZERO = re.compile(r"-?0\d")
_FLOAT = re.compile(r"-?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?")


class FetchError(Exception):
    """A data source could not be loaded; the message says why."""


def fetch_source(
    request: SourceRequest,
    *,
    guard: Guard,
    timeout: float = TIMEOUT_SECONDS,
    max_bytes: int = MAX_BYTES,
) -> list[Row]:
    """Load the rows of a source, whatever its kind, within `timeout` seconds and `max_bytes` in
    total (all pages together). Every failure is a `FetchError` without any secret in it."""
    try:
        if request.kind == "url":
            return fetch_url(request, guard=guard, timeout=timeout, max_bytes=max_bytes)
        if request.kind == "sql":
            # Imported here: the SQL connector imports this module for FetchError and Row.
            from tenantry.datasources.sql import fetch_sql

            return fetch_sql(request, guard=guard, timeout=timeout)
    except httpx.InvalidURL:
        # A URL that only becomes unusable once its placeholders are filled in, or a next-page
        # link a server made up.
        raise FetchError("The URL is malformed.") from None
    except FetchError as exc:
        # The messages are written without secrets, but a server may echo one back (in a column
        # name, an error text); whatever the source, a secret never reaches `last_error`.
        message = redact(str(exc), secrets_of(request))
        if message != str(exc):
            raise FetchError(message) from None
        raise
    raise FetchError(f"A {request.kind} source cannot be fetched.")


def secrets_of(request: SourceRequest) -> list[str]:
    """Every secret a request carries, and the forms it is sent in (a basic credential in base64)."""
    found = list(request.headers.values())
    auth = request.auth or {}
    for key in ("password", "token"):
        if auth.get(key):
            found.append(auth[key])
    if auth.get("type") == "basic":
        found.append(_basic_credential(auth))
    if request.sql and request.sql.get("password"):
        found.append(str(request.sql["password"]))
    # Short values would blank out ordinary words of a message; a secret is not that short.
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def redact(message: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        message = message.replace(secret, "*****")
    return message


def fetch_url(
    request: SourceRequest,
    *,
    guard: Guard,
    timeout: float = TIMEOUT_SECONDS,
    max_bytes: int = MAX_BYTES,
) -> list[Row]:
    """A url source: placeholders filled in, the query merged into the URL, headers and auth
    added, then one page or several (`paginate`), all within one deadline and one size budget."""
    from tenantry.datasources.placeholders import expand

    if not request.url:
        raise FetchError("The source has no URL.")
    context = request.context
    url = expand(request.url, context, url=True)
    fmt = request.format or "csv"
    sheet = sheets_export_url(url)
    if sheet is not None:
        url, fmt = sheet, "csv"
    query = {name: expand(value, context) for name, value in request.query.items()}
    if query:
        url = str(httpx.URL(url).copy_merge_params(query))
    headers = {"Accept": _ACCEPT.get(fmt, "*/*")}
    body: bytes | None = None
    method = request.method.upper()
    if method == "POST" and request.body is not None:
        text = expand(request.body, context)
        body = text.encode()
        headers["Content-Type"] = _content_type(text)
    secret_headers = {}
    for name, value in request.headers.items():
        if not _HEADER_NAME.fullmatch(name):
            raise FetchError(f"{name!r} is not a valid header name.")
        secret_headers[name] = _header_value(name, expand(value, context))
    if request.auth:
        secret_headers["Authorization"] = _authorization(request.auth)

    budget = _Budget(time.monotonic() + timeout, max_bytes)
    paginate = request.paginate or {}
    kind = paginate.get("type")
    max_pages = min(int(paginate.get("max_pages") or MAX_PAGES), MAX_PAGES)
    rows: list[Row] = []
    page_url: str | None = url
    for number in range(1, (max_pages if kind else 1) + 1):
        if kind == "page_param":
            page_url = str(httpx.URL(url).copy_set_param(str(paginate.get("param") or "page"), str(number)))
        assert page_url is not None
        answer, final_url = _get(guard, method, page_url, headers, secret_headers, body, budget)
        page = parse_page(answer.body, fmt, request.records, deadline=budget.deadline)
        rows.extend(page)
        if len(rows) > MAX_ROWS:
            raise FetchError(f"The data has more than {MAX_ROWS:,} rows.")
        if kind == "page_param" and not page:
            break
        if kind == "link_header":
            page_url = next_link(answer.headers.get("link"), final_url)
            if page_url is None:
                break
            if _origin(page_url) != _origin(url):
                # The credentials were given for one server; another server's pages are not
                # asked for with them, nor without them (they would be someone else's data).
                raise FetchError(
                    "The next page is on another server; only links to the same server are followed."
                )
    return rows


MAX_PAGES = 20
_ACCEPT = {
    "csv": "text/csv, text/plain;q=0.5, */*;q=0.1",
    "json": "application/json, */*;q=0.1",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet, */*;q=0.1",
}
_SHEETS = re.compile(r"https://docs\.google\.com/spreadsheets/d/([A-Za-z0-9_-]+)(/[^?#]*)?(\?[^#]*)?(#.*)?")


@dataclass
class _Budget:
    """What is left of the whole fetch's deadline and size cap, over every page and redirect."""

    deadline: float
    max_bytes: int
    used: int = 0

    def seconds_left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise FetchError(TIMED_OUT)
        return left

    def bytes_left(self) -> int:
        # The guard reads no body at all when given 0; 1 lets it notice a body that is too large.
        return max(1, self.max_bytes - self.used)

    def take(self, size: int) -> None:
        self.used += size
        if self.used > self.max_bytes:
            raise FetchError(f"The data is larger than the {_megabytes(self.max_bytes)} limit.")


def _get(
    guard: Guard,
    method: str,
    url: str,
    headers: dict[str, str],
    secret_headers: dict[str, str],
    body: bytes | None,
    budget: _Budget,
) -> tuple[Answer, str]:
    """One page, following redirects here rather than in the guard, so that the credentials and
    secret headers are dropped when a redirect leads to another server (the guard checks each hop
    all the same). Returns the answer and the URL it came from."""
    origin = _origin(url)
    for _hop in range(MAX_REDIRECTS + 1):
        sent = dict(headers)
        if _origin(url) == origin:
            sent.update(secret_headers)
        try:
            answer = guard.request(
                method,
                url,
                headers=sent,
                content=body,
                deadline_seconds=budget.seconds_left(),
                max_bytes=budget.bytes_left(),
                follow_redirects=False,
            )
        except BodyTooLarge:
            raise FetchError(f"The data is larger than the {_megabytes(budget.max_bytes)} limit.") from None
        except OutboundError as exc:
            raise FetchError(exc.words) from None
        budget.take(len(answer.body))
        status = answer.status_code
        location = answer.headers.get("location")
        if status in (301, 302, 303, 307, 308) and location:
            url = urljoin(url, location)
            if status not in (307, 308) and method != "GET":
                # As browsers do: the body is not sent again, nor what described it.
                method, body = "GET", None
                headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
            continue
        if status in (401, 403):
            raise FetchError(f"The server refused the credentials (HTTP {status}).")
        if status >= 300:
            raise FetchError(f"HTTP {status}")
        return answer, url
    raise FetchError(TOO_MANY_REDIRECTS)


def _megabytes(size: int) -> str:
    return f"{size // (1024 * 1024)} MB" if size >= 1024 * 1024 else f"{size:,} bytes"


def _origin(url: str) -> tuple[str, str, int | None]:
    parsed = httpx.URL(url)
    return parsed.scheme, parsed.host, parsed.port


def _content_type(body: str) -> str:
    try:
        json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
        return "text/plain; charset=utf-8"
    return "application/json"


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")


def _header_value(name: str, value: str, *, named: bool = True) -> str:
    """A header value as it can be sent: one line of ASCII (HTTP has no other safe encoding, and a
    line break would start another header). The message names the header, never the value."""
    what = f"The header {name}" if named else name
    if any(c in value for c in "\r\n\0"):
        raise FetchError(f"{what} has a line break once its placeholders are filled in.")
    if not value.isascii():
        raise FetchError(f"{what} may only hold ASCII characters once its placeholders are filled in.")
    return value


def _basic_credential(auth: Mapping[str, str]) -> str:
    pair = f"{auth.get('username', '')}:{auth.get('password', '')}"
    return base64.b64encode(pair.encode()).decode()


def _authorization(auth: Mapping[str, str]) -> str:
    if auth.get("type") == "basic":
        return f"Basic {_basic_credential(auth)}"
    if auth.get("type") == "bearer":
        return f"Bearer {_header_value('The bearer token', auth.get('token', ''), named=False)}"
    raise FetchError("The authentication type is not known.")


def sheets_export_url(url: str) -> str | None:
    """The CSV export address of a Google Sheets sharing link (`.../d/<id>/edit#gid=<g>`) or
    "published to the web" link (`.../d/e/<published id>/pubhtml`), or None for any other URL (an
    export link itself is left as it is)."""
    match = _SHEETS.fullmatch(url)
    if match is None:
        return None
    path = match.group(2) or ""
    gid = None
    for part in ((match.group(4) or "")[1:], (match.group(3) or "")[1:]):
        found = re.search(r"(?:^|[&?])gid=(\d+)", part)
        if found:
            gid = found.group(1)
            break
    if match.group(1) == "e":
        # A published sheet has its own id, after /d/e/, and its CSV is at .../pub?output=csv.
        published = re.fullmatch(r"/([A-Za-z0-9_-]+)(/[^?#]*)?", path)
        if published is None:
            return None
        if (published.group(2) or "") == "/pub" and re.search(
            r"(?:^|&)output=csv(?:&|$)", (match.group(3) or "")[1:]
        ):
            return None
        export = f"https://docs.google.com/spreadsheets/d/e/{published.group(1)}/pub?output=csv"
        return export + (f"&gid={gid}&single=true" if gid else "")
    if path.startswith("/export") or path.startswith("/gviz"):
        return None
    export = f"https://docs.google.com/spreadsheets/d/{match.group(1)}/export?format=csv"
    return export + (f"&gid={gid}" if gid else "")


def next_link(header: str | None, base: str) -> str | None:
    """The `rel="next"` target of a `Link` header, made absolute, or None."""
    if not header:
        return None
    for part in _LINK.finditer(header):
        target, params = part.group(1), part.group(2)
        for rel in re.finditer(r'rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))', params, re.IGNORECASE):
            if "next" in (rel.group(1) or rel.group(2) or "").lower().split():
                try:
                    return urljoin(base, target.strip())
                except ValueError:  # a link no URL parser reads (`http://[::1/x`)
                    raise FetchError("The URL is malformed.") from None
    return None


_LINK = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]+)*)")


def parse_page(
    body: bytes, fmt: str, records: str | None = None, *, deadline: float | None = None
) -> list[Row]:
    """One answer's rows: CSV, XLSX, or JSON (optionally through a JMESPath `records`). A
    workbook is read within the fetch's `deadline` (a `time.monotonic()` value): its parsing is
    the one that can take long out of a few megabytes; CSV and JSON parse in a moment."""
    if fmt == "xlsx":
        return parse_xlsx(body, deadline=deadline)
    if fmt == "json" and records:
        return parse_json_records(body, records)
    if fmt == "json":
        _require_json(body)
    return parse(body, fmt)


def _require_json(body: bytes) -> None:
    start = body.removeprefix(b"\xef\xbb\xbf").lstrip()[:1]
    if start and start not in b'[{"-0123456789tfn':
        # Usually an HTML error or sign-in page: say so, rather than quote a parser.
        raise FetchError("The server's answer is not JSON.")


def parse_json_records(body: bytes, records: str) -> list[Row]:
    _require_json(body)
    try:
        document = json.loads(body.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise FetchError("The data is not UTF-8 text.") from None
    except ValueError as exc:
        raise FetchError(f"The JSON is malformed: {exc}.") from None
    except RecursionError:
        raise FetchError(TOO_DEEP) from None
    # Checked again here: an expression stored before the check was made may build, not select.
    refused = check_records(records)
    if refused is not None:
        raise FetchError(refused)
    try:
        selected = search_records(records, document)
    except jmespath.exceptions.JMESPathError:
        raise FetchError("The records expression is not valid JMESPath.") from None
    except RecordsTooCostly as exc:
        raise FetchError(str(exc)) from None
    except RecursionError:
        raise FetchError(TOO_DEEP) from None
    if not isinstance(selected, list):
        raise FetchError("The records expression selects no list of records.")
    return _checked(selected)


# An xlsx file is a zip archive; what it unpacks to is capped, so that a small file cannot
# expand into gigabytes. openpyxl reads the shared strings whole, even in read-only mode, before
# the first row: 16 MB of the tiniest strings (a million of them) take about 5 s to read.
MAX_XLSX_UNPACKED = 100 * 1024 * 1024
MAX_XLSX_SHARED_STRINGS = 16 * 1024 * 1024
# The lines of a sheet read at most, blank ones included: a sheet whose <dimension> claims a
# million rows is padded with blank ones up to the last, which cost as much as any.
MAX_XLSX_LINES = 2 * MAX_ROWS
# openpyxl reads the workbook through `_Timed`, which stops it at the fetch's deadline, but a row
# it reads whole before handing it over, every element in it, however many: a few megabytes of
# tiny cells in one row keep it busy for far longer than a deadline. So the sheets are scanned
# first, and a row with more XML elements than this is refused before openpyxl starts (Excel's
# 16,384 columns, each a cell with its value).
MAX_XLSX_ROW_ELEMENTS = 4 * 16_384
# A row's tag is found by its name (a fast search), then checked back to its "<" (with a prefix,
# as in <x:row>, of at most 64 characters).
_XLSX_ROW_NAME = re.compile(rb"row[\s/>]")
_XLSX_ROW_OPENING = re.compile(rb"<(/?)(?:[A-Za-z_][\w.-]{0,62}:)?")
_XLSX_CHUNK = 1024 * 1024


def parse_xlsx(body: bytes, *, deadline: float | None = None) -> list[Row]:
    """The first sheet of a workbook; its first row names the columns. Past `deadline` (a
    `time.monotonic()` value) the reading stops with the fetch's own "timed out"."""
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            if sum(info.file_size for info in archive.infolist()) > MAX_XLSX_UNPACKED:
                raise FetchError("The workbook unpacks to more than 100 MB.")
            strings = sum(
                i.file_size for i in archive.infolist() if i.filename.lower().endswith("sharedstrings.xml")
            )
            if strings > MAX_XLSX_SHARED_STRINGS:
                raise FetchError("The workbook's text cells unpack to more than 16 MB.")
            _scan_xlsx(archive, deadline)
        workbook = openpyxl.load_workbook(_Timed(body, deadline), read_only=True, data_only=True)
    except FetchError:
        raise
    except Exception:
        # openpyxl fails in many ways on a file that is not a workbook (zip, XML, key errors).
        raise FetchError("The file is not an xlsx workbook.") from None
    try:
        if not workbook.worksheets:
            raise FetchError("The workbook has no sheet.")
        # At most one column past the last a header may name: enough to tell a value beyond it,
        # never the 16,384 a padded row of a sheet's claimed <dimension> would hold.
        lines = workbook.worksheets[0].iter_rows(values_only=True, max_col=MAX_COLUMNS + 1)
        try:
            return _xlsx_rows(lines, deadline)
        except FetchError:
            raise
        except Exception:
            raise FetchError("The file is not an xlsx workbook.") from None
    finally:
        workbook.close()


class _Timed(io.BytesIO):
    """The workbook's bytes, which refuse to be read past the deadline: openpyxl reads every part
    through them as it goes, so its long readings (a sheet's, its shared strings') stop there
    too, within a chunk of the zip archive."""

    def __init__(self, body: bytes, deadline: float | None) -> None:
        super().__init__(body)
        self.deadline = deadline

    def read(self, size: int | None = -1, /) -> bytes:
        _check_deadline(self.deadline)
        return super().read(size)


def _check_deadline(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() >= deadline:
        raise FetchError(TIMED_OUT)


def _scan_xlsx(archive: zipfile.ZipFile, deadline: float | None) -> None:
    """Refuse a workbook with a row openpyxl could not read within bounds (MAX_XLSX_ROW_ELEMENTS):
    every part is unpacked in chunks and the start tags within each <row> counted at the speed of
    bytes.count; only the row tags themselves are visited one by one. The shared strings are left
    out: they hold no row, and are capped by their size."""
    for info in archive.infolist():
        if info.filename.lower().endswith("sharedstrings.xml"):
            continue
        with archive.open(info) as part:
            depth, row = 0, 0
            for data in _xml_pieces(part):
                _check_deadline(deadline)
                at = 0
                for begin, closing, empty in _row_tags(data):
                    if depth:
                        row += _start_tags(data, at, begin)
                        _check_row(row)
                    # openpyxl hands over the outermost row with everything in it, rows nested in
                    # it included: they all count towards it, so nesting cannot hide a long row.
                    if closing:
                        depth = max(0, depth - 1)
                    elif not empty:
                        depth += 1
                    row = row if depth else 0
                    at = begin
                if depth:
                    row += _start_tags(data, at, len(data))
                    _check_row(row)


def _row_tags(data: bytes) -> Iterator[tuple[int, bool, bool]]:
    """Where each <row> start or end tag of `data` begins; whether it ends a row; whether it is
    an empty one (<row r="3"/>)."""
    for name in _XLSX_ROW_NAME.finditer(data):
        begin = data.rfind(b"<", max(0, name.start() - 64), name.start())
        tag = _XLSX_ROW_OPENING.fullmatch(data, begin, name.start()) if begin >= 0 else None
        if tag is None:
            continue  # "row" in a text, a value or a longer name
        closing = bool(tag.group(1))
        end = data.find(b">", name.end() - 1)
        yield begin, closing, not closing and end > 0 and data[end - 1 : end] == b"/"


def _xml_pieces(part: IO[bytes]) -> Iterator[bytes]:
    """`part` in chunks, each cut before a tag begun at its very end (the next piece has it whole)."""
    tail = b""
    while chunk := part.read(_XLSX_CHUNK):
        data = tail + chunk
        cut = data.rfind(b"<", max(0, len(data) - 256))
        cut = len(data) if cut == -1 else cut
        yield data[:cut]
        tail = data[cut:]
    yield tail


def _start_tags(data: bytes, start: int, end: int) -> int:
    # Comments and processing instructions count too: no sheet has many, so it errs on the safe side.
    return data.count(b"<", start, end) - data.count(b"</", start, end)


def _check_row(elements: int) -> None:
    if elements > MAX_XLSX_ROW_ELEMENTS:
        raise FetchError(f"A sheet row has more than {MAX_XLSX_ROW_ELEMENTS:,} XML elements.")


def _xlsx_rows(lines: Iterator[tuple[Any, ...]], deadline: float | None = None) -> list[Row]:
    _check_deadline(deadline)
    header_cells = next(lines, None)
    names = [str(c).strip() if c is not None else "" for c in (header_cells or ())]
    while names and names[-1] == "":
        names.pop()
    if not names:
        raise FetchError("The sheet has no header row.")
    if len(names) > MAX_COLUMNS:
        raise FetchError(f"The sheet has more than {MAX_COLUMNS} columns.")
    header = [scrub_column_name(n) for n in names]
    if len(set(header)) != len(header) or "" in header:
        raise FetchError("The sheet's header has an empty or repeated column name.")
    rows: list[Row] = []
    for number, line in enumerate(lines, start=2):
        _check_deadline(deadline)
        if number > MAX_XLSX_LINES:
            raise FetchError(f"The sheet has more than {MAX_XLSX_LINES:,} lines, blank ones included.")
        if all(v is None or v == "" for v in line):
            continue
        if any(v is not None for v in line[len(header) :]):
            raise FetchError(f"Sheet row {number} has a value beyond the last named column.")
        values = list(line[: len(header)]) + [None] * (len(header) - len(line))
        rows.append({h: _xlsx_value(v) for h, v in zip(header, values, strict=True)})
        if len(rows) > MAX_ROWS:
            raise FetchError(f"The data has more than {MAX_ROWS:,} rows.")
    _check_deadline(deadline)  # reading on past the last row (merged cells, links) takes time too
    return rows


def _xlsx_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    return scrub(str(value))


def fetch_rows(
    url: str,
    fmt: str,
    *,
    guard: Guard,
    timeout: float = TIMEOUT_SECONDS,
    max_bytes: int = MAX_BYTES,
) -> list[Row]:
    """Download through the outgoing-request guard (`timeout` is the total, whatever the server
    drips) and parse. Network failures read as the guard's fixed words (`could not connect`,
    `timed out`, `address not allowed`, `HTTP 503`)."""
    try:
        answer = guard.request(
            "GET",
            url,
            headers={"Accept": "text/csv, application/json"},
            deadline_seconds=timeout,
            max_bytes=max_bytes,
            follow_redirects=True,
        )
    except BodyTooLarge:
        raise FetchError(f"The data is larger than the {max_bytes // (1024 * 1024)} MB limit.") from None
    except OutboundError as exc:
        raise FetchError(exc.words) from None
    if answer.status_code >= 400:
        raise FetchError(f"HTTP {answer.status_code}")
    if 300 <= answer.status_code < 400:
        raise FetchError(f"HTTP {answer.status_code}")  # a redirect without a usable Location
    return parse(answer.body, fmt)


def parse(body: bytes, fmt: str) -> list[Row]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FetchError("The data is not UTF-8 text.") from None
    rows = parse_csv(text) if fmt == "csv" else parse_json(text)
    if len(rows) > MAX_ROWS:
        raise FetchError(f"The data has {len(rows):,} rows; at most {MAX_ROWS:,} are kept.")
    return rows


def cell(value: str) -> Any:
    """A CSV cell as the number it spells, or the (scrubbed) text itself; an empty cell is null.

    A number too large for a float (`1e999`) stays text: infinity is not valid JSON; so does a
    whole number of more than 18 digits, which a float would hold with other digits, and one
    written with leading zeros (`00123`, a postcode or an account number: as a number it would
    lose them)."""
    stripped = value.strip()
    if stripped == "":
        return None
    if _LEADING_ZERO.match(stripped):
        return scrub(value)
    if _INT.fullmatch(stripped):
        return int(stripped)
    if _FLOAT.fullmatch(stripped) and not _LONG_INT.fullmatch(stripped):
        number = float(stripped)
        if math.isfinite(number):
            return number
    return scrub(value)


def parse_csv(text: str) -> list[Row]:
    records = csv_records(text)
    try:
        _, header = next(records, (1, []))
        if not any(h.strip() for h in header):
            raise FetchError("The CSV has no header row.")
        header = [scrub_column_name(h.strip()) for h in header]
        if len(set(header)) != len(header) or "" in header:
            raise FetchError("The CSV header has an empty or repeated column name.")
        if len(header) > MAX_COLUMNS:
            raise FetchError(f"The CSV has more than {MAX_COLUMNS} columns.")
        rows = []
        for number, line in records:
            if len(line) != len(header):
                raise FetchError(f"CSV line {number} has {len(line)} fields; the header has {len(header)}.")
            rows.append({h: cell(v) for h, v in zip(header, line, strict=True)})
            if len(rows) > MAX_ROWS:
                raise FetchError(f"The data has more than {MAX_ROWS:,} rows.")
    except csv.Error as exc:
        raise FetchError(f"The CSV is malformed: {exc}.") from None
    return rows


def parse_json(text: str) -> list[Row]:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise FetchError(f"The JSON is malformed: {exc}.") from None
    except RecursionError:
        raise FetchError(TOO_DEEP) from None
    if isinstance(document, dict):
        document = document.get("rows", document.get("data"))
    if not isinstance(document, list):
        raise FetchError('The JSON must be a list of objects, or an object with a "rows" list.')
    return _checked(document)


# JSON nested deeper than Python's parser (or a walk over it) can go: an answer like any other bad
# one, not an exception that escapes the fetch (a RecursionError is no ValueError).
TOO_DEEP = "The JSON is nested too deeply."


def _checked(rows: list[Any]) -> list[Row]:
    try:
        return check_rows(rows)
    except RecursionError:
        raise FetchError(TOO_DEEP) from None


def check_rows(rows: list[Any]) -> list[Row]:
    """Rows must be flat objects of plain values (text, numbers, booleans, null). Returns them
    scrubbed: text values and column names with unsafe characters replaced by U+FFFD."""
    if len(rows) > MAX_ROWS:
        raise FetchError(f"The data has {len(rows):,} rows; at most {MAX_ROWS:,} are kept.")
    checked: list[Row] = []
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise FetchError(f"Row {number} is not an object.")
        if len(row) > MAX_COLUMNS:
            raise FetchError(f"Row {number} has more than {MAX_COLUMNS} columns.")
        clean: Row = {}
        for column, value in row.items():
            name = scrub_column_name(column)
            if not isinstance(value, str | int | float | bool) and value is not None:
                raise FetchError(f"Row {number}, column {name!r} is not a plain value.")
            if isinstance(value, float) and not math.isfinite(value):
                raise FetchError(f"Row {number}, column {name!r} is not a finite number.")
            if name in clean:
                raise FetchError(f"Row {number} has two columns named {name!r} once made safe.")
            clean[name] = scrub(value) if isinstance(value, str) else value
        checked.append(clean)
    return checked
