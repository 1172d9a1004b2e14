"""Reading the HTML pages the app serves: the Content-Security-Policy's directives and the inline
code of a page; and, in a real browser (Playwright, for `tests/browser`), signing in through the
form and collecting what the browser reports of the policy's violations."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page


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


def browser_sign_in(page: Page, base: str, email: str, password: str) -> None:
    """Sign in through the /login form of the app at `base`, as a person does in the browser."""
    page.goto(base + "/login")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def watch_policy(context: BrowserContext, violations: list[str]) -> BrowserContext:
    """Collect what Chromium reports of Content-Security-Policy violations in the context's pages
    (a refused inline script, style, frame, fetch...): a page that works only without its policy
    shows up here."""
    context.on(
        "console",
        lambda message: (
            violations.append(f"{message.page.url if message.page else '?'}: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    return context
