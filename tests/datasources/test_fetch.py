"""Loading a url data source from a real HTTP server on loopback, and every way it can fail."""

from __future__ import annotations

import pytest

from tenantry.datasources.fetch import FetchError, parse
from tenantry.datasources.fetch import fetch_rows as guarded_fetch
from tenantry.outbound import AllowList, Guard

# The data server listens on 127.0.0.1, which only an allow-list opens.
LOOPBACK = Guard(AllowList.parse("127.0.0.1"))


def fetch_rows(url, fmt, **options):
    return guarded_fetch(url, fmt, guard=LOOPBACK, **options)


class TestFetchingRows:
    def test_csv_rows_come_back_with_numbers_as_numbers(self, data_server):
        url = data_server.serve("/sales.csv", "month,sales,note\nJan,120,\nFeb,80.5,late\n")
        assert fetch_rows(url, "csv") == [
            {"month": "Jan", "sales": 120, "note": None},
            {"month": "Feb", "sales": 80.5, "note": "late"},
        ]

    def test_json_rows_may_be_a_list_or_an_object_with_rows(self, data_server):
        plain = data_server.serve("/a.json", '[{"a": 1}]', "application/json")
        wrapped = data_server.serve("/b.json", '{"rows": [{"a": 2}]}', "application/json")
        assert fetch_rows(plain, "json") == [{"a": 1}]
        assert fetch_rows(wrapped, "json") == [{"a": 2}]

    def test_an_http_error_is_reported_with_its_status(self, data_server):
        url = data_server.serve("/gone.csv", "nope", status=503)
        with pytest.raises(FetchError, match=r"^HTTP 503$"):
            fetch_rows(url, "csv")

    def test_a_body_over_the_size_cap_is_refused(self, data_server):
        url = data_server.serve("/big.csv", "a\n" + "1\n" * 2000)
        with pytest.raises(FetchError, match="larger than"):
            fetch_rows(url, "csv", max_bytes=1024)

    def test_a_server_that_does_not_answer_times_out(self, data_server):
        with pytest.raises(FetchError, match=r"^timed out$"):
            fetch_rows(data_server.base + "/stall", "csv", timeout=0.2)

    def test_an_unreachable_server_is_reported(self):
        with pytest.raises(FetchError, match=r"^could not connect$"):
            fetch_rows("http://127.0.0.1:9/x.csv", "csv", timeout=1)


class TestBadContent:
    @pytest.mark.parametrize(
        ("body", "fmt", "message"),
        [
            (b"", "csv", "no header row"),
            (b"a,a\n1,2\n", "csv", "repeated column"),
            (b"a,b\n1,2,3\n", "csv", "line 2 has 3 fields"),
            # A record is named by the line it starts on, past quoted line breaks and blank lines.
            (b'a,b\n"x\ny",1\n\n1,2,3\n', "csv", "line 5 has 3 fields"),
            (b'a,b\n1,2\n"two\nlines",2,3\n', "csv", "line 3 has 3 fields"),
            (b"\n\n", "csv", "no header row"),
            # An open quote would swallow every line after it into one cell.
            (b'a,b\n1,"x\n2,y\n3,z\n', "csv", "a quoted cell on line 2 is never closed"),
            (b"\xff\xfe\x00", "csv", "not UTF-8"),
            (b"{not json", "json", "JSON is malformed"),
            (b'"text"', "json", "list of objects"),
            (b"[1, 2]", "json", "Row 1 is not an object"),
            (b'[{"a": {"b": 1}}]', "json", "not a plain value"),
            (b'[{"a": NaN}]', "json", "not a finite number"),
        ],
    )
    def test_bad_content_gets_a_clear_error(self, body, fmt, message):
        with pytest.raises(FetchError, match=message):
            parse(body, fmt)

    def test_a_line_read_leniently_is_read_so_with_or_without_blank_lines_after_it(self):
        # `"x" y` is the cell `x y` to Python's reader; an editor's blank line at the end must not
        # make it a quote never closed.
        assert parse(b'a,b\n"x" y,1\n', "csv") == [{"a": "x y", "b": 1}]
        assert parse(b'a,b\n"x" y,1\n\n', "csv") == [{"a": "x y", "b": 1}]

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (b'a\n1\n"2\n', "a quoted cell on line 3 is never closed"),
            (b'a,b\n"x,1\ny,2\n"z",3\nw,4\n', "a quoted cell on line 2 runs over several lines"),
        ],
    )
    def test_a_stray_quote_is_refused_rather_than_swallowing_the_lines_after_it(self, body, message):
        with pytest.raises(FetchError, match=message):
            parse(body, "csv")

    def test_blank_lines_before_the_header_and_between_rows_are_left_out(self):
        assert parse(b'\na,b\n\n1,"two\nlines"\n\n', "csv") == [{"a": 1, "b": "two\nlines"}]

    @pytest.mark.parametrize(
        ("cell", "kept"),
        [
            ("12345678901234567", 12345678901234567),  # 17 digits: exact, as a JSON source keeps it
            ("-999999999999999999", -999999999999999999),  # 18 digits
            ("1234567890123456789", "1234567890123456789"),  # 19: text rather than other digits
            ("12345678901234567890.5", 1.2345678901234567e19),  # a decimal is a float, as before
        ],
    )
    def test_a_whole_number_keeps_its_digits_or_stays_text(self, cell: str, kept: object) -> None:
        assert parse(f"id\n{cell}\n".encode(), "csv") == [{"id": kept}]

    @pytest.mark.parametrize(
        ("cell", "kept"),
        [
            ("00123", "00123"),  # a postcode: as a number it would lose its zeros
            ("-007", "-007"),
            ("01.50", "01.50"),
            ("0", 0),
            ("-0.25", -0.25),
            ("0e3", 0.0),
            (" 10 ", 10),
        ],
    )
    def test_a_number_written_with_leading_zeros_stays_text(self, cell: str, kept: object) -> None:
        assert parse(f"code\n{cell}\n".encode(), "csv") == [{"code": kept}]

    def test_a_cell_over_128_kib_is_kept_like_the_same_value_in_json(self):
        note = "n" * 200_000
        assert parse(f"id,note\n1,{note}\n".encode(), "csv") == [{"id": 1, "note": note}]
