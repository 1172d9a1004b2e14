"""Reading CSV text (`tenantry.text.csv_records`): records numbered by the line they start on, and
a malformed file refused rather than read wrongly."""

from __future__ import annotations

import csv

import pytest

from tenantry.text import csv_records


@pytest.mark.parametrize(
    ("text", "records"),
    [
        ("a,b\n1,2\n", [(1, ["a", "b"]), (2, ["1", "2"])]),
        ("a,b\r\n\r\n1,2\r\n", [(1, ["a", "b"]), (3, ["1", "2"])]),  # blank lines are left out
        ("a,b\r1,2\r", [(1, ["a", "b"]), (2, ["1", "2"])]),  # CR alone ends a line too
        ('a,b\n1,"x\ny",2\n3,4\n', [(1, ["a", "b"]), (2, ["1", "x\ny", "2"]), (4, ["3", "4"])]),
        ('a,b\n1,"x\ny",2', [(1, ["a", "b"]), (2, ["1", "x\ny", "2"])]),  # no line break at the end
        ('a,b\n1,5" screen\n', [(1, ["a", "b"]), (2, ["1", '5" screen'])]),  # a quote in a cell
        ('a,b\n"x" y,1\n\n', [(1, ["a", "b"]), (2, ["x y", "1"])]),  # read leniently on one line
        ("", []),
    ],
)
def test_each_record_comes_with_the_line_it_starts_on(
    text: str, records: list[tuple[int, list[str]]]
) -> None:
    assert list(csv_records(text)) == records


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('a,b\n1,"x\n2,y\n3,z\n', 2),
        ('a,b\n\n1,2\n3,"x\n\n', 4),
        ('a,b\n1,"x', 2),  # open on the last line, with no line break after it
        ('name,external_id\nAcme,A-1\n"Beta,B-2', 3),
    ],
)
def test_a_quote_never_closed_is_refused_naming_its_line_rather_than_swallowing_the_rest(
    text: str, line: int
) -> None:
    with pytest.raises(csv.Error, match=f"a quoted cell on line {line} is never closed"):
        list(csv_records(text))


def test_a_cell_may_be_longer_than_pythons_default_field_limit() -> None:
    note = "n" * 200_000
    assert list(csv_records(f"id,note\n1,{note}\n")) == [(1, ["id", "note"]), (2, ["1", note])]


def test_a_quote_closed_wrongly_several_lines_on_is_refused_rather_than_swallowing_them() -> None:
    with pytest.raises(
        csv.Error, match="a quoted cell on line 2 runs over several lines and its quotes are wrong"
    ):
        list(csv_records('a,b\n"x,1\ny,2\n"z",3\nw,4\n'))
