"""SPEC §6: remaining = T − U − Σ counted allocations, and nothing may make it negative."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantry import pool
from tenantry.errors import AllocationBelowUsage, AllocationExceeded, PoolExhausted
from tenantry.pool import PoolLine


def lines(total: int, used: int = 0, allocated: int = 0) -> dict[str, PoolLine]:
    return {r: PoolLine(r, total, used, allocated) for r in pool.RESOURCES}


@pytest.mark.parametrize(
    ("total", "used", "allocated", "remaining"),
    [(10, 2, 3, 5), (10, 0, 10, 0), (-1, 5, 500, None), (0, 0, 0, 0)],
)
def test_remaining_is_total_minus_partner_use_minus_allocations(total, used, allocated, remaining):
    assert PoolLine("dashboards", total, used, allocated).remaining == remaining


def test_the_api_shows_unlimited_remaining_as_minus_one():
    assert PoolLine("users", -1, 1, 7).as_dict() == {
        "total": -1,
        "used_by_partner": 1,
        "allocated": 7,
        "remaining": -1,
    }


def test_a_change_that_fits_exactly_is_accepted_and_one_more_is_refused():
    pool.check_fits(lines(10, 2, 3), {"dashboards": 5})
    with pytest.raises(PoolExhausted) as refused:
        pool.check_fits(lines(10, 2, 3), {"dashboards": 6})
    assert refused.value.extensions == {"resource": "dashboards", "asked": 6, "remaining": 5}


def test_decreases_and_unlimited_pools_always_fit():
    pool.check_fits(lines(1, 1, 5), {"users": -3})
    pool.check_fits(lines(-1, 100, 100), {"users": 10**9})


def test_only_counted_allocations_consume_the_pool():
    allocation = {"dashboards": 3, "users": 2, "published_links": 1, "api_calls_per_day": 100}
    assert pool.counted_allocation(allocation, counts=False) == pool.zero()
    assert pool.counted_allocation(allocation, counts=True) == allocation


def test_usage_above_the_allocation_is_refused_in_counted_statuses():
    with pytest.raises(AllocationBelowUsage) as refused:
        pool.check_usage_within({"dashboards": 1}, {"dashboards": 2}, entering=False)
    assert refused.value.extensions == {"resource": "dashboards", "allocated": 1, "used": 2}
    pool.check_usage_within({"dashboards": 2, "users": 1}, {"dashboards": 2, "users": 1}, entering=True)


def test_adding_one_beyond_the_allocation_is_refused():
    pool.check_room_for_one_more("users", {"users": 2}, {"users": 1})
    with pytest.raises(AllocationExceeded):
        pool.check_room_for_one_more("users", {"users": 2}, {"users": 2})


@given(
    total=st.integers(0, 50),
    requests=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 30)), max_size=40),
)
def test_no_sequence_of_allocation_changes_makes_remaining_negative(total, requests):
    """Five clients ask for new allocations in any order; every accepted change keeps remaining ≥ 0."""
    allocations = [0] * 5
    for client, amount in requests:
        current = lines(total, 0, sum(allocations))
        try:
            pool.check_fits(current, {"dashboards": amount - allocations[client]})
        except PoolExhausted:
            continue
        allocations[client] = amount
        assert total - sum(allocations) >= 0
