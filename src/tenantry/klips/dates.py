"""Date ranges of dashboard filters (SPEC §13): presets and `YYYY-MM-DD..YYYY-MM-DD`.

Pure: `today` is the caller's date in the client's timezone, so "this month" on a dashboard is
the client's month, not the server's. Both ends of a range are included. Weeks start on Monday
and quarters are calendar quarters.
"""

from __future__ import annotations

from datetime import date, timedelta

from tenantry.klips.spec import DATE_PRESETS


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _month_end(day: date) -> date:
    following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return following - timedelta(days=1)


def _quarter_end(start: date) -> date:
    return _month_end(date(start.year, start.month + 2, 1))


def _preset(name: str, today: date) -> tuple[date, date]:
    if name == "today":
        return today, today
    if name == "yesterday":
        day = today - timedelta(days=1)
        return day, day
    if name.startswith("last_") and name.endswith("_days"):
        days = int(name.removeprefix("last_").removesuffix("_days"))
        # "The last 7 days" include today: seven days ending today.
        return today - timedelta(days=days - 1), today
    if name == "this_month":
        return today.replace(day=1), _month_end(today)
    if name == "last_month":
        end = today.replace(day=1) - timedelta(days=1)
        return end.replace(day=1), end
    if name == "this_quarter":
        start = _quarter_start(today)
        return start, _quarter_end(start)
    if name == "last_quarter":
        start = _quarter_start(_quarter_start(today) - timedelta(days=1))
        return start, _quarter_end(start)
    if name == "this_year":
        return date(today.year, 1, 1), date(today.year, 12, 31)
    if name == "last_year":
        return date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)
    raise AssertionError(name)  # pragma: no cover - DATE_PRESETS and this function agree


def resolve(value: str, today: date) -> tuple[date, date]:
    """The first and last day (both included) that a preset or `YYYY-MM-DD..YYYY-MM-DD` means,
    or ValueError with a sentence saying what is wrong."""
    if value in DATE_PRESETS:
        return _preset(value, today)
    low, separator, high = value.partition("..")
    if not separator:
        raise ValueError(
            f"{value!r} is not a date range: use YYYY-MM-DD..YYYY-MM-DD or one of {', '.join(DATE_PRESETS)}"
        )
    ends = []
    for text in (low, high):
        try:
            if len(text) != 10:
                raise ValueError(text)
            ends.append(date.fromisoformat(text))
        except ValueError:
            raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) in the range {value!r}") from None
    start, end = ends
    if start > end:
        raise ValueError(f"the range {value!r} starts after it ends")
    return start, end


def previous_period(start: date, end: date) -> tuple[date, date] | None:
    """The same number of days just before `start` (what `compare: previous_period` reads), or
    None when they would begin before the calendar does (a range in year 1)."""
    days = (end - start).days + 1
    try:
        return start - timedelta(days=days), start - timedelta(days=1)
    except OverflowError:
        return None
