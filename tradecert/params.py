"""Command-line parameter types that say what is wrong with a value, as the API does."""

from __future__ import annotations

import datetime as dt

import click

from resolvers.core import validation
from resolvers.core.messages import Words


class IsoDate(click.ParamType[dt.datetime, object]):
    """A YYYY-MM-DD date (a datetime at midnight, as click.DateTime gives): a wrong format and a
    day the calendar does not have (2026-02-30) are refused with different words."""

    name = "YYYY-MM-DD"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return value
        day = validation.iso_date(value)
        if isinstance(day, Words):
            self.fail(f"{str(value)[:40]!r}: {day.en}", param, ctx)
        return dt.datetime.combine(day, dt.time())
