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

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

DOCS_URL = "/api/1/docs"
ASSETS = "/static/swagger-ui"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


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
