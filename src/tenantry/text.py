"""What text may hold, in one place: the characters a name refuses, and how data is made safe.

Names, titles, e-mail addresses and other single-line fields are typed by people or programs that
mean one line: a control character there is an attack or a mistake (a line break in a name becomes
a header in an e-mail), so it is refused, never silently changed. Data is different: it comes from
somebody else's spreadsheet or API and must be kept, so the characters that cannot be carried
safely into a page, a PDF, an XML (SVG) document or a database are replaced with U+FFFD.

Pure: no web framework, no database.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

REPLACEMENT = "\ufffd"

# C0 controls, DEL, C1 controls, the Unicode line and paragraph separators, and lone surrogates
# (which Python strings can hold but UTF-8, JSON parsers, XML and PostgreSQL cannot). Written as
# escapes, which Python's regular expressions and ECMA-262's (the API document's) read alike.
_C0_WITHOUT_TAB_AND_LINE_BREAKS = r"\x00-\x08\x0b\x0c\x0e-\x1f"
_DEL_AND_C1 = r"\x7f-\x9f"
_SEPARATORS = r"\u2028\u2029"
_SURROGATES = r"\ud800-\udfff"
# What a multi-line and a one-line field refuse, as the body of a character class, all but lone
# surrogates: the API document's patterns of these fields (`fields.ONE_LINE_PATTERN`) are made of it.
REFUSED_IN_LINES = f"{_C0_WITHOUT_TAB_AND_LINE_BREAKS}{_DEL_AND_C1}{_SEPARATORS}"
REFUSED_IN_ONE_LINE = rf"\t\n\r{REFUSED_IN_LINES}"
# The 66 noncharacters: U+FDD0..U+FDEF and the last two code points of each of the 17 planes.
_NONCHARACTERS = "\ufdd0-\ufdef" + "".join(
    f"{chr(plane * 0x10000 + 0xFFFE)}{chr(plane * 0x10000 + 0xFFFF)}" for plane in range(17)
)

_NOT_IN_ONE_LINE = re.compile(f"[{REFUSED_IN_ONE_LINE}{_SURROGATES}]")
_NOT_IN_LINES = re.compile(f"[{REFUSED_IN_LINES}{_SURROGATES}]")
# Data keeps tabs and line breaks (a quoted CSV cell may hold several lines); everything else that
# a page, XML 1.0 or PostgreSQL refuses, or that has no business in text, is replaced.
_UNSAFE_IN_DATA = re.compile(f"[{_C0_WITHOUT_TAB_AND_LINE_BREAKS}{_DEL_AND_C1}{_SURROGATES}{_NONCHARACTERS}]")
# A column name is a name: it is kept on one line too.
_UNSAFE_IN_COLUMN_NAME = re.compile(
    f"[\t\n\r{_C0_WITHOUT_TAB_AND_LINE_BREAKS}{_DEL_AND_C1}{_SEPARATORS}{_SURROGATES}{_NONCHARACTERS}]"
)


def describe(char: str) -> str:
    """A character as people look it up: U+000A."""
    return f"U+{ord(char):04X}"


def first_forbidden(value: str, *, multiline: bool = False) -> tuple[int, str] | None:
    """The position and character of the first control character a field refuses, or None.

    One-line fields refuse C0 (tab and line breaks included), DEL, C1, U+2028, U+2029 and lone
    surrogates; multi-line fields accept tab, LF and CR among those.
    """
    found = (_NOT_IN_LINES if multiline else _NOT_IN_ONE_LINE).search(value)
    return None if found is None else (found.start(), found.group())


def refusal(value: str, *, multiline: bool = False) -> str | None:
    """Why a field refuses `value`, in the words every form and API answer uses, or None."""
    found = first_forbidden(value, multiline=multiline)
    if found is None:
        return None
    position, char = found
    allowed = " other than tab and line breaks" if multiline else ""
    return f"must not contain control characters{allowed} (found {describe(char)} at position {position + 1})"


_LINE_BREAKS = re.compile("[\t\n\r\x0b\x0c\x85\u2028\u2029]")


def as_one_line(value: str) -> str:
    """A name stored before one-line fields refused control characters, made one: line breaks
    and tabs become spaces, any other control character or lone surrogate U+FFFD."""
    return _NOT_IN_ONE_LINE.sub(REPLACEMENT, _LINE_BREAKS.sub(" ", value))


def as_lines(value: str) -> str:
    """Likewise for a multi-line text: tab and line breaks stay, the rest becomes U+FFFD."""
    return _NOT_IN_LINES.sub(REPLACEMENT, value)


def scrub(value: str) -> str:
    """Data text with every character that could break a page, a file or a database replaced by
    U+FFFD: C0 controls other than tab, LF and CR; DEL and C1; noncharacters; lone surrogates."""
    # Printable text (no control, format, separator, surrogate or unassigned code point) is the
    # common case: one quick scan, no copy.
    if value.isprintable() or _UNSAFE_IN_DATA.search(value) is None:
        return value
    return _UNSAFE_IN_DATA.sub(REPLACEMENT, value)


def scrub_column_name(value: str) -> str:
    """A column name made safe like data, and kept on one line (tab and line breaks replaced too)."""
    if value.isprintable() or _UNSAFE_IN_COLUMN_NAME.search(value) is None:
        return value
    return _UNSAFE_IN_COLUMN_NAME.sub(REPLACEMENT, value)


def scrub_value(value: Any) -> Any:
    return scrub(value) if isinstance(value, str) else value


def scrub_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row with its column names and text values scrubbed (other values kept as they are)."""
    return {scrub_column_name(str(k)): scrub_value(v) for k, v in row.items()}


def scrub_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [scrub_row(row) for row in rows]


# A cell may be as large as the files the product reads (a few MB), not only Python's default 128 KiB.
csv.field_size_limit(max(csv.field_size_limit(), 64 * 1024 * 1024))


def csv_records(text: str) -> Iterator[tuple[int, list[str]]]:
    """Each record of a CSV text with the line it starts on (the first line is 1), blank lines
    left out. A quoted cell may hold line breaks: its record is found on its first line, where a
    person looks for it. Raises `csv.Error` on a malformed file: among others on a quote that is
    never closed, or closed wrongly several lines on, which would otherwise swallow the lines
    after it into one cell. (A record on one line is read as leniently as Python's reader reads
    it: `"x" y` is the cell `x y`.)"""
    reader = csv.reader(io.StringIO(text, newline=""))
    lines: list[str] | None = None
    last: tuple[int, int] | None = None
    while True:
        start = reader.line_num + 1
        record = next(reader, None)
        if record is None:
            break
        if not record:
            continue
        end = reader.line_num
        if end > start:  # a quoted cell held line breaks: were its quotes right?
            lines = lines if lines is not None else io.StringIO(text, newline="").readlines()
            _check_quotes("".join(lines[start - 1 : end]), start, spans=True)
        last = (start, end)
        yield start, record
    if last is not None and last[1] == last[0]:
        # The last record may still have opened a quote that the end of the text closed: it is the
        # text's last line that is not empty.
        end = len(text)
        while end and text[end - 1] in "\r\n":
            end -= 1
        begin = max(text.rfind("\n", 0, end), text.rfind("\r", 0, end)) + 1
        _check_quotes(text[begin:end], last[0], spans=False)


def _check_quotes(raw: str, line: int, *, spans: bool) -> None:
    """Read one record's text strictly. A record over several lines must be right (a stray quote
    would have swallowed the lines after it); one on a single line may only not be left open."""
    try:
        for _ in csv.reader(io.StringIO(raw, newline=""), strict=True):
            pass
    except csv.Error as error:
        if "end of data" in str(error):
            raise csv.Error(f"a quoted cell on line {line} is never closed") from None
        if spans:
            raise csv.Error(
                f"a quoted cell on line {line} runs over several lines and its quotes are wrong: {error}"
            ) from None
