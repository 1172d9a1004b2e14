"""The API docs (SPEC §8, §12 "Headers"): Swagger UI served by this server, loading no script,
style or image from anywhere else; their one inline script is allowed by its hash. And the document
they show states the bounds and the characters the API checks, as it checks them."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

import tenantry
from tenantry.api.docs import with_exact_integer_bounds
from tenantry.fields import INT64_MAX, INT64_MIN, LINES_PATTERN, ONE_LINE_PATTERN
from tenantry.text import refusal

STATIC = Path(tenantry.__file__).parent / "web" / "static" / "swagger-ui"


class References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]
        self._in_script = tag == "script" and "src" not in named

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.inline_scripts.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False


def test_the_docs_page_references_only_files_of_this_server(http):
    page = http.get("/api/1/docs")
    assert page.status_code == 200
    found = References()
    found.feed(page.text)
    assert found.urls, "the page loads Swagger UI from somewhere"
    assert all(url.startswith("/") and not url.startswith("//") for url in found.urls), found.urls
    assert not re.search(r"https?://", page.text)
    for url in found.urls:
        asset = http.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["x-content-type-options"] == "nosniff"
    script = http.get("/static/swagger-ui/swagger-ui-bundle.js")
    assert "javascript" in script.headers["content-type"]
    assert "SwaggerUIBundle" in script.text


def test_the_docs_policy_allows_the_inline_script_by_its_hash_and_nothing_from_elsewhere(http):
    page = http.get("/api/1/docs")
    policy = page.headers["content-security-policy"]
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy and "*" not in policy
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    found = References()
    found.feed(page.text)
    (inline,) = found.inline_scripts
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in policy
    # Swagger UI's validator badge would be an image from another site.
    assert '"validatorUrl": null' in inline
    assert "/api/1/openapi.json" in inline


def test_swagger_ui_ships_with_its_licence():
    assert "Apache License" in (STATIC / "LICENSE").read_text()
    assert (STATIC / "NOTICE").exists() and (STATIC / "swagger-ui-bundle.js.LICENSE.txt").exists()


def _integer_schemas(node, where=""):
    if isinstance(node, dict):
        if node.get("type") == "integer":
            yield where, node
        for name, child in node.items():
            yield from _integer_schemas(child, f"{where}/{name}")
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _integer_schemas(child, f"{where}/{index}")


def test_the_bounds_of_integer_fields_are_integers_in_the_api_document(http):
    document = http.get("/api/1/openapi.json").json()
    bounds = {
        f"{where}/{name}": schema[name]
        for where, schema in _integer_schemas(document)
        for name in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
        if name in schema
    }
    assert bounds, "the document bounds no integer"
    assert [where for where, value in bounds.items() if not isinstance(value, int)] == []
    schemas = document["components"]["schemas"]
    # A row id inside a body: the largest id the API accepts, not 2**63 (a float rounds it up).
    ids = schemas["SharesIn"]["properties"]["user_ids"]["items"]
    assert (ids["minimum"], ids["maximum"]) == (INT64_MIN, INT64_MAX)
    weekday = schemas["ScheduleCreate"]["properties"]["weekday"]["anyOf"][0]
    assert (weekday["minimum"], weekday["maximum"]) == (0, 6)


def test_only_the_bounds_of_integer_schemas_are_made_integers():
    document = {
        "price": {"type": "number", "minimum": 0.0},
        "id": {"anyOf": [{"type": "integer", "maximum": float(INT64_MAX), "minimum": float(INT64_MIN)}]},
    }
    assert with_exact_integer_bounds(document) == {
        "price": {"type": "number", "minimum": 0.0},
        "id": {"anyOf": [{"type": "integer", "maximum": INT64_MAX, "minimum": INT64_MIN}]},
    }


def test_a_rounded_integer_bound_that_is_no_64_bit_limit_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match="no float holds exactly"):
        with_exact_integer_bounds({"type": "integer", "maximum": float(2**60)})


@pytest.mark.parametrize(("pattern", "multiline"), [(ONE_LINE_PATTERN, False), (LINES_PATTERN, True)])
def test_the_documented_pattern_of_a_text_field_accepts_exactly_the_characters_it_accepts(pattern, multiline):
    # Every code point but the surrogates, which the patterns leave out (refused in code all the same).
    wrong = [
        f"U+{point:04X}"
        for point in [*range(0xD800), *range(0xE000, 0x110000)]
        if bool(re.fullmatch(pattern, chr(point))) != (refusal(chr(point), multiline=multiline) is None)
    ]
    assert wrong == []


def test_the_api_document_tells_which_characters_names_e_mail_addresses_and_descriptions_refuse(http):
    schemas = http.get("/api/1/openapi.json").json()["components"]["schemas"]
    client = schemas["ClientCreate"]["properties"]
    assert client["name"]["pattern"] == ONE_LINE_PATTERN
    description = client["description"]
    assert [kind["pattern"] for kind in description.get("anyOf", [description]) if "pattern" in kind] == [
        LINES_PATTERN
    ]
    email = schemas["ClientUserCreate"]["properties"]["email"]["pattern"]
    assert re.fullmatch(email, "ana@example.com")
    assert not re.fullmatch(email, "ana\x00@example.com") and not re.fullmatch(email, "ana@exa\x85mple.com")
    # A field with a pattern of its own keeps it: it already says what the field may hold.
    color = schemas["BrandingUpdate"]["properties"]["primary_color"]["anyOf"][0]
    assert color["pattern"] == "^#[0-9A-Fa-f]{6}$"


def test_the_public_password_reset_is_documented_without_a_key_or_a_401(http):
    operation = http.get("/api/1/openapi.json").json()["paths"]["/api/1/auth/password-reset"]["post"]
    assert http.post("/api/1/auth/password-reset", json={"email": "nobody@example.test"}).status_code == 202
    assert operation["security"] == []
    assert "401" not in operation["responses"] and "403" not in operation["responses"]
    assert "422" in operation["responses"]
