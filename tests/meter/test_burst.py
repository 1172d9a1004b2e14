"""The burst limit's moving window kept in memory (`meter.burst.MemoryWindows`), without Redis, and
the window a Redis check runs (`limits`' own)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from limits import RateLimitItemPerSecond

from tenantry.meter.burst import BurstLimiter, MemoryWindows


class Ticking:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_calls_past_the_amount_within_one_second_are_refused() -> None:
    clock = Ticking()
    windows = MemoryWindows(3, clock=clock)
    answers = []
    for _ in range(5):
        answers.append(windows.hit("client:1"))
        clock.now += 0.1
    assert answers == [True, True, True, False, False]


def test_the_window_moves_a_call_becomes_free_one_second_after_the_call_it_replaces() -> None:
    clock = Ticking()
    windows = MemoryWindows(2, clock=clock)
    assert windows.hit("client:1")  # at 0.0
    clock.now += 0.6
    assert windows.hit("client:1")  # at 0.6
    clock.now += 0.3
    assert not windows.hit("client:1")  # at 0.9: two in the last second
    clock.now += 0.1
    assert windows.hit("client:1")  # at 1.0: the call at 0.0 has left the window
    clock.now += 0.5
    assert not windows.hit("client:1")  # at 1.5: the calls at 0.6 and 1.0 remain
    clock.now += 0.1
    assert windows.hit("client:1")  # at 1.6


def test_refused_calls_do_not_take_room_in_the_window() -> None:
    clock = Ticking()
    windows = MemoryWindows(1, clock=clock)
    assert windows.hit("client:1")
    for _ in range(9):
        clock.now += 0.1
        assert not windows.hit("client:1")
    clock.now += 0.1  # one second after the only allowed call
    assert windows.hit("client:1")


def test_each_key_has_a_window_of_its_own() -> None:
    windows = MemoryWindows(1, clock=Ticking())
    assert windows.hit("client:1")
    assert windows.hit("client:2")
    assert not windows.hit("client:1")
    assert not windows.hit("client:2")


def test_keys_idle_for_a_whole_window_are_dropped_so_memory_stays_bounded() -> None:
    clock = Ticking()
    windows = MemoryWindows(5, clock=clock)
    for n in range(MemoryWindows.SWEEP_EVERY - 1):
        windows.hit(f"client:{n}")
    assert len(windows) == MemoryWindows.SWEEP_EVERY - 1
    clock.now += 1.5
    assert windows.hit("client:busy")  # the sweep's turn: only this key is left
    assert len(windows) == 1
    assert windows.hit("client:busy")


def test_a_key_swept_in_the_call_that_sweeps_still_counts_that_call() -> None:
    clock = Ticking()
    windows = MemoryWindows(1, clock=clock)
    for _ in range(MemoryWindows.SWEEP_EVERY - 1):
        windows.hit("client:1")
    clock.now += 2
    assert windows.hit("client:1")  # the sweep's turn, after its key went idle
    assert not windows.hit("client:1")


def test_threads_sharing_a_window_are_allowed_exactly_the_amount() -> None:
    windows = MemoryWindows(50, seconds=3600)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: windows.hit("client:1"), range(2000)))
    assert sum(answers) == 50


def test_a_redis_window_is_limits_own_key_and_arguments_for_every_client() -> None:
    limiter = BurstLimiter("redis://127.0.0.1:6379/0", 5)  # nothing is asked of Redis here
    item = RateLimitItemPerSecond(5)
    for n in [*range(5000), 7, 7]:  # more clients than the limiter keeps keys for, and one again
        window = limiter.window(f"client:{n}")
        assert window.key == "LIMITS:" + item.key_for("tenantry-burst", f"client:{n}")
        assert window.args[1:] == (5, 1, 1)
        assert abs(window.args[0] - time.time()) < 60
