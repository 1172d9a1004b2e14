"""Many clients at once in the console: a CSV import previewed line by line and then applied, all
or nothing; the status of the clients selected on the list changed after a dry run. A refused
step changes nothing; another partner's clients are not found; forms need their token."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import PASSWORD, add_partner_viewer, csrf_of, enter, new_client, sign_in

GOOD = "name,external_id,status,dashboards,users\r\nAcme,acme,trial,1,1\r\nGlobex,globex,setup,,\r\n"
BAD = (
    "name,external_id,status,dashboards,users\r\n"
    "Acme,acme,trial,1,1\r\n,nameless,setup,,\r\nInitech,ini,sleeping,,\r\n"
)


def clients_of(http: Any, partner: Any) -> list[dict[str, Any]]:
    return list(http.get("/api/1/clients", headers=partner.headers).json()["items"])


def upload(http: Any, text: str | bytes) -> Any:
    page = http.get("/partner/clients/import")
    return http.post(
        "/partner/clients/import",
        data={"csrf_token": csrf_of(page.text)},
        files={"file": ("clients.csv", text, "text/csv")},
    )


def apply_text(page_text: str) -> str:
    import html
    import re

    found = re.search(r'name="csv_text" value="([^"]*)"', page_text)
    assert found is not None, "no apply form"
    return html.unescape(found.group(1))


def upload_oversized(http, settings, accept: str | None = None):
    """A CSV one past the body limit, posted to the import page (as a browser would, with `accept`)."""
    page = http.get("/partner/clients/import")
    return http.post(
        "/partner/clients/import",
        data={"csrf_token": csrf_of(page.text)},
        files={"file": ("big.csv", b"name\r\n" + b"x" * (settings.max_body_bytes + 10), "text/csv")},
        headers={"Accept": accept} if accept else {},
    )


@pytest.mark.usefixtures("partner_session")
class TestImportingClients:
    def test_the_clients_list_links_the_import_page_and_its_sample_file(self, http):
        assert 'href="/partner/clients/import"' in http.get("/partner/clients").text
        sample = http.get("/partner/clients/import/sample.csv")
        assert sample.status_code == 200 and sample.text.startswith("name,external_id,status,")

    def test_a_file_with_bad_lines_shows_each_lines_error_and_creates_nothing(self, http, partner):
        preview = upload(http, BAD)
        assert preview.status_code == 200
        assert "2 lines cannot be imported" in preview.text
        assert "missing_name" in preview.text and "unknown_status" in preview.text
        assert 'name="csv_text"' not in preview.text  # no apply button for a refused file
        assert clients_of(http, partner) == []

    def test_applying_creates_exactly_the_previewed_clients(self, http, partner):
        preview = upload(http, GOOD)
        assert "Every line can be imported: 2 clients would be created." in preview.text
        assert "The pool after the import" in preview.text
        assert clients_of(http, partner) == []  # a preview creates nothing
        applied = http.post(
            "/partner/clients/import/apply",
            data={"csrf_token": csrf_of(preview.text), "csv_text": apply_text(preview.text)},
        )
        assert applied.url.path == "/partner/clients" and "2 clients created." in applied.text
        assert sorted((c["name"], c["external_id"], c["status"]) for c in clients_of(http, partner)) == [
            ("Acme", "acme", "trial"),
            ("Globex", "globex", "setup"),
        ]

    def test_an_apply_that_no_longer_fits_is_refused_whole_in_a_sentence(self, http, partner):
        preview = upload(http, GOOD)
        text = apply_text(preview.text)
        # Someone imported the same external id in between: the whole file is refused.
        http.post("/api/1/clients", json={"name": "Early", "external_id": "acme"}, headers=partner.headers)
        refused = http.post(
            "/partner/clients/import/apply", data={"csrf_token": csrf_of(preview.text), "csv_text": text}
        )
        assert refused.url.path == "/partner/clients/import" and "Nothing was imported" in refused.text
        assert [c["name"] for c in clients_of(http, partner)] == ["Early"]

    @pytest.mark.parametrize(
        ("text", "said"),
        [
            (b"\xff\xfe not utf-8", "not UTF-8"),
            ("nom,status\r\nAcme,trial\r\n", "Unknown column"),
            # Once trimmed, the same column twice: which cell was meant cannot be known.
            ("name,prop.region,prop.region \r\nAcme,north,south\r\n", "named twice"),
            ("name,status\r\n", "no clients"),
            ("name\r\n" + "x" * 1_000_001, "larger than"),
        ],
    )
    def test_an_unreadable_file_is_refused_in_a_sentence(self, http, partner, text, said):
        refused = upload(http, text)
        assert refused.status_code == 200 and refused.url.path == "/partner/clients/import"
        assert said in refused.text and 'role="alert"' in refused.text
        assert clients_of(http, partner) == []

    def test_a_file_over_the_body_limit_is_refused_with_a_sentence_not_a_500(self, http, partner, settings):
        answer = upload_oversized(http, settings)
        assert answer.status_code == 413 and "larger than" in answer.json()["detail"]
        assert clients_of(http, partner) == []

    def test_a_file_over_the_body_limit_sent_from_the_browser_gets_a_page(self, http, partner, settings):
        answer = upload_oversized(http, settings, accept="text/html,application/xhtml+xml,*/*;q=0.8")
        assert answer.status_code == 413
        assert answer.headers["content-type"].startswith("text/html")
        assert "content-security-policy" in answer.headers  # a page like any other
        assert "<h1>Too large</h1>" in answer.text and "larger than" in answer.text
        assert clients_of(http, partner) == []

    def test_import_forms_without_their_token_are_refused(self, http, partner):
        answer = http.post(
            "/partner/clients/import", files={"file": ("c.csv", GOOD, "text/csv")}, follow_redirects=False
        )
        assert answer.status_code == 403
        answer = http.post("/partner/clients/import/apply", data={"csv_text": GOOD}, follow_redirects=False)
        assert answer.status_code == 403
        assert clients_of(http, partner) == []


@pytest.mark.usefixtures("partner_session")
class TestChangingTheStatusOfSelectedClients:
    def test_the_list_has_a_checkbox_per_client_and_the_action_bar(self, http, partner):
        client_id = new_client(http, partner, "setup")
        page = http.get("/partner/clients").text
        assert (
            f'name="client_ids" value="{client_id}"' in page
            and 'action="/partner/clients/bulk-status"' in page
        )
        assert 'id="select-all"' in page

    def test_a_dry_run_says_what_would_change_and_the_confirmation_does_it(self, http, partner):
        first, second = new_client(http, partner, "setup"), new_client(http, partner, "setup")
        page = http.get("/partner/clients")
        dry = http.post(
            "/partner/clients/bulk-status",
            data={
                "csrf_token": csrf_of(page.text),
                "client_ids": [str(first), str(second)],
                "status": "trial",
            },
        )
        assert dry.status_code == 200 and "2 of 2 clients would move to Trial" in dry.text
        assert "The pool after" in dry.text
        assert {c["status"] for c in clients_of(http, partner)} == {"setup"}
        done = http.post(
            "/partner/clients/bulk-status/confirm",
            data={
                "csrf_token": csrf_of(dry.text),
                "client_ids": [str(first), str(second)],
                "status": "trial",
                "reason": "Onboarding",
            },
        )
        assert done.url.path == "/partner/clients" and "2 clients moved to Trial." in done.text
        assert {c["status"] for c in clients_of(http, partner)} == {"trial"}

    def test_a_refused_change_names_the_client_and_changes_none(self, http, partner):
        fine = new_client(http, partner, "setup")
        empty = new_client(http, partner, "setup")  # no dashboard allocated: cannot be Active
        http.patch(
            f"/api/1/clients/{fine}",
            json={"resources": {"dashboards": 1, "users": 1}},
            headers=partner.headers,
        )
        page = http.get("/partner/clients")
        refused = http.post(
            "/partner/clients/bulk-status",
            data={
                "csrf_token": csrf_of(page.text),
                "client_ids": [str(fine), str(empty)],
                "status": "active",
            },
        )
        assert refused.url.path == "/partner/clients" and f"Client {empty}" in refused.text
        assert {c["status"] for c in clients_of(http, partner)} == {"setup"}

    @pytest.mark.parametrize(
        "fields",
        [
            {"status": "trial"},
            {"status": "sleeping", "client_ids": ["1"]},
            {"status": "trial_expired", "client_ids": ["1"]},
            {"status": "trial", "client_ids": ["x"]},
            {"status": "trial", "client_ids": ["1"], "reason": "bad\x00reason"},
        ],
    )
    def test_a_malformed_form_is_refused_in_a_sentence(self, http, partner, fields):
        client_id = new_client(http, partner, "setup")
        fields = {
            **fields,
            "client_ids": [str(client_id) if v == "1" else v for v in fields.get("client_ids", [])],
        }
        page = http.get("/partner/clients")
        refused = http.post(
            "/partner/clients/bulk-status/confirm", data={"csrf_token": csrf_of(page.text), **fields}
        )
        assert refused.url.path == "/partner/clients" and 'role="alert"' in refused.text
        assert {c["status"] for c in clients_of(http, partner)} == {"setup"}

    def test_another_partners_client_is_not_found_and_untouched(self, http, partner, make_partner):
        other = make_partner(dashboards=10, users=10, published_links=10, api_calls_per_day=1000)
        theirs = new_client(http, other, "setup")
        page = http.get("/partner/clients")
        refused = http.post(
            "/partner/clients/bulk-status/confirm",
            data={"csrf_token": csrf_of(page.text), "client_ids": [str(theirs)], "status": "disabled"},
        )
        assert f"No client {theirs}" in refused.text
        assert clients_of(http, other)[0]["status"] == "setup"

    def test_without_its_token_the_change_is_refused(self, http, partner):
        client_id = new_client(http, partner, "setup")
        answer = http.post(
            "/partner/clients/bulk-status/confirm",
            data={"client_ids": [str(client_id)], "status": "disabled"},
            follow_redirects=False,
        )
        assert answer.status_code == 403 and clients_of(http, partner)[0]["status"] == "setup"


@pytest.mark.parametrize("mode", ["view_only", "admin"])
def test_signed_in_as_a_client_the_partner_imports_and_changes_nothing(http, partner, partner_session, mode):
    client_id = new_client(http, partner, "trial")
    csrf = csrf_of(http.get("/partner/clients").text)
    assert enter(http, client_id, mode).status_code == 303
    for path, data in [
        ("/partner/clients/import/apply", {"csv_text": GOOD}),
        ("/partner/clients/bulk-status/confirm", {"client_ids": [str(client_id)], "status": "disabled"}),
    ]:
        answer = http.post(path, data={"csrf_token": csrf, **data}, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/app", path
    assert [(c["name"], c["status"]) for c in clients_of(http, partner)] == [("Client trial", "trial")]


def test_a_client_user_cannot_reach_the_import_page(http, partner):
    from tests.factories import add_user

    client_id = new_client(http, partner, "trial")
    add_user(http, partner, client_id, "user@client.test")
    assert sign_in(http, "user@client.test", PASSWORD).status_code == 303
    assert http.get("/partner/clients/import", follow_redirects=False).headers["location"] == "/app"


def test_a_partner_viewer_cannot_import_or_change_statuses(http, partner, database, clock):
    client_id = new_client(http, partner, "setup")
    add_partner_viewer(database, partner, clock)
    assert sign_in(http, "viewer@partner.test", PASSWORD).status_code == 303
    page = http.get("/partner/clients/import")
    assert page.status_code == 200 and 'enctype="multipart/form-data"' not in page.text
    csrf = csrf_of(page.text)
    refused = http.post("/partner/clients/import/apply", data={"csrf_token": csrf, "csv_text": GOOD})
    assert 'role="alert"' in refused.text
    refused = http.post(
        "/partner/clients/bulk-status/confirm",
        data={"csrf_token": csrf, "client_ids": [str(client_id)], "status": "disabled"},
    )
    assert 'role="alert"' in refused.text
    assert [c["status"] for c in clients_of(http, partner)] == ["setup"]


@pytest.mark.usefixtures("partner_session")
def test_the_import_page_shows_a_cell_of_thousands_of_digits_as_a_bad_line(http, partner):
    preview = upload(http, "name,users\r\nAcme,\r\nBeta," + "9" * 5000 + "\r\n")
    assert preview.status_code == 200, preview.text[:500]
    assert "1 line cannot be imported" in preview.text
    assert clients_of(http, partner) == []


@pytest.mark.usefixtures("partner_session")
def test_a_file_the_preview_accepts_can_be_applied_as_a_browser_sends_it_back(http, partner):
    """A browser submits a form field's line breaks as CRLF (HTML: "normalize newlines"), so an LF
    file's text comes back one character longer per line than the file the preview accepted."""
    props = ",".join(f"prop.p{i}" for i in range(50))
    header = f"name,{props}\n"
    width = (1_000_000 - len(header)) // 10  # each of the 10 lines, its LF included
    lines = []
    for i in range(10):
        name = f"Client {i} "
        value = "v" * ((width - len(name) - 1) // 50 - 1)
        name += "n" * (width - 1 - len(name) - 50 * (len(value) + 1))
        lines.append(name + ("," + value) * 50 + "\n")
    text = header + "".join(lines)
    assert len(text.encode()) <= 1_000_000 < len(text.replace("\n", "\r\n"))
    preview = upload(http, text)
    assert "Every line can be imported: 10 clients would be created." in preview.text, preview.text[-2000:]
    sent_back = apply_text(preview.text).replace("\r\n", "\n").replace("\n", "\r\n")
    applied = http.post(
        "/partner/clients/import/apply", data={"csrf_token": csrf_of(preview.text), "csv_text": sent_back}
    )
    assert "10 clients created." in applied.text, applied.text[-2000:]
    assert len(clients_of(http, partner)) == 10
