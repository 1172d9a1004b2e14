"""Server-rendered pages: sign-in, invitations, the partner console and the client portal.

One module per page area (`signin`, `recovery`, `account`, `clients`, `clients_bulk`, `client`,
`partner_sources`, `partner_dashboards`, `plan`, `statements`, `templates_pages`, `branding`,
`domains`, `portal`, `builder`, `schedules`), sharing the helpers of `pages` and the console's and
portal's common forms (`forms`, and `sources` for data sources and client properties).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Add the pages' routes, and the one handler that answers what a page refuses."""
    from tenantry.app import add_routes
    from tenantry.web import (
        account,
        branding,
        builder,
        client,
        clients,
        clients_bulk,
        domains,
        partner_dashboards,
        partner_sources,
        plan,
        portal,
        recovery,
        schedules,
        signin,
        statements,
        templates_pages,
    )
    from tenantry.web.pages import WebRefusal, answer_refusal

    # clients_bulk before client: /partner/clients/import is not a client's id.
    areas = (
        signin,
        account,
        clients,
        clients_bulk,
        client,
        partner_sources,
        partner_dashboards,
        plan,
        statements,
        recovery,
    )
    for module in (*areas, templates_pages, portal, builder, branding, domains, schedules):
        add_routes(app, module.router)
    app.add_exception_handler(WebRefusal, answer_refusal)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
