"""The outgoing-request guard (SPEC §12 "Outgoing requests", "Deadlines are totals"), against real
HTTP servers on loopback. Loopback is refused unless an allow-list opens it, so most requests
here use a guard that allows 127.0.0.1 (standing for a public server) and test what it still
refuses; the refusals themselves are tested with the guard as it ships, allowing nothing."""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import ipaddress
import socket
import struct
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tenantry.datasources.fetch import FetchError, fetch_rows
from tenantry.outbound import AllowList, BodyTooLarge, Guard, OutboundError, is_public, parse_address
from tenantry.settings import Settings
from tests.servers import free_port, local_http_server, port_of

LOOPBACK = Guard(AllowList.parse("127.0.0.1"))
SHIPPED = Guard()


class Server:
    """A real HTTP server; each path answers as the test says, and every request is recorded."""

    def __init__(self) -> None:
        self.base = ""
        self.hits: list[tuple[str, str]] = []  # (path, Host header)
        self.accept_encodings: list[str | None] = []  # the Accept-Encoding header of each request
        self.redirects: dict[str, str] = {}
        self.answers: dict[str, tuple[dict[str, str], bytes]] = {}  # path: (headers, body)
        self.release = threading.Event()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        state = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                state.hits.append((self.path, self.headers.get("Host", "")))
                state.accept_encodings.append(self.headers.get("Accept-Encoding"))
                if self.path in state.answers:
                    headers, body = state.answers[self.path]
                    self.send_response(200)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    with contextlib.suppress(OSError):  # the client stopped reading
                        self.wfile.write(body)
                elif self.path in state.redirects:
                    self.send_response(302)
                    self.send_header("Location", state.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif self.path.startswith("/drip"):
                    # Headers at once, then one byte every 0.2 s for 20 s: no single read ever
                    # waits long, so only a total deadline ends it.
                    self.send_response(200)
                    self.send_header("Content-Type", "text/csv")
                    self.send_header("Content-Length", "100")
                    self.end_headers()
                    for _ in range(100):
                        if state.release.wait(0.2):
                            return
                        try:
                            self.wfile.write(b"a")
                            self.wfile.flush()
                        except OSError:
                            return
                elif self.path == "/reset":
                    # Close at once with a zero linger: the client gets a reset, not an answer.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.rfile.close()
                    self.wfile.close()
                    self.connection.close()
                    self.close_connection = True
                    # The server flushes and closes the answer's stream after this: a throwaway one,
                    # not the closed socket's (which would print a traceback from its thread).
                    self.wfile = io.BytesIO()
                else:
                    body = b"a,b\n1,2\n"
                    self.send_response(403 if self.path == "/forbidden" else 200)
                    self.send_header("Content-Type", "text/csv")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()
    with local_http_server(state.handler()) as base:
        state.base = base
        try:
            yield state
        finally:
            state.release.set()


@pytest.fixture
def second_loopback_server() -> Iterator[Server]:
    """A server on 127.0.0.2: with 127.0.0.2 (only) allowed, it stands for a public host."""
    state = Server()
    httpd = ThreadingHTTPServer(("127.0.0.2", 0), state.handler())
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.base = f"http://127.0.0.2:{httpd.server_address[1]}"
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()


class TestAddresses:
    @pytest.mark.parametrize(
        "spelling", ["127.0.0.1", "127.1", "2130706433", "0177.0.0.1", "0x7f000001", "0x7f.1", "127.0.0.1."]
    )
    def test_every_spelling_of_loopback_is_read_as_loopback(self, spelling):
        assert parse_address(spelling) == ipaddress.ip_address("127.0.0.1")

    @pytest.mark.parametrize(
        "address",
        [
            "127.0.0.1",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "192.0.2.1",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
            "2001::1",
            "2001:db8::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
        ],
    )
    def test_non_public_addresses_are_refused(self, address):
        assert not is_public(ipaddress.ip_address(address))

    @pytest.mark.parametrize(
        "address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
    )
    def test_public_addresses_are_allowed(self, address):
        assert is_public(ipaddress.ip_address(address))

    @pytest.mark.parametrize(
        "url",
        [
            "http://127.1:8000/x.csv",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://0x7f000001/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::1]:8000/",
            "http://0.0.0.0/",
            "http://169.254.169.254/latest/meta-data/",
            "http://evil@93.184.216.34/",
            "http://user:pass@example.com/",
            "ftp://example.com/x.csv",
            "file:///etc/passwd",
            "http://\U0001f4a9.la/hook",  # IDNA 2003 only: no request can be built for it
            "http://xn--ls8h.la/hook",
        ],
    )
    def test_a_url_with_a_refused_address_user_information_or_another_scheme_is_refused(self, url):
        assert SHIPPED.url_problem(url) is not None

    @pytest.mark.parametrize("url", ["https://example.com/data.csv", "http://93.184.216.34:8080/x"])
    def test_a_public_url_passes(self, url):
        assert SHIPPED.url_problem(url) is None

    def test_the_allow_list_opens_networks_and_names_on_purpose(self):
        guard = Guard(AllowList.parse("10.0.0.0/8, reports.internal, 127.0.0.1"))
        assert guard.url_problem("http://10.2.3.4/x") is None
        assert guard.url_problem("http://127.1/x") is None
        assert guard.url_problem("http://REPORTS.internal./x") is None
        assert guard.url_problem("http://192.168.0.1/x") is not None

    @pytest.mark.parametrize("entry", ["10.0.0.0/33", "not a host!", "a..b"])
    def test_a_bad_allow_list_entry_is_refused_at_start(self, entry):
        with pytest.raises(ValueError, match="outbound_allow"):
            Settings(outbound_allow=entry, _env_file=None)  # type: ignore[call-arg]


class TestConnecting:
    @pytest.mark.parametrize("host", ["localhost", "127.1", "0x7f000001", "[::ffff:127.0.0.1]"])
    def test_loopback_is_not_reached_by_name_or_odd_spelling(self, server, host):
        with pytest.raises(OutboundError, match=r"^address not allowed$") as refused:
            SHIPPED.request("GET", f"http://{host}:{port_of(server.base)}/x.csv", max_bytes=100)
        assert refused.value.permanent
        assert server.hits == []

    def test_the_checked_address_is_connected_to_and_the_name_kept_for_the_host(self, server):
        """No second lookup: a resolver that answers differently the second time is asked once."""
        answers = iter([["127.0.0.1"], ["127.0.0.3"]])
        asked = []

        def resolve(host, port):
            asked.append(host)
            return next(answers)

        guard = Guard(AllowList.parse("127.0.0.1"), resolve=resolve)
        answer = guard.request("GET", f"http://data.example.test:{port_of(server.base)}/x.csv", max_bytes=100)
        assert answer.body == b"a,b\n1,2\n"
        assert asked == ["data.example.test"]
        assert server.hits == [("/x.csv", f"data.example.test:{port_of(server.base)}")]

    def test_a_name_with_one_refused_address_is_reached_only_on_the_allowed_one(self, server):
        guard = Guard(AllowList.parse("127.0.0.1"), resolve=lambda host, port: ["10.0.0.1", "127.0.0.1"])
        answer = guard.request("GET", f"http://mixed.example.test:{port_of(server.base)}/", max_bytes=100)
        assert answer.status_code == 200

    def test_every_redirect_hop_is_checked_again(self, server, second_loopback_server):
        public = second_loopback_server
        public.redirects["/start"] = server.base + "/secret"
        guard = Guard(AllowList.parse("127.0.0.2"))
        with pytest.raises(FetchError, match=r"^address not allowed$"):
            fetch_rows(public.base + "/start", "csv", guard=guard)
        assert [path for path, _ in public.hits] == ["/start"]
        assert server.hits == []

    @pytest.mark.parametrize(
        "target", ["http://{host}/x", "ftp://example.com/x", "http://u:p@127.0.0.2:{port}/x"]
    )
    def test_a_redirect_to_a_refused_address_scheme_or_user_information_is_not_followed(
        self, second_loopback_server, target
    ):
        public = second_loopback_server
        port = port_of(public.base)
        public.redirects["/go"] = target.format(host=f"127.0.0.1:{port}", port=port)
        guard = Guard(AllowList.parse("127.0.0.2"))
        with pytest.raises(OutboundError, match=r"^address not allowed$"):
            guard.request("GET", public.base + "/go", max_bytes=100, follow_redirects=True)
        assert len(public.hits) == 1

    def test_redirects_are_followed_five_times_at_most(self, server):
        for n in range(7):
            server.redirects[f"/r{n}"] = f"{server.base}/r{n + 1}"
        assert LOOPBACK.request("GET", server.base + "/r2", max_bytes=100, follow_redirects=True).body
        with pytest.raises(OutboundError, match=r"^too many redirects$"):
            LOOPBACK.request("GET", server.base + "/r0", max_bytes=100, follow_redirects=True)
        assert len(server.hits) == 6 + 6

    @pytest.mark.parametrize(
        "url", ["http://[::1/x", "http://a\x00b/x", "gopher://example.com/", "http://xn--ls8h.la/hook"]
    )
    def test_a_url_that_cannot_be_used_fails_for_good_without_a_crash(self, url):
        with pytest.raises(OutboundError, match=r"^address not allowed$") as refused:
            SHIPPED.request("GET", url, deadline_seconds=1)
        assert refused.value.permanent

    def test_a_proxy_from_the_environment_is_not_used(self, server, monkeypatch):
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
        monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
        assert LOOPBACK.request("GET", server.base + "/x.csv", max_bytes=100).status_code == 200


class TestFixedWords:
    def test_a_closed_port_and_a_reset_connection_read_the_same(self, server):
        closed = free_port()
        errors = set()
        for url in (f"http://127.0.0.1:{closed}/x.csv", server.base + "/reset"):
            with pytest.raises(FetchError) as failed:
                fetch_rows(url, "csv", guard=LOOPBACK, timeout=5)
            errors.add(str(failed.value))
        assert errors == {"could not connect"}

    def test_an_http_error_reads_as_its_status_only(self, server):
        with pytest.raises(FetchError, match=r"^HTTP 403$"):
            fetch_rows(server.base + "/forbidden", "csv", guard=LOOPBACK)


class TestDeadlines:
    def test_a_server_that_drips_is_cut_off_at_the_total_deadline(self, server):
        started = time.monotonic()
        with pytest.raises(FetchError, match=r"^timed out$"):
            fetch_rows(server.base + "/drip", "csv", guard=LOOPBACK, timeout=1.0)
        assert time.monotonic() - started < 2.5

    def test_a_webhook_receiver_that_drips_is_cut_off_at_the_total_deadline(self):
        release = threading.Event()

        class Dripping(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                for _ in range(100):  # the status line, a byte every 0.2 s
                    if release.wait(0.2):
                        return
                    try:
                        self.wfile.write(b"H")
                        self.wfile.flush()
                    except OSError:
                        return

            def log_message(self, *args: Any) -> None:
                pass

        from tenantry.webhooks import sending

        with local_http_server(Dripping) as base:
            try:
                started = time.monotonic()
                result = sending.post(LOOPBACK, base + "/hook", b"{}", {}, timeout=1.0)
                elapsed = time.monotonic() - started
            finally:
                release.set()
        assert (result.ok, result.error) == (False, "timed out")
        assert elapsed < 2.5

    def test_a_name_lookup_that_hangs_ends_at_the_deadline(self):
        def hanging(host, port):
            time.sleep(5)
            return ["127.0.0.1"]

        guard = Guard(AllowList.parse("127.0.0.1"), resolve=hanging)
        started = time.monotonic()
        with pytest.raises(OutboundError, match=r"^timed out$"):
            guard.request("GET", "http://slow-dns.example.test/", deadline_seconds=0.5)
        assert time.monotonic() - started < 1.5


CAP = 5 * 1024 * 1024  # a url source's download cap (SPEC §12), tenantry.datasources.fetch.MAX_BYTES
CSV = b"a,b\n" + b"".join(b"%d,%d\n" % (n, n * n) for n in range(2000))


def _gzip_stream(chunks: Iterator[bytes] | list[bytes]) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    return b"".join([packer.compress(chunk) for chunk in chunks] + [packer.flush()])


@functools.cache
def _zeros_gzipped(megabytes: int) -> bytes:
    """About 1 KB on the wire per MB it unpacks to."""
    return _gzip_stream([bytes(1 << 20)] * megabytes)


def _peak_growth(call: Any) -> tuple[Any, int]:
    """What `call()` answered or raised, and the most memory Python allocated meanwhile (zlib's
    output goes into bytes objects, so tracemalloc sees what decoding allocates)."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        try:
            outcome: Any = call()
        except Exception as exc:
            outcome = exc
        return outcome, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


class TestContentEncoding:
    """A compressed answer is decoded here, a bounded piece at a time, and counted against the cap
    as it is decoded: httpx would decode a whole network read in one go, and stack codings, so a
    1 KB answer could take hundreds of MB before the cap was counted."""

    def test_servers_are_asked_for_the_answer_as_it_is_unless_the_caller_asks_otherwise(self, server):
        LOOPBACK.request("GET", server.base + "/x.csv", max_bytes=100)
        LOOPBACK.request("GET", server.base + "/x.csv", max_bytes=100, headers={"Accept-Encoding": "gzip"})
        assert server.accept_encodings == ["identity", "gzip"]

    def test_the_request_after_a_redirect_still_asks_for_identity(self, server):
        server.redirects["/from"] = server.base + "/x.csv"
        LOOPBACK.request("GET", server.base + "/from", max_bytes=100, follow_redirects=True)
        assert server.accept_encodings == ["identity", "identity"]

    @pytest.mark.parametrize(
        ("coding", "pack"),
        [
            ("gzip", gzip.compress),
            ("x-gzip", gzip.compress),
            ("GZIP", gzip.compress),
            ("deflate", zlib.compress),  # as meant: zlib-wrapped
            ("deflate", lambda data: zlib.compress(data)[2:-4]),  # as some servers send it: raw
            ("identity", lambda data: data),
        ],
    )
    def test_a_compressed_answer_under_the_cap_reads_as_it_was_before_compression(self, server, coding, pack):
        server.answers["/packed.csv"] = ({"Content-Type": "text/csv", "Content-Encoding": coding}, pack(CSV))
        answer = LOOPBACK.request("GET", server.base + "/packed.csv", max_bytes=len(CSV))
        assert answer.body == CSV
        rows = fetch_rows(server.base + "/packed.csv", "csv", guard=LOOPBACK)
        assert len(rows) == 2000 and rows[-1] == {"a": 1999, "b": 1999 * 1999}

    def test_the_cap_counts_the_decoded_bytes_to_the_byte(self, server):
        server.answers["/packed.csv"] = ({"Content-Encoding": "gzip"}, gzip.compress(CSV))
        assert LOOPBACK.request("GET", server.base + "/packed.csv", max_bytes=len(CSV)).body == CSV
        with pytest.raises(BodyTooLarge):
            LOOPBACK.request("GET", server.base + "/packed.csv", max_bytes=len(CSV) - 1)

    def test_an_answer_that_unpacks_past_the_cap_is_cut_off_at_the_cap_without_memory_growing(self, server):
        body = _zeros_gzipped(256)  # 250 KB on the wire, 256 MB unpacked
        server.answers["/bomb.csv"] = ({"Content-Type": "text/csv", "Content-Encoding": "gzip"}, body)
        refused, peak = _peak_growth(
            lambda: LOOPBACK.request("GET", server.base + "/bomb.csv", max_bytes=CAP)
        )
        assert isinstance(refused, BodyTooLarge), refused
        # At most the cap and a little more is ever decoded and kept (decoding a network read whole
        # took 60 MB and more here).
        assert peak < 3 * CAP, peak
        with pytest.raises(FetchError, match=r"^The data is larger than the 5 MB limit\.$"):
            fetch_rows(server.base + "/bomb.csv", "csv", guard=LOOPBACK)

    def test_an_answer_in_two_codings_is_refused_before_any_of_it_is_decoded(self, server):
        body = gzip.compress(_zeros_gzipped(256), 9)  # under 1 KB on the wire, 256 MB unpacked twice
        assert len(body) < 4096
        server.answers["/twice.csv"] = ({"Content-Type": "text/csv", "Content-Encoding": "gzip, gzip"}, body)
        refused, peak = _peak_growth(
            lambda: LOOPBACK.request("GET", server.base + "/twice.csv", max_bytes=CAP)
        )
        assert isinstance(refused, OutboundError) and str(refused) == "unsupported content encoding", refused
        assert peak < CAP, peak
        with pytest.raises(FetchError, match=r"^unsupported content encoding$"):
            fetch_rows(server.base + "/twice.csv", "csv", guard=LOOPBACK)

    @pytest.mark.parametrize("header", ["gzip, gzip", "gzip, identity, deflate", "br", "zstd", "compress"])
    def test_stacked_or_unknown_codings_are_refused_in_fixed_words(self, server, header):
        server.answers["/odd.csv"] = ({"Content-Encoding": header}, gzip.compress(CSV))
        with pytest.raises(OutboundError, match=r"^unsupported content encoding$"):
            LOOPBACK.request("GET", server.base + "/odd.csv", max_bytes=CAP)

    def test_a_corrupt_compressed_answer_fails_in_fixed_words(self, server):
        server.answers["/corrupt.csv"] = ({"Content-Encoding": "gzip"}, b"\x1f\x8b" + bytes(range(200)))
        with pytest.raises(FetchError, match=r"^could not decode$"):
            fetch_rows(server.base + "/corrupt.csv", "csv", guard=LOOPBACK)

    def test_a_webhook_receiver_answering_in_an_odd_coding_is_still_a_success(self):
        """Deliveries do not read the answer's body: its coding does not matter."""

        class Receiver(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                body = gzip.compress(gzip.compress(b"ok"))
                self.send_response(200)
                self.send_header("Content-Encoding", "gzip, gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        from tenantry.webhooks import sending

        with local_http_server(Receiver) as base:
            result = sending.post(LOOPBACK, base + "/hook", b"{}", {}, timeout=5.0)
        assert (result.ok, result.status_code, result.error) == (True, 200, None)
