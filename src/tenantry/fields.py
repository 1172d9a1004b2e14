"""The schema primitives every request and response schema shares: the strict base model, row ids
and the text fields, so a name, an id or an e-mail address means the same everywhere (API bodies,
query parameters and the console's and portal's forms, which build the same schemas).

A one-line field refuses control characters (C0, DEL, C1, U+2028, U+2029) and lone surrogates
with 422 `validation_error` naming the field; a multi-line field accepts tab, LF and CR among
them. Values are checked as sent, before surrounding spaces are trimmed, so nothing is silently
changed.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StrictInt,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

from tenantry.clock import is_timezone
from tenantry.text import REFUSED_IN_LINES, REFUSED_IN_ONE_LINE, refusal

# The database's integers are 64-bit. A larger number names no row and would overflow in the driver,
# so an id or count outside this range is refused as malformed (422) before anything runs.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
RowId = Annotated[StrictInt, Field(ge=INT64_MIN, le=INT64_MAX)]


class Strict(BaseModel):
    """A request body: unknown fields are refused (422)."""

    model_config = ConfigDict(extra="forbid")


def _refuse_controls(value: Any, *, multiline: bool) -> Any:
    if isinstance(value, str):
        why = refusal(value, multiline=multiline)
        if why is not None:
            raise PydanticCustomError("control_character", why)
    return value


def _one_line(value: Any) -> Any:
    return _refuse_controls(value, multiline=False)


def _lines(value: Any) -> Any:
    return _refuse_controls(value, multiline=True)


# What the API document says of these fields (JSON Schema patterns, as ECMA-262 reads them): the
# characters refused above, all but lone surrogates, which are refused too but not named here.
ONE_LINE_PATTERN = f"^[^{REFUSED_IN_ONE_LINE}]*$"
LINES_PATTERN = f"^[^{REFUSED_IN_LINES}]*$"


@dataclass(frozen=True, slots=True)
class _Refusing(BeforeValidator):
    """The check of control characters, which also writes it into the field's JSON schema as a
    pattern (a field with a pattern of its own keeps it: that one says what it may hold)."""

    pattern: str = ""

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        found = handler(schema)
        if found.get("type") == "string" and "pattern" not in found:
            found["pattern"] = self.pattern
        return found


# Put last in an `Annotated[...]`, so the check sees the value before any trimming.
OneLine = _Refusing(_one_line, pattern=ONE_LINE_PATTERN)
Lines = _Refusing(_lines, pattern=LINES_PATTERN)


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), OneLine]


def nfc(value: str) -> str:
    """Text in Unicode's composed form (NFC): `É` typed as one character or as `E` and an accent is
    the same text."""
    return unicodedata.normalize("NFC", value)


def _external_id(value: str) -> str:
    composed = nfc(value)
    if len(composed) > 200:
        raise ValueError("at most 200 characters")
    return composed


# The partner's own id of a client: unique in the partner, so kept composed (NFC): two spellings of
# the same text are one id.
ExternalId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    OneLine,
    AfterValidator(_external_id),
]
# A column of a data source, as a klip maps it (data column names are kept on one line on ingest).
Column = Annotated[str, StringConstraints(min_length=1, max_length=200), OneLine]
# A part of an e-mail address: no spaces, none of the characters that separate addresses in a header
# or quote, comment or bracket parts of one (a quoted name, an address literal `[…]`: the header
# parser reads them otherwise, or fails on them), and no control characters (refused first, as in
# any one-line field; the pattern tells the API document).
_ADDRESS_PART = rf"[^@\s,;:<>()\[\]\\\"{REFUSED_IN_ONE_LINE}]+"
_EMAIL_SHAPE = StringConstraints(
    max_length=254,
    # One address.
    pattern=rf"^{_ADDRESS_PART}@{_ADDRESS_PART}\.{_ADDRESS_PART}$",
)
# The shape checked again on the composed form, when composing changed the text: a few characters
# compose into others (U+037E GREEK QUESTION MARK is `;`, which separates addresses in a header),
# and a few compose into two, so what passed as sent must pass as stored too.
_EMAIL_COMPOSED: TypeAdapter[str] = TypeAdapter(Annotated[str, _EMAIL_SHAPE])


def _composed_email(value: str) -> str:
    composed = nfc(value)
    if composed != value:
        try:
            _EMAIL_COMPOSED.validate_python(composed)
        except ValidationError:
            raise ValueError("one e-mail address, as it reads once composed (NFC)") from None
    return composed


# An e-mail address, trimmed, in lower case and composed (NFC): `é` typed as one character or as
# `e` and an accent is one address, so it is one user (unique per client, or in the product for
# partner users) and signs in whichever way it is typed.
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True),
    _EMAIL_SHAPE,
    OneLine,
    AfterValidator(_composed_email),
]
# How an `Email` is written before it is checked and stored: trimmed and in lower case, by pydantic
# (whose Unicode tables are newer than Python's `str.lower`'s: the two differ on a few letters).
_EMAIL_CASE: TypeAdapter[str] = TypeAdapter(
    Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True)]
)


def normalised_email(value: str) -> str:
    """`value` trimmed, lower-cased and composed (NFC) exactly as an `Email` field does it: the one
    normaliser of e-mail addresses, for whatever is typed outside a schema (the sign-in and reset
    forms, the command line), so an address finds the account it was stored for. Text pydantic
    cannot read (a lone surrogate) names no account: it is only trimmed, lowered as Python does it
    and composed."""
    try:
        return nfc(_EMAIL_CASE.validate_python(value))
    except ValidationError:
        return nfc(value.strip().lower())


# How long a password may be; what it must be (auth.passwords) is checked where it is chosen, so a
# weak one is refused with `weak_password` and its reason, not as a malformed body.
Password = Annotated[str, StringConstraints(max_length=200)]
Description = Annotated[str, StringConstraints(max_length=5000), Lines]
Reason = Annotated[str, StringConstraints(max_length=1000), Lines]
# A search text or filter in a query string: one line, possibly empty.
SearchText = Annotated[str, StringConstraints(max_length=200), OneLine]


def _timezone(value: str) -> str:
    # Only names of the IANA database: a path-like or empty key is refused before zoneinfo opens it.
    if not is_timezone(value):
        raise ValueError("an IANA timezone name, e.g. Europe/Paris")
    return value


# A timezone kept for days and times of day (a schedule's, a client's): an IANA name.
Timezone = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_timezone)]


class KeptJson:
    """Response models dumped to JSON, each made once while what it is made of is the same.

    `json(key, make)` gives the JSON of the model `make()` returns, made the first time `key` is
    asked for: `key` must hold everything the model is made of (the rows' values, what the clock
    shows of them), so one key is always one answer. At most `limit` are kept; all are dropped
    when one more is made (safe from any thread). The hottest reads ask for the same view again
    and again, and building a nested model and dumping it costs more than their database read.
    """

    def __init__(self, limit: int = 1024) -> None:
        self.limit = limit
        self._kept: dict[Hashable, bytes] = {}

    def json(self, key: Hashable, make: Callable[[], BaseModel]) -> bytes:
        body = self._kept.get(key)
        if body is None:
            model = make()
            body = model.__pydantic_serializer__.to_json(model, by_alias=True)
            if len(self._kept) >= self.limit:
                self._kept.clear()
            self._kept[key] = body
        return body
