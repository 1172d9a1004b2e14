"""Resource pool and allocation arithmetic of SPEC §6. Pure.

The plan sets a total T per resource (-1 = unlimited); the partner's own account uses U; every
client whose status counts (Trial, Active) holds its allocation A. remaining = T - U - ΣA.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tenantry.errors import AllocationBelowUsage, AllocationExceeded, PoolExhausted

RESOURCES: tuple[str, ...] = ("dashboards", "users", "published_links", "api_calls_per_day")
# Resources a client "uses" by owning things; API calls are metered per day instead.
USAGE_RESOURCES: tuple[str, ...] = ("dashboards", "users", "published_links")
UNLIMITED = -1

_WORDS = {
    "dashboards": "dashboards",
    "users": "users",
    "published_links": "published links",
    "api_calls_per_day": "API calls per day",
}


def zero() -> dict[str, int]:
    return dict.fromkeys(RESOURCES, 0)


@dataclass(frozen=True)
class PoolLine:
    resource: str
    total: int
    used_by_partner: int
    allocated: int

    @property
    def unlimited(self) -> bool:
        return self.total == UNLIMITED

    @property
    def remaining(self) -> int | None:
        """None when unlimited."""
        if self.unlimited:
            return None
        return self.total - self.used_by_partner - self.allocated

    def as_dict(self) -> dict[str, int]:
        """For the API: -1 stands for unlimited, as in the plan's totals."""
        remaining = self.remaining
        return {
            "total": self.total,
            "used_by_partner": self.used_by_partner,
            "allocated": self.allocated,
            "remaining": UNLIMITED if remaining is None else remaining,
        }


def counted_allocation(allocation: Mapping[str, int], counts: bool) -> dict[str, int]:
    """What an allocation contributes to the pool: all of it while counted, nothing otherwise."""
    return {r: (allocation.get(r, 0) if counts else 0) for r in RESOURCES}


def deltas(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    return {r: after.get(r, 0) - before.get(r, 0) for r in RESOURCES}


def check_fits(lines: Mapping[str, PoolLine], change: Mapping[str, int]) -> None:
    """Refuse a change of the pool's consumption that would make any `remaining` negative.

    `change` is the increase in consumption per resource (allocations or partner usage);
    decreases always fit. The error reports the increase asked for and what remains.
    """
    for resource in RESOURCES:
        increase = change.get(resource, 0)
        line = lines[resource]
        if increase <= 0 or line.unlimited:
            continue
        remaining = line.remaining
        assert remaining is not None
        if remaining - increase < 0:
            raise PoolExhausted(
                f"The plan does not have enough {_WORDS[resource]} left: "
                f"{increase} more asked, {max(remaining, 0)} remaining.",
                resource=resource,
                asked=increase,
                remaining=max(remaining, 0),
            )


def check_usage_within(allocation: Mapping[str, int], usage: Mapping[str, int], *, entering: bool) -> None:
    """In Trial and Active a client's usage may not exceed its allocation (allocation_below_usage)."""
    for resource in USAGE_RESOURCES:
        used = usage.get(resource, 0)
        allocated = allocation.get(resource, 0)
        if used > allocated:
            verb = "enter Trial or Active" if entering else "lower the allocation"
            raise AllocationBelowUsage(
                f"Cannot {verb}: the client uses {used} {_WORDS[resource]} but would be allocated "
                f"{allocated}.",
                resource=resource,
                allocated=allocated,
                used=used,
            )


def check_room_for_one_more(resource: str, allocation: Mapping[str, int], usage: Mapping[str, int]) -> None:
    """Adding one more user/dashboard/link in Trial or Active must stay within the allocation."""
    if usage.get(resource, 0) + 1 > allocation.get(resource, 0):
        raise AllocationExceeded(
            f"The client's allocation of {allocation.get(resource, 0)} {_WORDS[resource]} is used up.",
            resource=resource,
            allocated=allocation.get(resource, 0),
            used=usage.get(resource, 0),
        )
