"""Load rows from a `url` data source: CSV or JSON over HTTP(S), with a timeout and a size cap.

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
from typing import Any

import httpx

from tenantry.text import scrub, scrub_column_name
from tenantry.tls import tls_context

TIMEOUT_SECONDS = 10.0
MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 50_000
MAX_COLUMNS = 200

Row = dict[str, Any]

_INT = re.compile(r"-?\d{1,15}")
_FLOAT = re.compile(r"-?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?")


class FetchError(Exception):
    """A data source could not be loaded; the message says why."""


def fetch_rows(
    url: str,
    fmt: str,
    *,
    timeout: float = TIMEOUT_SECONDS,
    max_bytes: int = MAX_BYTES,
    transport: httpx.BaseTransport | None = None,
) -> list[Row]:
    body = _download(url, timeout=timeout, max_bytes=max_bytes, transport=transport)
    return parse(body, fmt)


def _download(url: str, *, timeout: float, max_bytes: int, transport: httpx.BaseTransport | None) -> bytes:
    try:
        with (
            httpx.Client(
                timeout=timeout,
                follow_redirects=True,
                max_redirects=3,
                transport=transport,
                verify=tls_context(),
            ) as http,
            http.stream("GET", url, headers={"Accept": "text/csv, application/json"}) as response,
        ):
            if response.status_code >= 400:
                raise FetchError(f"The server answered HTTP {response.status_code}.")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(f"The data is larger than the {max_bytes // (1024 * 1024)} MB limit.")
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(f"The data is larger than the {max_bytes // (1024 * 1024)} MB limit.")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.TimeoutException:
        raise FetchError(f"The server did not answer within {timeout:g} seconds.") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"The server could not be reached: {exc}.") from None


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
