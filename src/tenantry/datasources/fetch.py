"""Load rows from a `url` data source: CSV or JSON over HTTP(S), through the outgoing-request
guard (`tenantry.outbound`), with a total deadline and a size cap.

Every failure becomes a `FetchError` whose message a person can act on; it is what the data
source shows as `last_error`.

Parsed rows are made safe on the way in (`tenantry.text.scrub`): control characters other than
tab and line breaks, noncharacters and lone surrogates become U+FFFD, in column names too, so no
value can later break a page, an export or the database.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from typing import TYPE_CHECKING, Any

from tenantry.outbound import BodyTooLarge, Guard, OutboundError
from tenantry.text import scrub, scrub_column_name

TIMEOUT_SECONDS = 10.0
MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 50_000
MAX_COLUMNS = 200

if TYPE_CHECKING:
    from tenantry.datasources.request import SourceRequest

Row = dict[str, Any]

_INT = re.compile(r"-?\d{1,15}")
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
    raise NotImplementedError


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

    A number too large for a float (`1e999`) stays text: infinity is not valid JSON."""
    stripped = value.strip()
    if stripped == "":
        return None
    if _INT.fullmatch(stripped):
        return int(stripped)
    if _FLOAT.fullmatch(stripped):
        number = float(stripped)
        if math.isfinite(number):
            return number
    return scrub(value)


def parse_csv(text: str) -> list[Row]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise FetchError("The CSV has no header row.")
        header = [scrub_column_name(h.strip()) for h in header]
        if len(set(header)) != len(header) or "" in header:
            raise FetchError("The CSV header has an empty or repeated column name.")
        if len(header) > MAX_COLUMNS:
            raise FetchError(f"The CSV has more than {MAX_COLUMNS} columns.")
        rows = []
        for line in reader:
            if not line:
                continue
            if len(line) != len(header):
                raise FetchError(
                    f"CSV line {reader.line_num} has {len(line)} fields; the header has {len(header)}."
                )
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
    if isinstance(document, dict):
        document = document.get("rows", document.get("data"))
    if not isinstance(document, list):
        raise FetchError('The JSON must be a list of objects, or an object with a "rows" list.')
    return check_rows(document)


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
