"""The interactive API docs at `/api/1/docs`: Swagger UI served from this server, nothing else.

Swagger UI's files ship inside the package (`web/static/swagger-ui`, from the npm package
`swagger-ui-dist`, with its licence), so the docs work offline and load no script or style from
another site. The page is the same for every request, so its policy allows its one inline script
by hash, and Swagger UI's validator badge (an image from another site) is turned off.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from tenantry.fields import INT64_MAX, INT64_MIN

DOCS_URL = "/api/1/docs"
ASSETS = "/static/swagger-ui"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
# The largest integer a float holds exactly: a bound beyond it was rounded.
_EXACT = 2**53


def with_exact_integer_bounds(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with the bounds of its integer schemas as integers again.

    FastAPI passes its document through a model whose bounds are floats, so the bounds of the
    models' schemas come out as `200.0`, and a row id's (`fields.RowId`, the 64-bit range) as
    `9.223372036854776e+18`: 2**63, one more than the largest id the API accepts. A bound of an
    integer schema is an integer, so a whole float is given back as one; a float beyond 2**53 can
    only be one of the 64-bit limits (the only bounds that large), and is given back exactly.
    """

    def exact(value: float) -> int:
        if abs(value) <= _EXACT:
            return int(value)
        for limit in (INT64_MIN, INT64_MAX):
            if value == float(limit):
                return limit
        raise ValueError(f"an integer bound {value!r} that no float holds exactly")

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "integer":
                for name in _BOUNDS:
                    value = node.get(name)
                    if isinstance(value, float) and value.is_integer():
                        node[name] = exact(value)
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(document)
    return document


def _policy(html: str) -> str:
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    return (
        "default-src 'self'; "
        f"script-src 'self' {hashes}; "
        "style-src 'self'; "
        "img-src 'self' data:; "
        "connect-src 'self'; "
        "object-src 'none'; "
        "base-uri 'none'; "
        "form-action 'self'; "
        "frame-ancestors 'none'"
    )


def install(app: FastAPI) -> None:
    """Serve the docs page of `app` (create the app with `docs_url=None`)."""
    assert app.openapi_url is not None
    page = get_swagger_ui_html(
        openapi_url=app.openapi_url,
        title=f"{app.title} API",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        oauth2_redirect_url=None,
        swagger_ui_parameters={"validatorUrl": None},
    )
    html = bytes(page.body).decode()
    headers = {
        "Content-Security-Policy": _policy(html),
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
    }
    router = APIRouter(include_in_schema=False)

    @router.get(DOCS_URL, response_class=HTMLResponse)
    def docs() -> HTMLResponse:
        return HTMLResponse(html, headers=headers)

    app.include_router(router)
