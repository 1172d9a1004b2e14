"""The table of verified domains each process keeps (tenantry.domains.routing): read again every
few seconds, bounded by the verified domains whatever hosts are asked for."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from fastapi.testclient import TestClient

from tenantry.app import create_app
from tenantry.domains.names import request_host
from tenantry.domains.routing import HostTable


class Ticking:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def table(hosts: dict[str, int], ttl: float = 5.0) -> tuple[HostTable, Ticking]:
    clock = Ticking()

    async def load() -> dict[str, int]:
        return dict(hosts)

    return HostTable(load, ttl, clock), clock


def test_random_hosts_cause_no_read_and_store_nothing():
    hosts, _ = table({"a.agency.test": 1})

    async def ask() -> list[int | None]:
        return [await hosts.partner_of(f"{secrets.token_hex(8)}.example") for _ in range(10_000)]

    assert set(asyncio.run(ask())) == {None}
    assert hosts.loads == 1
    assert len(hosts) == 1


def test_a_change_elsewhere_is_seen_once_the_table_is_older_than_its_ttl():
    verified = {"a.agency.test": 1}
    hosts, clock = table(verified)

    async def partner_of(name: str) -> int | None:
        return await hosts.partner_of(name)

    assert asyncio.run(partner_of("a.agency.test")) == 1
    verified["b.agency.test"] = 2
    del verified["a.agency.test"]
    clock.now += 4.9
    assert asyncio.run(partner_of("b.agency.test")) is None
    assert asyncio.run(partner_of("a.agency.test")) == 1
    clock.now += 0.2
    assert asyncio.run(partner_of("b.agency.test")) == 2
    assert asyncio.run(partner_of("a.agency.test")) is None
    assert hosts.loads == 2


def test_a_change_in_this_process_is_seen_at_once():
    verified = {"a.agency.test": 1}
    hosts, _ = table(verified)
    assert asyncio.run(hosts.partner_of("b.agency.test")) is None
    verified["b.agency.test"] = 2
    hosts.invalidate()
    assert asyncio.run(hosts.partner_of("b.agency.test")) == 2


def test_a_failed_read_keeps_the_table_as_it_was():
    calls = {"n": 0}
    clock = Ticking()

    async def load() -> dict[str, int]:
        calls["n"] += 1
        if calls["n"] > 1:
            raise ConnectionError("database away")
        return {"a.agency.test": 1}

    hosts = HostTable(load, 5.0, clock)
    assert asyncio.run(hosts.partner_of("a.agency.test")) == 1
    clock.now += 10
    assert asyncio.run(hosts.partner_of("a.agency.test")) == 1


def test_with_no_table_yet_a_failed_read_fails_the_request():
    async def load() -> dict[str, int]:
        raise ConnectionError("database away")

    hosts = HostTable(load, 5.0)
    with pytest.raises(ConnectionError):
        asyncio.run(hosts.partner_of("a.agency.test"))


@pytest.mark.parametrize(
    ("header", "host"),
    [
        (b"Agency.Example:8443", "agency.example"),
        (b"agency.example.", "agency.example"),
        (b"[::1]:8000", ""),
        (b"127.0.0.1:8000", "127.0.0.1"),
        (b"", ""),
    ],
)
def test_a_host_header_is_read_as_domains_are_kept(header, host):
    assert request_host(header) == host


def test_requests_with_random_hosts_leave_the_apps_table_as_it_was(settings, clock, database, make_partner):
    partner = make_partner()
    app = create_app(settings, clock=clock, database=database)  # the shipped 5-second table
    with TestClient(app) as client:
        created = client.post(
            "/api/1/partner/domains", json={"hostname": "a.agency.test"}, headers=partner.headers
        )
        assert created.status_code == 201
        for _ in range(300):
            client.get("/login", headers={"Host": f"{secrets.token_hex(6)}.example"})
        assert app.state.hosts.loads <= 2  # at start, and after the domain was added
        assert len(app.state.hosts) == 0  # nothing verified yet: nothing kept


def test_a_change_made_while_the_table_is_being_read_is_not_missed():
    verified = {"a.agency.test": 1}
    hosts: HostTable

    async def load() -> dict[str, int]:
        snapshot = dict(verified)
        # The change lands (and is announced) while this read is on its way.
        verified["b.agency.test"] = 2
        hosts.invalidate()
        return snapshot

    hosts = HostTable(load, 60.0, Ticking())

    async def partner_of(name: str) -> int | None:
        return await hosts.partner_of(name)

    assert asyncio.run(partner_of("a.agency.test")) == 1
    assert asyncio.run(partner_of("b.agency.test")) == 2
