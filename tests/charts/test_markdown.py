"""A text klip's Markdown on the page: raw HTML shown as text, only safe links, no remote images."""

from __future__ import annotations

import pytest

from tenantry.charts.markdown import to_html


@pytest.mark.parametrize(
    ("markdown", "html"),
    [
        ("# Sales", "<h1>Sales</h1>\n"),
        ("**up** and _down_", "<p><strong>up</strong> and <em>down</em></p>\n"),
        ("- one\n- two", "<ul>\n<li>one</li>\n<li>two</li>\n</ul>\n"),
        ("<b>bold?</b>", "<p>&lt;b&gt;bold?&lt;/b&gt;</p>\n"),
        ("<script>alert(1)</script>", "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"),
        ('<img src=x onerror="alert(1)">', "<p>&lt;img src=x onerror=&quot;alert(1)&quot;&gt;</p>\n"),
    ],
)
def test_markdown_becomes_html_and_raw_html_stays_text(markdown, html):
    assert to_html(markdown) == html


@pytest.mark.parametrize(
    "link",
    [
        "[x](javascript:alert(1))",
        "[x](JavaScript:alert(1))",
        "[x](data:text/html,<b>x</b>)",
        "[x](vbscript:msgbox)",
        "[x](/relative/path)",
        "[x][r]\n\n[r]: javascript:alert(1)",
    ],
)
def test_links_other_than_http_https_and_mailto_are_not_links(link):
    assert "<a " not in to_html(link)
    assert "href" not in to_html(link)


@pytest.mark.parametrize(
    ("link", "href"),
    [
        ("[site](https://example.com/a?b=1)", "https://example.com/a?b=1"),
        ("[site](http://example.com)", "http://example.com"),
        ("[mail](mailto:ops@example.com)", "mailto:ops@example.com"),
        ("<https://example.com>", "https://example.com"),
    ],
)
def test_safe_links_are_links_that_pass_no_standing(link, href):
    assert f'<a href="{href}" rel="nofollow noopener">' in to_html(link)


@pytest.mark.parametrize(
    "image", ["![chart](https://tracker.example/p.png)", "![chart](http://x.test/p.gif)"]
)
def test_remote_images_are_dropped_keeping_their_alt_text(image):
    html = to_html(image)
    assert "<img" not in html and "tracker" not in html and "x.test" not in html
    assert "chart" in html
