"""Exponential backoff, shared by data-source refreshes and event deliveries. Pure."""

from __future__ import annotations

from datetime import timedelta


def backoff(base: timedelta, failures: int, cap: timedelta) -> timedelta:
    """`base` after the first failure, doubling with each further one, never above `cap`."""
    if failures <= 1:
        return min(base, cap)
    # Bound the exponent so the product never overflows; past 2**20 any sensible cap has won.
    return min(base * 2 ** min(failures - 1, 20), cap)
