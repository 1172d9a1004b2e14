"""A text klip's Markdown (SPEC §13) as HTML for the live and published pages.

Raw HTML is off (it shows as text), links keep only http(s) and mailto targets and get
rel="nofollow noopener", and images are dropped: a klip loads nothing from another site (the
pages' Content-Security-Policy would refuse it anyway, and an image is a tracking pixel).
"""

from __future__ import annotations

from markdown_it import MarkdownIt

SAFE_SCHEMES = ("http://", "https://", "mailto:")


def to_html(text: str) -> str:
    """`text` (Markdown) as safe HTML."""
    raise NotImplementedError
