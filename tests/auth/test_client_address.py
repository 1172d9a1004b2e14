"""The client address the throttles count against (SPEC §12): the connection's, unless the peer is
a trusted proxy, and then the right-most `X-Forwarded-For` entry that is not a trusted proxy."""

from __future__ import annotations

from ipaddress import ip_network

import pytest
from pydantic import ValidationError

from tenantry.auth.addresses import client_address, throttled_address
from tenantry.settings import Settings

PROXIES = (ip_network("10.0.0.0/8"), ip_network("fd00::/8"))


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        # Not from a trusted proxy: the header is whatever the client chose to write.
        ("127.0.0.1", ["203.0.113.9"], "127.0.0.1"),
        ("198.51.100.7", ["203.0.113.9"], "198.51.100.7"),
        # From a trusted proxy: the entry it appended, never one to its left.
        ("10.0.0.2", ["203.0.113.9"], "203.0.113.9"),
        ("10.0.0.2", ["192.0.2.1, 203.0.113.9"], "203.0.113.9"),
        ("10.0.0.2", ["192.0.2.1", "203.0.113.9"], "203.0.113.9"),
        # Through two trusted proxies: past both.
        ("10.0.0.2", ["192.0.2.1, 203.0.113.9, 10.0.0.7"], "203.0.113.9"),
        # Ports and brackets, as some proxies write them; one address, one spelling.
        ("10.0.0.2", ["203.0.113.9:4711"], "203.0.113.9"),
        ("10.0.0.2", ["[2001:DB8::1]:443"], "2001:db8::1"),
        ("::ffff:10.0.0.2", ["::ffff:203.0.113.9"], "203.0.113.9"),
        # Nothing believable: the nearest trusted hop is counted, not a made-up address.
        ("10.0.0.2", [], "10.0.0.2"),
        ("10.0.0.2", ["not an address"], "10.0.0.2"),
        ("10.0.0.2", ["10.0.0.5"], "10.0.0.5"),
        # No socket address at all, or not an IP address (a test client, a Unix socket).
        (None, ["203.0.113.9"], "unknown"),
        ("testclient", ["203.0.113.9"], "testclient"),
    ],
)
def test_the_client_address(peer, forwarded_for, expected):
    assert client_address(peer, forwarded_for, PROXIES) == expected


def test_without_trusted_proxies_the_header_is_never_read():
    assert client_address("10.0.0.2", ["203.0.113.9"], ()) == "10.0.0.2"


def test_an_ipv6_client_is_counted_by_its_64():
    assert (
        throttled_address("2001:db8:1:2:aaaa::1")
        == throttled_address("2001:db8:1:2:bbbb::2")
        == "2001:db8:1:2::/64"
    )
    assert throttled_address("203.0.113.9") == "203.0.113.9"


def test_trusted_proxies_are_read_from_a_comma_separated_setting():
    settings = Settings(trusted_proxies=" 10.0.0.0/8, 192.0.2.10 ,fd00::/8", _env_file=None)  # type: ignore[call-arg]
    assert [str(n) for n in settings.trusted_proxy_networks] == ["10.0.0.0/8", "192.0.2.10/32", "fd00::/8"]
    assert Settings(_env_file=None).trusted_proxy_networks == ()  # type: ignore[call-arg]


def test_a_trusted_proxy_that_is_not_an_address_is_refused_at_start():
    with pytest.raises(ValidationError, match=r"'proxy\.local' is not an IP address or a CIDR"):
        Settings(trusted_proxies="10.0.0.0/8,proxy.local", _env_file=None)  # type: ignore[call-arg]
