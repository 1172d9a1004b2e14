"""The admission of requests (`api.middleware.Admission`): at most `limit` at once, the others served
in their order of arrival or refused with 503 when they waited too long."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from tenantry.api.middleware import Admission
from tenantry.errors import Overloaded


def test_requests_beyond_the_limit_wait_and_are_let_in_in_the_order_they_came():
    async def scenario() -> list[str]:
        admission = Admission(limit=2, timeout=5)
        order: list[str] = []

        async def request(name: str, work: float) -> None:
            await admission.enter()
            order.append(f"{name} in")
            await asyncio.sleep(work)
            order.append(f"{name} out")
            admission.leave()

        await asyncio.gather(
            request("a", 0.05), request("b", 0.1), request("c", 0.01), request("d", 0.01), request("e", 0.01)
        )
        return order

    order = asyncio.run(scenario())
    assert order[:2] == ["a in", "b in"]
    assert [step for step in order if step.endswith(" in")] == ["a in", "b in", "c in", "d in", "e in"]
    assert order.index("c in") > order.index("a out")  # c waited for a turn


def test_a_request_that_waits_longer_than_the_timeout_is_refused_and_takes_no_turn():
    async def scenario() -> tuple[Overloaded, bool]:
        admission = Admission(limit=1, timeout=0.05)
        await admission.enter()  # the one turn, held
        with pytest.raises(Overloaded) as refused:
            await admission.enter()
        admission.leave()
        await asyncio.wait_for(admission.enter(), 1)  # the turn given back is free at once
        return refused.value, True

    refused, entered = asyncio.run(scenario())
    assert refused.headers == {"Retry-After": "1"}
    assert entered


def test_a_waiting_request_that_goes_away_leaves_its_place_to_the_next():
    async def scenario() -> list[str]:
        admission = Admission(limit=1, timeout=5)
        await admission.enter()
        gone = asyncio.ensure_future(admission.enter())
        next_one = asyncio.ensure_future(admission.enter())
        await asyncio.sleep(0)
        gone.cancel()
        await asyncio.sleep(0)
        admission.leave()
        await asyncio.wait_for(next_one, 1)
        return ["gone" if gone.cancelled() else "in", "in"]

    assert asyncio.run(scenario()) == ["gone", "in"]


def test_a_request_cancelled_just_after_it_was_given_a_turn_passes_the_turn_on():
    async def scenario() -> bool:
        admission = Admission(limit=1, timeout=5)
        await admission.enter()
        first = asyncio.ensure_future(admission.enter())
        second = asyncio.ensure_future(admission.enter())
        await asyncio.sleep(0)
        admission.leave()  # the turn goes to `first`...
        first.cancel()  # ...which is cancelled before it runs again
        with pytest.raises(asyncio.CancelledError):
            await first
        await asyncio.wait_for(second, 1)  # so `second` has it
        admission.leave()
        await asyncio.wait_for(admission.enter(), 1)  # and after it, the turn is free
        return True

    assert asyncio.run(scenario())


def test_requests_waiting_at_once_are_each_refused_when_their_own_wait_ends():
    async def scenario() -> list[tuple[str, float]]:
        admission = Admission(limit=1, timeout=0.2)
        loop = asyncio.get_running_loop()
        events: list[tuple[str, float]] = []
        await admission.enter()  # the one turn, held throughout
        began = loop.time()

        async def request(name: str) -> None:
            try:
                await admission.enter()
            except Overloaded:
                events.append((name, loop.time() - began))

        first = asyncio.ensure_future(request("first"))
        await asyncio.sleep(0.1)
        second = asyncio.ensure_future(request("second"))
        await asyncio.gather(first, second)
        third = asyncio.ensure_future(request("third"))  # after every timer has run
        await third
        return events

    (first, first_at), (second, second_at), (third, _) = asyncio.run(scenario())
    assert (first, second, third) == ("first", "second", "third")
    # Each 0.2 s after it came (the second 0.1 s after the first), not at the first one's deadline.
    assert 0.19 <= first_at < 1 and 0.29 <= second_at < 1 and second_at - first_at >= 0.05


def test_the_queued_gauge_counts_the_requests_waiting_now():
    async def scenario() -> list[float]:
        admission = Admission(limit=1, timeout=5)
        await admission.enter()
        waiting = [asyncio.ensure_future(admission.enter()) for _ in range(3)]
        await asyncio.sleep(0)
        seen = [_queued()]
        admission.leave()  # the first waiting is let in
        await asyncio.sleep(0)
        seen.append(_queued())
        for request in waiting[1:]:
            request.cancel()
        await asyncio.sleep(0)
        seen.append(_queued())
        return seen

    assert asyncio.run(scenario()) == [3, 2, 0]


def _queued() -> float:
    value = REGISTRY.get_sample_value("tenantry_http_requests_queued")
    assert value is not None
    return value
