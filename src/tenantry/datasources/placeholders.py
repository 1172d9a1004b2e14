"""Client placeholders in a data source's settings: `{{client.id}}`, `{{client.external_id}}`,
`{{client.name}}` and `{{client.prop.KEY}}`, filled in with the values of the client a source
belongs to when it is fetched.

Where a value lands decides how it is written:

- in a URL it is percent-encoded, every reserved character included (and a value of dots alone,
  `.` or `..`, entirely), so a value can never add or remove a path segment, nor add a query
  parameter or another host to the address;
- in SQL it is never pasted into the text: each placeholder becomes a bound parameter;
- in a query value, a header value or a body it is the value itself (the HTTP layer encodes
  query values; a header value with a line break is refused where headers are built).

A placeholder whose value is missing fails the fetch with a message naming what is missing. Text
in double braces that is not one of the four forms is left as it is (a body may be a template of
some other system).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from tenantry.datasources.fetch import FetchError

PLACEHOLDER = re.compile(r"\{\{\s*client\.(id|external_id|name|prop\.([a-z][a-z0-9_]{0,39}))\s*\}\}")


@dataclass(frozen=True)
class Context:
    """The values of the client a source is fetched for."""

    client_id: int
    external_id: str | None
    name: str
    properties: Mapping[str, str] = field(default_factory=dict)


class MissingProperty(FetchError):
    """A placeholder names a property the client does not have."""

    def __init__(self, key: str) -> None:
        super().__init__(f"The client has no property '{key}'.")
        self.key = key


def value_of(match: re.Match[str], context: Context | None) -> str | int:
    """The value one placeholder stands for (the client's id as a number)."""
    what, key = match.group(1), match.group(2)
    if context is None:
        # A partner's own source has no client to take values from.
        raise FetchError(f"{{{{client.{what}}}}} needs a client, and this source belongs to no client.")
    if what == "id":
        return context.client_id
    if what == "name":
        return context.name
    if what == "external_id":
        if context.external_id is None:
            raise FetchError("The client has no external id.")
        return context.external_id
    if key not in context.properties:
        raise MissingProperty(key)
    return context.properties[key]


def expand(template: str, context: Context | None, *, url: bool = False) -> str:
    """`template` with every placeholder replaced by its value; in a URL, percent-encoded."""

    def replace(match: re.Match[str]) -> str:
        value = str(value_of(match, context))
        if not url:
            return value
        if value and value.strip(".") == "":
            # `.` and `..` are path steps to a URL parser (`/accounts/../orders` is `/orders`).
            return "%2E" * len(value)
        return quote(value, safe="")

    return PLACEHOLDER.sub(replace, template)


def expand_sql(
    sql: str, context: Context | None, style: Literal["pyformat"] = "pyformat"
) -> tuple[str, dict[str, Any]]:
    """The SQL with each placeholder turned into a bound parameter (`%(p0)s`, ...) and the values
    to bind. Every literal `%` is doubled, since the drivers' pyformat style gives it a meaning."""
    if style != "pyformat":
        raise ValueError(f"unsupported parameter style {style!r}")
    params: dict[str, Any] = {}
    parts: list[str] = []
    position = 0
    for match in PLACEHOLDER.finditer(sql):
        parts.append(sql[position : match.start()].replace("%", "%%"))
        name = f"p{len(params)}"
        params[name] = value_of(match, context)
        parts.append(f"%({name})s")
        position = match.end()
    parts.append(sql[position:].replace("%", "%%"))
    return "".join(parts), params
