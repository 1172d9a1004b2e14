"""A text klip's Markdown (SPEC §13) as HTML for the live and published pages.

Raw HTML is off (it shows as text), links keep only http(s) and mailto targets and get
rel="nofollow noopener", and images are dropped (their alt text stays): a klip loads nothing from
another site (the pages' Content-Security-Policy would refuse it anyway, and a remote image is a
tracking pixel).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

SAFE_SCHEMES = ("http://", "https://", "mailto:")


def _safe_link(url: str) -> bool:
    # A link that fails here is not made a link at all: its Markdown stays as text.
    return url.strip().lower().startswith(SAFE_SCHEMES)


def _link_open(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    tokens[idx].attrSet("rel", "nofollow noopener")
    return str(self.renderToken(tokens, idx, options, env))


def _image(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    return escape(tokens[idx].content)


def parser() -> MarkdownIt:
    """CommonMark with raw HTML off and only safe links (shared with the SVG text klip)."""
    md = MarkdownIt("commonmark", {"html": False})
    md.validateLink = _safe_link  # type: ignore[method-assign]
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("image", _image)
    return md


_MD = parser()


def to_html(text: str) -> str:
    """`text` (Markdown) as safe HTML."""
    return str(_MD.render(text))
