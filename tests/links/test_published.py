"""Published links (SPEC §4 "create/view published links", §9): the API and the public page."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from tenantry.db.dashboard_models import PublishedLink
from tests.content import ACTIVE_RESOURCES, create_dashboard, dashboard_in, inline_source, path_of, publish
from tests.factories import set_status

UNAVAILABLE = "This dashboard is not available"


class TestCreatingALink:
    @pytest.mark.parametrize(
        ("status", "expected"),
        [("setup", 409), ("trial", 201), ("trial_expired", 409), ("active", 201), ("disabled", 409)],
    )
    def test_links_are_created_only_in_trial_and_active(self, http, partner, clock, status, expected):
        client_id, _, dashboard_id = dashboard_in(http, partner, status, clock)
        response = publish(http, partner, dashboard_id)
        assert response.status_code == expected
        used = http.get(f"/api/1/clients/{client_id}", headers=partner.headers).json()["usage"][
            "published_links"
        ]
        if expected == 201:
            body = response.json()
            assert body["protected"] is False
            assert body["url"].startswith("http://127.0.0.1:8000/published/")
            assert used == 1
        else:
            assert response.json()["code"] == "status_forbids"
            assert used == 0

    def test_the_token_is_long_random_and_stored_only_as_a_hash(self, http, partner, db):
        _, _, dashboard_id = dashboard_in(http, partner, "active")
        token = path_of(publish(http, partner, dashboard_id).json()).removeprefix("/published/")
        assert len(token) >= 43  # 32 random bytes, URL-safe base64
        stored = db.scalars(select(PublishedLink)).one()
        assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token not in (stored.token_prefix * 2)

    def test_links_are_limited_by_the_allocation_and_revoking_gives_one_back(self, http, partner):
        _, _, dashboard_id = dashboard_in(http, partner, "active")
        links = [publish(http, partner, dashboard_id) for _ in range(3)]
        assert [r.status_code for r in links] == [201, 201, 201]
        refused = publish(http, partner, dashboard_id)
        assert refused.status_code == 409
        assert refused.json()["code"] == "allocation_exceeded"
        assert (
            http.delete(
                f"/api/1/published-links/{links[0].json()['id']}", headers=partner.headers
            ).status_code
            == 204
        )
        assert publish(http, partner, dashboard_id).status_code == 201

    def test_the_list_shows_revoked_links_without_their_secret_urls(self, http, partner):
        _, _, dashboard_id = dashboard_in(http, partner, "active")
        link = publish(http, partner, dashboard_id, password="open sesame").json()
        http.delete(f"/api/1/published-links/{link['id']}", headers=partner.headers)
        listing = http.get(
            f"/api/1/dashboards/{dashboard_id}/published-links", headers=partner.headers
        ).json()
        assert listing["total"] == 1
        (item,) = listing["items"]
        assert item["url"] is None
        assert item["protected"] is True
        assert item["revoked_at"] is not None

    def test_another_partner_cannot_revoke_a_link(self, http, partner, make_partner):
        _, _, dashboard_id = dashboard_in(http, partner, "active")
        link = publish(http, partner, dashboard_id).json()
        other = make_partner()
        assert http.delete(f"/api/1/published-links/{link['id']}", headers=other.headers).status_code == 404


class TestViewingALink:
    def test_the_page_shows_the_live_dashboard_and_is_not_indexed(self, http, partner, clock, db):
        _, _, dashboard_id = dashboard_in(http, partner, "active")
        link = publish(http, partner, dashboard_id).json()
        clock.advance(minutes=5)
        page = http.get(path_of(link))
        assert page.status_code == 200
        assert page.headers["x-robots-tag"].startswith("noindex")
        assert page.text.count("<svg") == 5
        assert "By month" in page.text
        assert "<script src" not in page.text  # self-contained: nothing fetched from elsewhere
        assert "default-src 'none'" in page.headers["content-security-policy"]
        accessed = http.get(
            f"/api/1/dashboards/{dashboard_id}/published-links", headers=partner.headers
        ).json()
        assert accessed["items"][0]["last_accessed_at"] == clock.now().isoformat().replace("+00:00", "Z")

    def test_the_page_follows_the_client_status_on_every_request(self, http, partner, clock):
        client_id, _, dashboard_id = dashboard_in(http, partner, "active")
        keep = path_of(publish(http, partner, dashboard_id).json())
        revoked = publish(http, partner, dashboard_id).json()
        http.delete(f"/api/1/published-links/{revoked['id']}", headers=partner.headers)
        assert http.get(keep).status_code == 200
        set_status(http, partner, client_id, "disabled")
        closed = http.get(keep)
        assert closed.status_code == 403
        assert UNAVAILABLE in closed.text
        assert "Sales" not in closed.text and "<svg" not in closed.text
        assert closed.headers["x-robots-tag"].startswith("noindex")
        set_status(http, partner, client_id, "active", resources=ACTIVE_RESOURCES)
        assert http.get(keep).status_code == 200
        assert http.get(path_of(revoked)).status_code == 404

    def test_an_expired_trial_closes_its_links(self, http, partner, clock):
        _, _, dashboard_id = dashboard_in(http, partner, "trial")
        link = path_of(publish(http, partner, dashboard_id).json())
        assert http.get(link).status_code == 200
        clock.advance(days=14)
        response = http.get(link)
        assert response.status_code == 403
        assert UNAVAILABLE in response.text

    @pytest.mark.parametrize("token", ["nope", "x" * 43, "A" * 200])
    def test_an_unknown_token_shows_the_same_neutral_page(self, http, partner, token):
        response = http.get(f"/published/{token}")
        assert response.status_code == 404
        assert UNAVAILABLE in response.text

    def test_the_page_polls_a_version_that_changes_when_the_data_does(self, http, partner):
        _, source_id, dashboard_id = dashboard_in(http, partner, "active")
        link = path_of(publish(http, partner, dashboard_id).json())
        first = http.get(f"{link}/live").json()
        assert first["available"] is True and first["html"].count("<svg") == 5
        same = http.get(f"{link}/live", params={"v": first["version"]}).json()
        assert same == {"available": True, "version": first["version"]}
        http.patch(
            f"/api/1/datasources/{source_id}",
            json={"rows": [{"month": "Dec", "region": "East", "sales": 7}]},
            headers=partner.headers,
        )
        changed = http.get(f"{link}/live", params={"v": first["version"]}).json()
        assert changed["version"] != first["version"]
        assert "Dec" in changed["html"]


class TestPasswordProtectedLinks:
    def test_the_password_is_asked_then_remembered(self, http, partner, database):
        _, _, dashboard_id = dashboard_in(http, partner, "active")
        link = publish(http, partner, dashboard_id, password="open sesame").json()
        assert link["protected"] is True
        with database.session() as session:
            assert session.scalars(select(PublishedLink.password_hash)).one().startswith("$argon2")
        form = http.get(path_of(link))
        assert form.status_code == 401
        assert 'type="password"' in form.text and "<svg" not in form.text
        assert http.get(f"{path_of(link)}/live").status_code == 401
        wrong = http.post(path_of(link), data={"password": "guess"})
        assert wrong.status_code == 401
        right = http.post(path_of(link), data={"password": "open sesame"}, follow_redirects=False)
        assert right.status_code == 303
        assert http.get(path_of(link)).text.count("<svg") == 5

    def test_password_guesses_are_throttled(self, http, partner, clock):
        _, _, dashboard_id = dashboard_in(http, partner, "active")
        link = path_of(publish(http, partner, dashboard_id, password="open sesame").json())
        codes = [http.post(link, data={"password": f"guess {i}"}).status_code for i in range(5)]
        assert codes == [401] * 5
        locked = http.post(link, data={"password": "open sesame"})
        assert locked.status_code == 429
        clock.advance(timedelta(minutes=16))
        assert http.post(link, data={"password": "open sesame"}, follow_redirects=False).status_code == 303


class TestThePartnersOwnLinks:
    def test_the_partners_own_dashboard_can_be_published_within_the_pool(self, http, make_partner):
        partner = make_partner(published_links=1)
        source_id = inline_source(http, partner, None)
        dashboard_id = create_dashboard(http, partner, None, source_id).json()["id"]
        link = publish(http, partner, dashboard_id)
        assert link.status_code == 201
        assert http.get(path_of(link.json())).status_code == 200
        refused = publish(http, partner, dashboard_id)
        assert refused.json()["code"] == "pool_exhausted"
        pool = http.get("/api/1/partner", headers=partner.headers).json()["pool"]["published_links"]
        assert pool["used_by_partner"] == 1


class TestThePagesOneRead:
    """The page reads its link and the dashboard's klips in one statement on the event loop; it
    finds what the link's and the klips' own reads find."""

    def test_klips_in_their_order_none_for_an_empty_dashboard_and_none_for_a_revoked_link(
        self, http, partner, database
    ):
        import asyncio

        from tenantry.db.reads import DatabaseReads
        from tenantry.links import repository
        from tenantry.links.service import hash_link_token

        client_id, source_id, full = dashboard_in(http, partner, "active")
        empty = create_dashboard(http, partner, client_id, source_id, klips=[], name="Empty").json()["id"]
        links = [publish(http, partner, board).json() for board in (full, empty, full)]
        http.delete(f"/api/1/published-links/{links[2]['id']}", headers=partner.headers)
        hashes = [hash_link_token(path_of(link).rsplit("/", 1)[1]) for link in links]
        with database.reader() as conn:
            expected = [repository.public_link(conn, token_hash) for token_hash in hashes]
        database_reads = DatabaseReads(database, max_size=2, timeout=5)

        async def read_all() -> list[repository.PublicLink | None]:
            try:
                async with database_reads.connection() as reads:
                    return [await repository.public_link_async(reads, token_hash) for token_hash in hashes]
            finally:
                await database_reads.close()

        got = asyncio.run(read_all())
        assert got == expected
        assert [len(found.klips) for found in got if found] == [5, 0, 0]
        assert [klip.title for klip in got[0].klips] == [klip.title for klip in expected[0].klips]

    def test_a_link_is_made_once_while_nothing_it_shows_changes(self, http, partner, database):
        import asyncio

        from tenantry.db.reads import DatabaseReads
        from tenantry.links import repository
        from tenantry.links.service import hash_link_token

        client_id, source_id, board = dashboard_in(http, partner, "active")
        link = publish(http, partner, board, allowed_origins=["https://shop.example"]).json()
        token_hash = hash_link_token(path_of(link).rsplit("/", 1)[1])
        database_reads = DatabaseReads(database, max_size=2, timeout=5)

        async def read() -> repository.PublicLink | None:
            try:
                async with database_reads.connection() as reads:
                    return await repository.public_link_async(reads, token_hash)
            finally:
                await database_reads.close()

        first, again = asyncio.run(read()), asyncio.run(read())
        assert first is again  # the same rows: the same link, its page's versions with it
        assert first.allowed_origins == ["https://shop.example"] and first.dashboard.filters == []
        http.patch(
            f"/api/1/datasources/{source_id}",
            json={"rows": [{"month": "Dec", "sales": 7}]},
            headers=partner.headers,
        )
        refreshed = asyncio.run(read())
        assert refreshed is not first and refreshed.klips[0].version != first.klips[0].version
        set_status(http, partner, client_id, "disabled")
        disabled = asyncio.run(read())
        assert disabled.client_status == "disabled" and refreshed.client_status == "active"
