"""One object per event loop (`tenantry.loops.PerLoop`)."""

from __future__ import annotations

import asyncio
import gc

from tenantry.loops import PerLoop


def test_each_loop_gets_its_own_object_and_never_a_dead_loops():
    per_loop: PerLoop[object] = PerLoop()

    async def mine() -> tuple[object, object]:
        made = per_loop.get_or_make(object)
        return made, per_loop.get_or_make(object)  # the same loop: the same object

    first, again = asyncio.run(mine())
    second, _ = asyncio.run(mine())  # a new loop (it may even get the dead one's id)
    assert first is again
    assert second is not first


def test_an_object_is_forgotten_with_its_loop_and_pop_takes_it_away():
    per_loop: PerLoop[list[int]] = PerLoop()

    async def make_and_pop() -> tuple[list[int] | None, list[int] | None]:
        per_loop.get_or_make(list)
        return per_loop.pop(), per_loop.get()

    async def make() -> int:
        per_loop.get_or_make(list)
        return len(per_loop._by_loop)

    popped, left = asyncio.run(make_and_pop())
    assert popped == [] and left is None
    assert asyncio.run(make()) == 1  # kept while its loop runs
    gc.collect()
    assert len(per_loop._by_loop) == 0  # and gone with the loop
