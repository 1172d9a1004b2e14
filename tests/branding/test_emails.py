"""E-mails in the partner's brand (SPEC §16): the sender's name, the product name in the text, and
an HTML part laid out in the brand with everything escaped; at a real SMTP server (aiosmtpd)."""

from __future__ import annotations

from datetime import timedelta
from email.utils import parseaddr

from tenantry.branding import DEFAULT_BRAND, Brand, email_html
from tenantry.events.service import claim_delivery_jobs, dispatch_events
from tests.content import dashboard_in
from tests.factories import new_client

ACME = {
    "product_name": "Acme <Insights>",
    "primary_color": "#aa3300",
    "email_from_name": "Acme Reports",
    "support_email": "help@acme.test",
    "footer_text": "Acme Ltd & Co",
}


def brand(http, partner, **fields):
    response = http.patch("/api/1/partner/branding", json={**ACME, **fields}, headers=partner.headers)
    assert response.status_code == 200, response.text


def invite(http, partner, smtp_server, send_mail):
    client_id = new_client(http, partner, "trial")
    body = {"email": "invitee@client.test", "name": "Invitee"}
    response = http.post(f"/api/1/clients/{client_id}/users", json=body, headers=partner.headers)
    assert response.status_code == 201, response.text
    assert send_mail() == 1
    [message] = smtp_server.messages
    return client_id, message


class TestInvitations:
    def test_an_invitation_comes_from_the_partner_s_sender_name_in_its_brand(
        self, smtp_http, partner, smtp_server, send_mail
    ):
        brand(smtp_http, partner)
        _, message = invite(smtp_http, partner, smtp_server, send_mail)
        assert parseaddr(message["From"])[0] == "Acme Reports"
        text = message.get_body(("plain",)).get_content()
        assert "on Acme <Insights>." in text and "Tenantry" not in text
        html = message.get_body(("html",)).get_content()
        assert "Acme &lt;Insights&gt;" in html and "<Insights>" not in html
        assert "#aa3300" in html
        assert "Acme Ltd &amp; Co" in html
        assert 'href="mailto:help@acme.test"' in html
        assert "/invite/" in html and "Choose your password" in html

    def test_the_admins_of_an_import_are_invited_in_the_partner_s_brand_each_to_its_own_client(
        self, smtp_http, partner, smtp_server, send_mail
    ):
        brand(smtp_http, partner)
        text = (
            "name,status,dashboards,users,admin_email,admin_name\n"
            "North,trial,1,1,ann@north.test,Ann\n"
            "South,trial,1,1,bob@south.test,Bob\n"
        )
        headers = {**partner.headers, "Content-Type": "text/csv"}
        response = smtp_http.post("/api/1/clients/import", content=text.encode(), headers=headers)
        assert response.status_code == 201, response.text
        assert send_mail() == 2
        sent = {message["To"]: message for message in smtp_server.messages}
        for to, name, client in (("ann@north.test", "Ann", "North"), ("bob@south.test", "Bob", "South")):
            message = sent[to]
            assert parseaddr(message["From"])[0] == "Acme Reports"
            assert message["Subject"] == f"Your access to {client}"
            plain = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
            assert f"Hello {name},\n\nYou have been given access to {client} on Acme <Insights>." in plain
            assert "#aa3300" in message.get_body(("html",)).get_content()

    def test_without_a_sender_name_the_product_name_is_the_sender(
        self, smtp_http, partner, smtp_server, send_mail
    ):
        brand(smtp_http, partner, email_from_name=None)
        _, message = invite(smtp_http, partner, smtp_server, send_mail)
        assert parseaddr(message["From"])[0] == "Acme <Insights>"

    def test_an_unbranded_partner_s_invitation_is_in_the_product_s_brand(
        self, smtp_http, partner, smtp_server, send_mail
    ):
        _, message = invite(smtp_http, partner, smtp_server, send_mail)
        assert parseaddr(message["From"])[0] == "Tenantry"
        assert "on Tenantry." in message.get_body(("plain",)).get_content()

    def test_the_invitation_shows_the_client_s_logo_from_the_public_address(
        self, smtp_http, partner, smtp_server, send_mail, settings
    ):
        from tests.branding.images import png

        client_id = new_client(smtp_http, partner, "trial")
        put = smtp_http.put(
            f"/api/1/clients/{client_id}/branding/logo",
            content=png(),
            headers={**partner.headers, "Content-Type": "image/png"},
        )
        logo = put.json()["logo_url"]
        body = {"email": "invitee@client.test", "name": "Invitee"}
        smtp_http.post(f"/api/1/clients/{client_id}/users", json=body, headers=partner.headers)
        assert send_mail() == 1
        html = smtp_server.messages[0].get_body(("html",)).get_content()
        assert f'src="{settings.base_url.rstrip("/")}{logo}"' in html


def email_the_dashboard(http, partner, dashboard_id, send_mail):
    response = http.post(
        f"/api/1/dashboards/{dashboard_id}/email", json={"to": ["boss@client.test"]}, headers=partner.headers
    )
    assert response.status_code == 202, response.text
    assert send_mail() == 1


class TestDashboardEmails:
    def test_a_dashboard_e_mail_comes_in_the_brand_of_the_partner(
        self, smtp_http, partner, clock, smtp_server, send_mail
    ):
        brand(smtp_http, partner)
        _, _, dashboard_id = dashboard_in(smtp_http, partner, "active", clock)
        email_the_dashboard(smtp_http, partner, dashboard_id, send_mail)
        [message] = smtp_server.messages
        assert parseaddr(message["From"])[0] == "Acme Reports"
        assert "Acme <Insights>" in message.get_body(("plain",)).get_content()
        assert "Acme &lt;Insights&gt;" in message.get_body(("html",)).get_content()
        [attachment] = message.iter_attachments()
        assert attachment.get_filename().endswith(".pdf")

    def test_a_dashboard_e_mail_shows_the_client_s_logo_from_the_public_address(
        self, smtp_http, partner, clock, smtp_server, send_mail, settings
    ):
        from tests.branding.images import png

        client_id, _, dashboard_id = dashboard_in(smtp_http, partner, "active", clock)
        put = smtp_http.put(
            f"/api/1/clients/{client_id}/branding/logo",
            content=png(),
            headers={**partner.headers, "Content-Type": "image/png"},
        )
        assert put.status_code == 200, put.text
        email_the_dashboard(smtp_http, partner, dashboard_id, send_mail)
        html = smtp_server.messages[0].get_body(("html",)).get_content()
        assert f'src="{settings.base_url.rstrip("/")}{put.json()["logo_url"]}"' in html


class TestEventNotices:
    def test_a_status_notice_shows_the_partner_s_logo_from_the_public_address(
        self, http, partner, smtp_server, make_worker, settings
    ):
        from tenantry.mail import SmtpMailer
        from tests.branding.images import png

        put = http.put(
            "/api/1/partner/branding/logo",
            content=png(),
            headers={**partner.headers, "Content-Type": "image/png"},
        )
        assert put.status_code == 200, put.text
        new_client(http, partner, "trial")
        mailer = SmtpMailer(smtp_server.host, smtp_server.port, "tenantry@example.test")
        make_worker(mailer, settings=settings).run_once()
        [notice] = [m for m in smtp_server.messages if "is now Trial" in m["Subject"]]
        html = notice.get_body(("html",)).get_content()
        assert f'src="{settings.base_url.rstrip("/")}{put.json()["logo_url"]}"' in html

    def test_a_status_notice_to_the_partner_s_admins_comes_in_its_brand(self, http, partner, database, clock):
        brand(http, partner)
        new_client(http, partner, "trial")
        with database.session(write=True) as db:
            dispatch_events(db, clock.now())
            jobs = [j for j in claim_delivery_jobs(db, "w", clock.now(), timedelta(minutes=1), 10) if j.mail]
            db.commit()
        assert jobs
        mail = jobs[0].mail
        assert mail.from_name == "Acme Reports"
        assert "Acme <Insights>" in mail.text
        assert mail.html is not None and "Acme &lt;Insights&gt;" in mail.html


class TestTheLayout:
    def test_everything_in_the_html_part_is_escaped(self):
        hostile = Brand(
            product_name='"><script>x</script>',
            footer_text="<b>f</b>",
            support_email='a"b@c.test',
            logo_url="/brand/logo/x.png",
        )
        html = email_html(
            hostile, "<img src=x onerror=y>\n\nline", link='https://x.test/"><', base_url="https://b.test"
        )
        assert "<script>" not in html and "<b>" not in html and "<img src=x" not in html
        assert 'href="https://x.test/&quot;&gt;&lt;"' in html
        assert 'src="https://b.test/brand/logo/x.png"' in html

    def test_the_logo_is_left_out_without_an_absolute_base_address(self):
        with_logo = Brand(logo_url="/brand/logo/x.png")
        assert "<img" not in email_html(with_logo, "Hello", base_url=None)
        assert "<img" not in email_html(with_logo, "Hello", base_url="javascript:alert(1)")
        assert "<img" not in email_html(DEFAULT_BRAND, "Hello", base_url="https://b.test")
