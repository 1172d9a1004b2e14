"""A workbook is read within the fetch's deadline (SPEC §12: deadlines are totals): a row with
more elements than any sheet holds is refused before it is read, and past the deadline the
reading stops with the fetch's own "timed out"."""

from __future__ import annotations

import io
import time
import zipfile

import openpyxl
import pytest

from tenantry.datasources.fetch import FetchError, fetch_source, parse_xlsx
from tenantry.datasources.request import SourceRequest
from tenantry.outbound import AllowList, Guard
from tests.servers import DataServer

LOOPBACK = Guard(AllowList.parse("127.0.0.1"))
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADER_ROW = b'<row><c t="inlineStr"><is><t>a</t></is></c></row>'


def workbook_with_rows(rows: bytes) -> bytes:
    """A workbook of one sheet: a header "a", then `rows` (the XML of <sheetData> after it)."""
    book = openpyxl.Workbook()
    book.active.append(["a"])
    plain = io.BytesIO()
    book.save(plain)
    source = zipfile.ZipFile(io.BytesIO(plain.getvalue()))
    sheet = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        + HEADER_ROW
        + rows
        + b"</sheetData></worksheet>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for info in source.infolist():
            data = sheet if info.filename == "xl/worksheets/sheet1.xml" else source.read(info.filename)
            archive.writestr(info.filename, data)
    return out.getvalue()


def fetch(data_server: DataServer, body: bytes) -> list[dict[str, object]]:
    url = data_server.serve("/book.xlsx", body, XLSX)
    return fetch_source(SourceRequest(kind="url", url=url, format="xlsx"), guard=LOOPBACK)


ROW_REFUSED = r"^A sheet row has more than 65,536 XML elements\.$"


class TestARowLongerThanAnySheetHolds:
    def test_a_small_file_with_a_row_of_two_million_cells_is_refused_with_its_error(self, data_server):
        cell = b'<c t="n"><v>1</v></c>'
        body = workbook_with_rows(b"<row>" + cell * 2_200_000 + b"</row>")  # 47 MB unpacked
        assert len(body) < 200_000
        with pytest.raises(FetchError, match=ROW_REFUSED):
            fetch(data_server, body)

    def test_rows_nested_in_a_row_count_towards_it(self, data_server):
        # openpyxl hands over the outer row with every cell in it; each inner row is short.
        inner = (b"<row/>" + b"<c/>" * 30_000) * 3
        with pytest.raises(FetchError, match=ROW_REFUSED):
            fetch(data_server, workbook_with_rows(b"<row>" + inner + b"</row>"))

    def test_a_row_with_blank_formatted_cells_far_past_its_values_is_still_read(self, data_server):
        row = b'<row><c t="n"><v>7</v></c>' + b'<c s="0"/>' * 2_000 + b"</row>"
        assert fetch(data_server, workbook_with_rows(row)) == [{"a": 7}]


class TestReadingPastTheDeadline:
    def test_a_workbook_read_after_its_deadline_has_passed_is_refused_as_timed_out(self):
        body = workbook_with_rows(b'<row><c t="n"><v>1</v></c></row>')
        assert parse_xlsx(body, deadline=time.monotonic() + 60) == [{"a": 1}]
        with pytest.raises(FetchError, match=r"^timed out$"):
            parse_xlsx(body, deadline=time.monotonic() - 1)
