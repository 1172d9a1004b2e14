"""SPEC §13 `format`: how a klip shows a number, row by row."""

from __future__ import annotations

import pytest

from tenantry.charts.formats import format_value
from tenantry.klips.spec import Format

NUMBER = Format()
PERCENT = Format(style="percent")
USD = Format(style="currency")
COMPACT = Format(style="compact")


@pytest.mark.parametrize(
    ("value", "fmt", "shown"),
    [
        # number: en-US grouping; whole numbers without decimals, others up to two
        (1234, None, "1,234"),
        (1234567.891, None, "1,234,567.89"),
        (1234.5, NUMBER, "1,234.5"),
        (0.1, NUMBER, "0.1"),
        (2.0, NUMBER, "2"),
        (-9876.54, NUMBER, "-9,876.54"),
        (1234.5678, Format(decimals=3), "1,234.568"),
        (7, Format(decimals=2), "7.00"),
        (-0.001, Format(decimals=2), "0.00"),
        ("1,200", NUMBER, "1,200"),
        # percent: the number as it is
        (12.5, PERCENT, "12.5%"),
        (0.126, PERCENT, "0.13%"),
        (40, PERCENT, "40%"),
        (12.5, Format(style="percent", decimals=0), "12%"),
        # currency: USD unless given; a known symbol, else the code
        (1234.5, USD, "$1,234.50"),
        (-1234.5, USD, "-$1,234.50"),
        (99, Format(style="currency", currency="EUR"), "€99.00"),
        (1000, Format(style="currency", currency="GBP"), "£1,000.00"),
        (1234, Format(style="currency", currency="JPY"), "¥1,234"),
        (12, Format(style="currency", currency="CHF"), "CHF 12.00"),
        (12.345, Format(style="currency", decimals=0), "$12"),
        # compact
        (2_500_000, COMPACT, "2.5M"),
        (1_200, COMPACT, "1.2K"),
        (3_400_000_000, COMPACT, "3.4B"),
        (3_000_000, COMPACT, "3M"),
        (-2_500_000, COMPACT, "-2.5M"),
        (950, COMPACT, "950"),
        (999_999, COMPACT, "1M"),
        (1_234_567, Format(style="compact", decimals=2), "1.23M"),
        # prefix and suffix
        (1500, Format(prefix="~", suffix=" users"), "~1,500 users"),
        (12.5, Format(style="percent", prefix="+"), "+12.5%"),
        # not numbers
        (None, NUMBER, "–"),
        (None, USD, "–"),
        ("North", USD, "North"),
        (True, NUMBER, "True"),
        (float("nan"), NUMBER, "–"),
        (float("inf"), COMPACT, "–"),
    ],
)
def test_a_value_is_shown_as_its_format_says(value, fmt, shown):
    assert format_value(value, fmt) == shown


def test_an_integer_beyond_a_floats_range_is_shown_as_its_text():
    assert format_value(10**400, NUMBER) == str(10**400)


@pytest.mark.parametrize(
    ("value", "fmt", "shown"),
    [
        (-0.004, Format(style="currency"), "$0.00"),
        (-0.004, Format(style="currency", currency="EUR"), "€0.00"),
        (-0.004, Format(style="currency", currency="CHF"), "CHF 0.00"),
        (-0.4, Format(style="currency", currency="JPY"), "¥0"),
        (-0.006, Format(style="currency"), "-$0.01"),
    ],
)
def test_a_negative_amount_that_rounds_to_zero_shows_no_minus_in_a_currency(value, fmt, shown):
    assert format_value(value, fmt) == shown


@pytest.mark.parametrize(
    ("value", "fmt", "shown"),
    [
        (9007199254740993, NUMBER, "9,007,199,254,740,993"),
        (123456789012345678, NUMBER, "123,456,789,012,345,678"),
        (9999999999999999990, NUMBER, "9,999,999,999,999,999,990"),
        (-9007199254740993, Format(style="currency"), "-$9,007,199,254,740,993.00"),
        (9007199254740993, Format(decimals=1), "9,007,199,254,740,993.0"),
        (9007199254740993, Format(style="percent"), "9,007,199,254,740,993%"),
    ],
)
def test_a_whole_number_is_shown_with_its_own_digits(value, fmt, shown):
    assert format_value(value, fmt) == shown
