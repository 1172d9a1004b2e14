"""Fixtures of the account tests: the app with a real SMTP server behind its outbox."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tenantry.app import create_app
from tenantry.mail import SmtpMailer


@pytest.fixture
def mail_http(settings, clock, database, smtp_server) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """The app, queueing its e-mails for the test SMTP server (the worker sends them: `send_mail`)."""
    mailer = SmtpMailer(smtp_server.host, smtp_server.port, "tenantry@example.test")
    app = create_app(settings, clock=clock, database=database, mailer=mailer)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def path_of(link: str) -> str:
    return "/" + link.split("/", 3)[3]


def form_csrf(page_text: str) -> str | None:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page_text)
    return found.group(1) if found is not None else None


def post_page_form(http: Any, path: str, **form: str) -> Any:
    """GET the form's page for its CSRF token, then POST the form as a browser does (a page that
    shows no form, such as a refused link's, sends the sign-in page's token, as a stale tab would)."""
    csrf = form_csrf(http.get(path).text) or form_csrf(http.get("/login").text)
    assert csrf is not None
    return http.post(path, data={"csrf_token": csrf, **form}, follow_redirects=False)
