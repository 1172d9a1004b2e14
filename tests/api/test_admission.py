"""The admission of requests (`api.middleware.Admission`): at most `limit` at once, the others served
in their order of arrival or refused with 503 when they waited too long."""

from __future__ import annotations

import asyncio

import pytest

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
