"""SPEC §13: a klip's compute expressions are arithmetic over columns and numbers, nothing else."""

from __future__ import annotations

import pytest

from tenantry.klips.expr import ExprError, parse

ROW = {"a": 7, "b": 2, "zero": 0, "none": None, "neg": -2.5, "unit price": 4, "text": "x", "coût_2": 3}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("a + b", 9),
        ("a - b", 5),
        ("a * b", 14),
        ("a / b", 3.5),
        ("a + b * 2", 11),  # * before +
        ("(a + b) * 2", 18),
        ("a - b - 1", 4),  # left to right
        ("a / b / 2", 1.75),
        ("-a + b", -5),
        ("- -a", 7),
        ("-(a + b)", -9),
        ("2 * -b", -4),
        ("1.5 * 2", 3.0),
        ("1e3 + a", 1007),
        ('"unit price" * b', 8),
        ("coût_2 * 2", 6),  # identifiers may be written in any language
        ("round(a / b)", 4.0),
        ("round(neg)", -3.0),  # half away from zero, as people round
        ("round(10 / 3, 2)", 3.33),
        ("abs(neg)", 2.5),
        ("abs(b - a)", 5),
        ("coalesce(none, a)", 7),
        ("coalesce(none, none, 3)", 3),
        ("coalesce(none)", None),
    ],
)
def test_an_expression_computes_what_arithmetic_says(text: str, value: float | None) -> None:
    assert parse(text).evaluate(ROW) == value


@pytest.mark.parametrize("text", ["a / zero", "a / (b - 2)", "round(a / zero, 1)"])
def test_dividing_by_zero_gives_null_not_an_error(text: str) -> None:
    assert parse(text).evaluate(ROW) is None


@pytest.mark.parametrize("text", ["a + none", "none * 2", "-none", "abs(none)", "round(none)"])
def test_a_null_in_arithmetic_gives_null(text: str) -> None:
    assert parse(text).evaluate(ROW) is None


@pytest.mark.parametrize(
    "text", ["big * 2", "big + big", "-(big * -2)", "abs(big * -2)", "big * 4 - big * 3"]
)
def test_a_whole_result_past_64_bits_gives_null(text: str) -> None:
    assert parse(text).evaluate({"big": 2**62}) is None


@pytest.mark.parametrize(
    ("text", "value"), [("big * 2 - 1", None), ("big - 1 + big", 2**63 - 1), ("big * 2.5", 2.5 * 2**62)]
)
def test_whole_results_that_64_bits_hold_are_kept(text: str, value: float | None) -> None:
    assert parse(text).evaluate({"big": 2**62}) == value


def test_an_expression_lists_the_columns_it_reads_once_each_in_order() -> None:
    assert parse('coalesce(b, a) + "unit price" * b - round(a)').columns() == ["b", "a", "unit price"]


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("", 0),
        ("   ", 0),
        ("__import__('os')", 0),  # an unknown function
        ("a.b", 1),
        ("a if b else c", 2),
        ("'text'", 0),
        ("a ** 2", 2),
        ("pow(a, 2)", 0),
        ("(a + b", 6),
        ("a + b)", 5),
        ("a +", 3),
        ("a b", 2),
        ("round(a, b)", 0),  # round's digits are a whole number
        ("round(a, 1, 2)", 0),
        ("abs(a, b)", 0),
        ("round", 0),
        ('"unclosed + a', 0),
        ('""', 0),
        ("a; b", 1),
        ("a[0]", 1),
        ("lambda: 1", 6),
        ("a == b", 2),
        ("f()", 0),
        ("abs()", 4),
        ("a * 1e999", 4),
        ("٣ + a", 0),  # digits are 0-9
    ],
)
def test_anything_else_is_refused_naming_the_position(text: str, position: int) -> None:
    with pytest.raises(ExprError) as raised:
        parse(text)
    assert raised.value.position == position
    assert raised.value.message


def test_a_deeply_nested_expression_is_refused_rather_than_overflowing() -> None:
    with pytest.raises(ExprError):
        parse("(" * 400 + "a" + ")" * 400)
