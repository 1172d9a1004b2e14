"""`tenantry domain verify` and `tenantry domain list`, run as the operator runs them."""

from __future__ import annotations

from tests.servers import tenantry


def test_verify_marks_a_partners_domain_verified_and_list_shows_it(
    http, make_partner, database_url, tmp_path, at
):
    partner = make_partner()
    for name in ("portal.agency.test", "other.agency.test"):
        assert http.post(
            "/api/1/partner/domains", json={"hostname": name}, headers=partner.headers
        ).is_success
    assert http.get("/internal/tls-ask", params={"domain": "portal.agency.test"}).status_code == 404

    result = tenantry("domain", "verify", "Portal.Agency.Test.", url=database_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "portal.agency.test is verified" in result.stdout

    listed = tenantry("domain", "list", url=database_url, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        f"portal.agency.test\t{partner.id}\tverified",
        f"other.agency.test\t{partner.id}\tunverified",
    ]
    # The app under test reads its table on every request: the running server serves it now.
    assert http.get("/internal/tls-ask", params={"domain": "portal.agency.test"}).status_code == 200
    domains = http.get("/api/1/partner/domains", headers=partner.headers).json()["items"]
    assert [d["verified"] for d in domains] == [True, False]


def test_verifying_a_name_no_partner_added_fails_in_one_line(database_url, database, tmp_path):
    result = tenantry("domain", "verify", "nobody.example", url=database_url, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: No partner has added the domain nobody.example."]


def test_verifying_something_that_is_no_host_name_fails_in_one_line(database_url, database, tmp_path):
    result = tenantry("domain", "verify", "http://x", url=database_url, cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error: Not a host name")
