"""Business days (営業日) for both systems: not Saturday or Sunday, not a Japanese national
holiday (the `holidays` package: national, substitute and citizens' holidays), not a
closure day from rules/business_calendar.yaml (12/29–1/3). Dates are Asia/Tokyo dates."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import holidays

from rules.policy import PolicySet

MAX_STEPS = 400  # a year and more of closed days would be a broken calendar, not a long holiday


@lru_cache(maxsize=64)
def _national(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("JP", years=year, language="ja")


def holiday_name(day: dt.date) -> str | None:
    return _national(day.year).get(day)


def _closed(policy: PolicySet, day: dt.date) -> str | None:
    md = f"{day:%m-%d}"
    for row in policy.lookup("business_calendar", day):
        start, end = row.text("from"), row.text("to")  # MM-DD
        inside = start <= md <= end if start <= end else (md >= start or md <= end)
        if inside:
            return row.text("closure")
    return None


def why_closed(policy: PolicySet, day: dt.date) -> str | None:
    """None on a business day; else the reason (土曜日, 日曜日, a holiday's name, a closure)."""
    if day.weekday() == 5:
        return "土曜日"
    if day.weekday() == 6:
        return "日曜日"
    return holiday_name(day) or _closed(policy, day)


def is_business_day(policy: PolicySet, day: dt.date) -> bool:
    return why_closed(policy, day) is None


def next_business_day(policy: PolicySet, day: dt.date) -> dt.date:
    """The first business day strictly after ``day``."""
    return add_business_days(policy, day, 1)


def add_business_days(policy: PolicySet, day: dt.date, n: int) -> dt.date:
    """The n-th business day after ``day`` (n ≥ 1); n = 0 gives ``day`` itself."""
    if n < 0:
        raise ValueError("add_business_days counts forwards")
    current, steps = day, 0
    while n > 0:
        current += dt.timedelta(days=1)
        steps += 1
        if steps > MAX_STEPS:
            raise RuntimeError(f"no business day within {MAX_STEPS} days after {day}: check business_calendar.yaml")
        if is_business_day(policy, current):
            n -= 1
    return current
