"""Business days (営業日) for both systems: not Saturday or Sunday, not a Japanese national
holiday (the `holidays` package: national, substitute and citizens' holidays), not a
closure from rules/business_calendar.yaml (every year 12/29–1/3, or one dated closure such
as a system-maintenance day) — unless the file makes that date a dated working day.
Dates are Asia/Tokyo dates."""

from __future__ import annotations

import datetime as dt

from rules.national_holidays import closed_by_nature, holiday_name
from rules.policy import PolicySet, calendar_closure

__all__ = ["add_business_days", "holiday_name", "is_business_day", "next_business_day", "why_closed"]

MAX_STEPS = 400  # a year and more of closed days would be a broken calendar, not a long holiday


def why_closed(policy: PolicySet, day: dt.date) -> str | None:
    """None on a business day; else the reason (土曜日, 日曜日, a holiday's name, a closure)."""
    rows = [row.values for row in policy.lookup("business_calendar", day)]
    if any(row.get("working_day") is not None and row.get("date") == day.isoformat() for row in rows):
        return None  # a dated working day opens a weekend, a holiday or a yearly closure
    return closed_by_nature(day) or calendar_closure(rows, day)


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
