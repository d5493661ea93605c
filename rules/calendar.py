"""Business days (営業日) for both systems: not Saturday or Sunday, not a Japanese national
holiday (the `holidays` package: national, substitute and citizens' holidays), not a
closure from rules/business_calendar.yaml (every year 12/29–1/3, or one dated closure such
as a system-maintenance day) — unless the file makes that date a dated working day.
Dates are Asia/Tokyo dates."""

from __future__ import annotations

import datetime as dt

from rules.national_holidays import closed_by_nature, holiday_name, holiday_name_en
from rules.policy import PolicySet, calendar_closure, closing_row

__all__ = ["add_business_days", "closed_reason", "holiday_name", "is_business_day", "next_business_day", "why_closed"]

WEEKEND = {5: ("土曜日", "a Saturday"), 6: ("日曜日", "a Sunday")}
CHAMBER_CLOSURE_EN = "a closure day of the chamber"  # a closure row without closure_en

MAX_STEPS = 400  # a year and more of closed days would be a broken calendar, not a long holiday


def why_closed(policy: PolicySet, day: dt.date) -> str | None:
    """None on a business day; else the reason (土曜日, 日曜日, a holiday's name, a closure)."""
    rows = [row.values for row in policy.lookup("business_calendar", day)]
    if any(row.get("working_day") is not None and row.get("date") == day.isoformat() for row in rows):
        return None  # a dated working day opens a weekend, a holiday or a yearly closure
    return closed_by_nature(day) or calendar_closure(rows, day)


def closed_reason(policy: PolicySet, day: dt.date) -> tuple[str, str] | None:
    """``why_closed`` for a message, as (Japanese, English): 土曜日 / a Saturday, a holiday's
    name in each language, a closure's name (its ``closure_en`` in English, when the file
    gives one)."""
    if why_closed(policy, day) is None:
        return None
    if day.weekday() in WEEKEND:
        return WEEKEND[day.weekday()]
    name = holiday_name(day)
    if name is not None:
        return name, f"{holiday_name_en(day) or 'a national holiday'} (a national holiday)"
    row = closing_row([row.values for row in policy.lookup("business_calendar", day)], day)
    if row is None:  # why_closed said closed: one of the above holds
        raise RuntimeError(f"no reason found for the closed day {day}")
    return str(row["closure"]), str(row.get("closure_en") or CHAMBER_CLOSURE_EN)


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
