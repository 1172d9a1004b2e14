"""The event loop's Redis client (`meter.resp`) against a real redis-server of the test's own."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis import Redis
from redis import exceptions as rx

from tenantry.meter.resp import RespClient, _Incomplete, encode, parse
from tests.servers import free_port

ECHO_SCRIPT = "return {KEYS[1], ARGV[1]}"


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_many_calls_at_once_on_one_connection_each_get_their_own_reply(redis_server):
    async def calls() -> list[Any]:
        client = RespClient(redis_server.url)
        try:
            await asyncio.gather(*(client.execute("SET", f"k{n}", n) for n in range(200)))
            return await asyncio.gather(*(client.execute("GET", f"k{n}") for n in range(200)))
        finally:
            await client.aclose()

    assert run(calls()) == [str(n).encode() for n in range(200)]


def test_the_calls_made_in_one_step_of_the_loop_leave_in_one_write(redis_server):
    writes: list[bytes] = []

    async def calls() -> list[Any]:
        client = RespClient(redis_server.url)
        try:
            await client.execute("PING")  # connected
            protocol = client._protocol
            assert protocol is not None
            real = protocol.transport

            class Noting:  # the real transport, noting each write
                def write(self, data: bytes) -> None:
                    writes.append(data)
                    real.write(data)

                def __getattr__(self, name: str) -> Any:
                    return getattr(real, name)

            protocol.transport = Noting()
            replies = await asyncio.gather(*(client.execute("INCR", "n") for _ in range(50)))
            replies.append(await client.execute("INCR", "n"))  # a later step: a write of its own
            protocol.transport = real
            return replies
        finally:
            await client.aclose()

    assert run(calls()) == list(range(1, 52))
    assert [data.count(b"INCR") for data in writes] == [50, 1]


def test_an_error_reply_reaches_its_own_caller_only(redis_server):
    async def calls() -> list[Any]:
        client = RespClient(redis_server.url)
        try:
            await client.execute("SET", "text", "x")
            return await asyncio.gather(
                client.execute("GET", "text"),
                client.execute("INCR", "text"),  # not an integer
                client.execute("MGET", "text", "missing"),
                return_exceptions=True,
            )
        finally:
            await client.aclose()

    got, failed, both = run(calls())
    assert got == b"x" and both == [b"x", None]
    assert isinstance(failed, rx.ResponseError) and "not an integer" in str(failed)


def test_a_call_that_times_out_leaves_its_place_so_the_next_reply_is_not_taken_for_it(redis_server):
    async def calls() -> tuple[Any, Any]:
        client = RespClient(redis_server.url, timeout=0.2)
        try:
            await client.execute("SET", "after", "mine")
            with pytest.raises(rx.TimeoutError):
                await client.execute("BLPOP", "empty-list", "0.6")  # answers nil after 0.6 s
            client.timeout = 2
            following = await client.execute("GET", "after")  # answered after the BLPOP's nil
            return following, await client.execute("GET", "after")
        finally:
            await client.aclose()

    # The late nil went to the call that had left, not to the GETs.
    assert run(calls()) == (b"mine", b"mine")


def test_calls_waiting_behind_a_slow_one_each_time_out_at_their_own_deadline(redis_server):
    async def calls() -> tuple[list[tuple[str, float]], list[Any]]:
        client = RespClient(redis_server.url, timeout=0.2)
        events: list[tuple[str, float]] = []
        loop = asyncio.get_running_loop()
        try:
            await client.execute("SET", "after", "mine")
            began = loop.time()

            async def call(name: str, *command: Any) -> None:
                try:
                    await client.execute(*command)
                except rx.TimeoutError:
                    events.append((name, loop.time() - began))

            slow = asyncio.ensure_future(call("blpop", "BLPOP", "empty-list", "0.7"))  # holds the line
            await asyncio.sleep(0.1)
            behind = asyncio.ensure_future(call("get", "GET", "after"))
            await asyncio.gather(slow, behind)
            client.timeout = 2
            # The late replies land on the calls that left; the connection serves on.
            return events, [await client.execute("GET", "after"), await client.execute("PING")]
        finally:
            await client.aclose()

    events, replies = run(calls())
    # Each at its own deadline (0.2 s after it was sent), not at the first one's; both before the
    # BLPOP's nil (0.7 s), which would have answered them.
    (first, blpop_at), (second, get_at) = events
    assert (first, second) == ("blpop", "get")
    assert 0.19 <= blpop_at < 0.6 and 0.29 <= get_at < 0.6 and get_at - blpop_at >= 0.05
    assert replies == [b"mine", b"PONG"]


def test_calls_that_keep_coming_while_the_connection_stalls_each_time_out_in_their_own_time(redis_server):
    async def calls() -> tuple[list[float], Any]:
        client = RespClient(redis_server.url, timeout=0.1)
        loop = asyncio.get_running_loop()
        waited: list[float] = []
        try:
            await client.execute("SET", "after", "mine")

            async def call(*command: Any) -> None:
                sent = loop.time()
                with pytest.raises(rx.TimeoutError):
                    await client.execute(*command)
                waited.append(loop.time() - sent)

            stall = asyncio.ensure_future(call("BLPOP", "empty-list", "0.8"))  # nothing answered before it
            others = []
            for _ in range(20):
                await asyncio.sleep(0.02)
                others.append(asyncio.ensure_future(call("GET", "after")))
            await asyncio.gather(stall, *others)
            await asyncio.sleep(0.5)  # every late reply has come
            return waited, await client.execute("GET", "after")
        finally:
            await client.aclose()

    waited, after = run(calls())
    assert len(waited) == 21
    # Each timed out after its own 0.1 s, before the stall ended (0.8 s), which would have answered it.
    assert all(0.09 <= seconds < 0.6 for seconds in waited), waited
    assert after == b"mine"


def test_a_call_made_long_after_a_time_out_still_times_out(redis_server):
    async def calls() -> int:
        client = RespClient(redis_server.url, timeout=0.1)
        timed_out = 0
        try:
            for _ in range(2):  # the second call comes after the first's timer is gone
                with pytest.raises(rx.TimeoutError):
                    await client.execute("BLPOP", "empty-list", "0.3")
                timed_out += 1
                await asyncio.sleep(0.4)  # its nil has come
            return timed_out
        finally:
            await client.aclose()

    assert run(calls()) == 2


def test_a_script_runs_again_on_a_restarted_server_that_has_forgotten_it(redis_server):
    client = RespClient(redis_server.url)

    async def calls() -> list[Any]:
        first = await client.run_script(ECHO_SCRIPT, ["key"], ["one"])
        again = await client.run_script(ECHO_SCRIPT, ["key"], ["two"])  # EVALSHA now
        redis_server.restart()
        with pytest.raises(rx.ConnectionError):  # the old connection is gone
            await client.run_script(ECHO_SCRIPT, ["key"], ["lost"])
        after = await client.run_script(ECHO_SCRIPT, ["key"], ["three"])  # a new one, EVAL again
        await client.aclose()
        return [first, again, after]

    assert run(calls()) == [[b"key", b"one"], [b"key", b"two"], [b"key", b"three"]]


def test_every_waiting_call_fails_when_the_server_goes_and_the_next_call_reconnects(redis_server):
    async def calls() -> tuple[list[Any], Any]:
        client = RespClient(redis_server.url, timeout=5)
        try:
            await client.execute("SET", "k", "v")
            waiting = [asyncio.ensure_future(client.execute("BLPOP", "empty", "3")) for _ in range(5)]
            await asyncio.sleep(0.2)
            redis_server.restart()
            failed = await asyncio.gather(*waiting, return_exceptions=True)
            return failed, await client.execute("SET", "k", "again")
        finally:
            await client.aclose()

    failed, ok = run(calls())
    assert all(isinstance(error, rx.ConnectionError) for error in failed)
    assert ok == b"OK"


def test_a_server_that_cannot_be_reached_is_a_connection_error():
    async def call() -> None:
        client = RespClient(f"redis://127.0.0.1:{free_port()}/0", timeout=2)
        await client.execute("GET", "k")

    with pytest.raises(rx.ConnectionError, match="cannot be reached"):
        run(call())


def test_the_password_and_database_of_the_url_are_used(redis_server):
    with Redis.from_url(redis_server.url) as admin:
        admin.config_set("requirepass", "s3cret-pass")
    host = redis_server.url.removeprefix("redis://").rsplit("/", 1)[0]

    async def calls(url: str) -> Any:
        client = RespClient(url)
        try:
            return await client.execute("SET", "where", "db3")
        finally:
            await client.aclose()

    assert run(calls(f"redis://:s3cret-pass@{host}/3")) == b"OK"
    with Redis.from_url(f"redis://:s3cret-pass@{host}/3") as db3:
        assert db3.get("where") == b"db3"
    with pytest.raises(rx.ConnectionError, match="refused the connection's set-up"):
        run(calls(f"redis://:wrong@{host}/3"))


@pytest.mark.parametrize(
    ("reply", "value"),
    [
        (b"+OK\r\n", b"OK"),
        (b":42\r\n", 42),
        (b"$-1\r\n", None),
        (b"$5\r\nhe\r\no\r\n", b"he\r\no"),  # a bulk string may hold CR LF
        (b"*2\r\n$1\r\na\r\n:-3\r\n", [b"a", -3]),
        (b"*-1\r\n", None),
    ],
)
def test_replies_are_read_whole(reply, value):
    assert parse(reply, 0) == (value, len(reply))
    for cut in range(1, len(reply)):  # a reply split across reads waits for the rest
        with pytest.raises(_Incomplete):
            parse(reply[:cut], 0)


def test_commands_are_written_as_arrays_of_bulk_strings():
    assert encode(["SET", b"k", 3, 1.5]) == b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n3\r\n$3\r\n1.5\r\n"
    with pytest.raises(TypeError):
        encode(["SET", None])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("args", "written"),
    [
        (["GET", "key:1"], b"*2\r\n$3\r\nGET\r\n$5\r\nkey:1\r\n"),
        (["SET", "naïve", "€"], b"*3\r\n$3\r\nSET\r\n$6\r\nna\xc3\xafve\r\n$3\r\n\xe2\x82\xac\r\n"),
        (["SET", "k", b"\x00\xff"], b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n\x00\xff\r\n"),
        (
            ["EVALSHA", "ab", 2, -7, 0.25, ""],
            b"*6\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n2\r\n$2\r\n-7\r\n$4\r\n0.25\r\n$0\r\n\r\n",
        ),
    ],
    ids=["ascii text", "text outside ascii is counted in bytes", "bytes as they are", "numbers as text"],
)
def test_a_bulk_strings_length_is_its_length_in_bytes(args, written):
    assert encode(args) == written


def test_a_number_kept_from_an_earlier_command_does_not_stand_for_an_equal_float_or_bool():
    assert encode(["SET", "k", 1]) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n1\r\n"
    assert encode(["SET", "k", 1.0]) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n1.0\r\n"
    assert encode(["SET", "k", True]) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\nTrue\r\n"
    assert encode(["SET", "1", 1]) == b"*3\r\n$3\r\nSET\r\n$1\r\n1\r\n$1\r\n1\r\n"


def test_commands_are_written_right_past_the_number_of_values_kept():
    for n in range(10_000):  # more distinct keys and numbers than are kept
        key = f"key:{n}:é" if n % 3 == 0 else f"key:{n}"
        data = key.encode()
        expected = b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%d\r\n" % (len(data), data, len(str(n)), n)
        assert encode(["SET", key, n]) == expected
