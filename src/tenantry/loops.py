"""Objects that belong to one event loop (a connection is usable only on the loop that made it).

An app is served by one loop, but tests and tools may drive it from several in turn. `PerLoop`
keeps one object per running loop, and forgets it when its loop is gone: a new loop never finds a
dead loop's connection (keyed by the loop itself, weakly, not by its `id()`, which a new loop may
reuse).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    __slots__ = ("_by_loop",)

    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = weakref.WeakKeyDictionary()

    def get(self) -> T | None:
        """The running loop's object, if it has one."""
        return self._by_loop.get(asyncio.get_running_loop())

    def get_or_make(self, make: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        found = self._by_loop.get(loop)
        if found is None:
            found = self._by_loop[loop] = make()
        return found

    def pop(self) -> T | None:
        """Take the running loop's object away (to close it)."""
        return self._by_loop.pop(asyncio.get_running_loop(), None)
