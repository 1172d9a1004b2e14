"""Reading the HTML pages the app serves: the Content-Security-Policy's directives and the inline
code of a page."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any


class InlineCode(HTMLParser):
    """Every inline script and style element of a page, with its nonce; every style or event
    handler attribute (which no nonce can allow)."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, str | None, bool]] = []
        self.attributes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag in ("script", "style"):
            self.elements.append((tag, named.get("nonce"), "src" in named))
        self.attributes += [f"{tag}[{name}]" for name in named if name == "style" or name.startswith("on")]


def directives(response: Any) -> dict[str, str]:
    """The response's Content-Security-Policy, directive by directive."""
    policy = response.headers["content-security-policy"]
    return {
        part.split()[0]: part.partition(" ")[2] for part in (p.strip() for p in policy.split(";")) if part
    }
