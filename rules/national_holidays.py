"""Japanese national holidays (national, substitute and citizens' holidays) from the
`holidays` package, and the weekend: what closes a day before business_calendar.yaml is
read. Apart from rules/calendar.py so that rules/policy.py can check dated calendar
entries against them without importing the calendar back."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import holidays


@lru_cache(maxsize=64)
def _national(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("JP", years=year, language="ja")


@lru_cache(maxsize=64)
def _national_en(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("JP", years=year, language="en_US")


def holiday_name(day: dt.date) -> str | None:
    return _national(day.year).get(day)


def holiday_name_en(day: dt.date) -> str | None:
    """The holiday's English name (for messages in English), or None."""
    return _national_en(day.year).get(day)


def closed_by_nature(day: dt.date) -> str | None:
    """土曜日, 日曜日 or a national holiday's name; None on any other day."""
    if day.weekday() == 5:
        return "土曜日"
    if day.weekday() == 6:
        return "日曜日"
    return holiday_name(day)
