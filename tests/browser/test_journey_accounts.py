"""Recovering and guarding an account in a browser: a partner admin who forgot their password asks
for a link, receives it at a real SMTP server, chooses a new password and signs in; then turns on
two-step sign-in from the QR code's key (codes computed with pyotp), signs out, and signs in again
with a code.

Screenshots are taken on the way; with TENANTRY_SCREENSHOTS=<dir> they are kept there (that is
how docs/screenshots/reset.png and mfa.png are made)."""

from __future__ import annotations

import os
import re
import time
from datetime import timedelta
from pathlib import Path

import pyotp
from playwright.sync_api import expect

from tenantry.app import create_app
from tenantry.mail import SmtpMailer
from tests.factories import admin_email
from tests.pages import browser_sign_in, watch_policy
from tests.servers import live_server

NEW_PASSWORD = "a brand new secret 7"


def test_a_partner_admin_resets_a_forgotten_password_and_signs_in_with_a_code(
    browser, settings, clock, database, partner, db, smtp_server, send_mail, tmp_path
):
    shots = Path(os.environ.get("TENANTRY_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    email = admin_email(db, partner)
    db.rollback()
    mailer = SmtpMailer(smtp_server.host, smtp_server.port, "tenantry@example.test")
    app = create_app(settings, clock=clock, database=database, mailer=mailer)
    violations: list[str] = []
    with live_server(app) as base:
        context = watch_policy(browser.new_context(viewport={"width": 1100, "height": 900}), violations)
        page = context.new_page()

        # Forgot the password: ask for a link from the sign-in page.
        page.goto(base + "/login")
        page.get_by_role("link", name="Forgot your password?").click()
        page.get_by_label("E-mail address").fill(email)
        page.get_by_role("button", name="Send the link").click()
        expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()

        # The message is written after the answer (its timing tells nothing), so it may be a
        # moment behind the page; then the worker sends it to the real SMTP server.
        deadline = time.monotonic() + 10
        while (sent := send_mail()) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sent == 1
        [message] = smtp_server.messages
        assert message["To"] == email
        text = message.get_body(("plain",)).get_content() if message.is_multipart() else message.get_content()
        found = re.search(r"https?://[^/\s]+(/reset/[A-Za-z0-9_\-]+)", text)
        assert found is not None
        page.goto(base + found.group(1))
        page.get_by_label("New password").fill(NEW_PASSWORD)
        page.get_by_label("Repeat the password").fill(NEW_PASSWORD)
        page.screenshot(path=shots / "reset.png")
        page.get_by_role("button", name="Set the new password").click()
        expect(page.get_by_role("heading", name="Password changed")).to_be_visible()

        # The link worked once: a second visit says so.
        page.goto(base + found.group(1))
        expect(page.get_by_role("heading", name="Link not valid")).to_be_visible()

        browser_sign_in(page, base, email, NEW_PASSWORD)
        expect(page).to_have_url(base + "/partner")

        # Turn on two-step sign-in: the QR code is inline SVG, its key is beside it.
        page.get_by_role("button", name="Set up two-step sign-in").click()
        expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
        secret = page.locator("#totp-secret").input_value()
        page.screenshot(path=shots / "mfa.png", full_page=True)
        page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).at(clock.now()))
        page.get_by_role("button", name="Turn on two-step sign-in").click()
        expect(page.get_by_role("heading", name="Two-step sign-in is on")).to_be_visible()
        assert page.locator("ul.codes li").count() == 10
        page.get_by_role("link", name="Continue").click()
        expect(page.get_by_text("Two-step sign-in is on.")).to_be_visible()

        # Sign out, and in again: the password alone leads to the code step.
        page.get_by_role("button", name="Sign out").click()
        browser_sign_in(page, base, email, NEW_PASSWORD)
        expect(page).to_have_url(base + "/login/code")
        page.get_by_label("Code").fill("000000")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_have_text("The code is not correct.")
        clock.advance(timedelta(seconds=30))
        page.get_by_label("Code").fill(pyotp.TOTP(secret).at(clock.now()))
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(base + "/partner")
        context.close()
    assert violations == []
    assert (shots / "reset.png").stat().st_size > 0
    assert (shots / "mfa.png").stat().st_size > 0
