"""A client's logo uploaded from several requests at once (PostgreSQL, where requests run at once):
each upload takes its turn and is answered 200, never 500 on the one row a client's logo has."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from tenantry.db.branding_models import ClientLogo
from tests.branding.images import png
from tests.concurrently import at_once, statuses
from tests.factories import new_client


@pytest.mark.postgres
def test_one_clients_logo_uploaded_from_several_requests_at_once_answers_each_200(
    server_url, partner, database
):
    if not database.url.startswith("postgresql"):
        pytest.skip("SQLite runs one write transaction at a time: there is no race")
    with httpx.Client(base_url=server_url, headers=partner.headers, timeout=60) as http:
        ids = [new_client(http, partner, "setup") for _ in range(6)]

    def call(client: httpx.Client, round_: int, i: int) -> httpx.Response:
        return client.put(
            f"/api/1/clients/{ids[round_]}/branding/logo",
            content=png(colour=(i * 20, 10, 10)),
            headers={"Content-Type": "image/png"},
        )

    answers = at_once(server_url, lambda i: partner.headers, call)
    assert statuses(answers) == {200: len(answers)}
    with database.session() as db:
        kept = db.scalars(select(ClientLogo.client_id).order_by(ClientLogo.client_id)).all()
    assert kept == sorted(ids)  # one row each
