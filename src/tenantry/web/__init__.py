"""Server-rendered pages: sign-in, invitations, the partner home and the client portal."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    from tenantry.app import add_routes
    from tenantry.web.console import router as console
    from tenantry.web.portal import router as portal
    from tenantry.web.routes import router
    from tenantry.web.statements import router as statements_router

    for pages in (router, statements_router, console, portal):
        add_routes(app, pages)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
