"""Each klip is drawn once per version of its data: an in-process LRU of SVG markup.

Each app holds its own caches (`dashboards.live.LiveCache`, made with the app's `Services`), so
two apps in one process share none.

The key holds everything the drawing depends on (the klip's definition and its data source's
version token), so an entry can never be stale; it is merely evicted when unused. Data versions
are random tokens, never reused, so a recycled row id cannot pick up another klip's drawing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable


class SvgCache:
    """At most `capacity` drawings holding at most `budget` characters in all (the newest is kept
    whatever its size), least recently used dropped first: a visitor sending filter value after
    filter value makes new drawings, never a process that grows without end."""

    def __init__(self, capacity: int = 4096, budget: int = 64 * 1024 * 1024) -> None:
        self.capacity, self.budget, self.weight = capacity, budget, 0
        self._entries: OrderedDict[Hashable, str] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> str | None:
        with self._lock:
            svg = self._entries.get(key)
            if svg is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return svg

    def put(self, key: Hashable, svg: str) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            self.weight += len(svg) - (len(old) if old is not None else 0)
            self._entries[key] = svg
            while len(self._entries) > 1 and (
                len(self._entries) > self.capacity or self.weight > self.budget
            ):
                _, dropped = self._entries.popitem(last=False)
                self.weight -= len(dropped)

    def get_or_draw(self, key: Hashable, draw: Callable[[], str]) -> str:
        svg = self.get(key)
        if svg is None:
            # Drawn outside the lock: two threads may draw the same klip once each, never wrongly.
            svg = draw()
            self.put(key, svg)
        return svg

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.weight = 0
