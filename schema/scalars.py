"""Scalars the schema shows differently from strawberry's defaults.

DateTime: an instant in Tokyo time. The pages, mails and order numbers speak Tokyo time,
so the API does too — "2026-11-24T10:15:00+09:00", never the UTC the database stores.
"""

from __future__ import annotations

import datetime as dt

import strawberry
from strawberry.types.scalar import ScalarDefinition

from resolvers.core import messages
from resolvers.core.clock import TOKYO
from schema.inputs import BadScalarValue

# Instants the system can store (UTC) and show (Tokyo time) without leaving the calendar's
# range: "9999-12-31T23:59:59-12:00" would overflow on the way to UTC, and a year-9999 UTC
# instant on the way back to Tokyo time — on every later read of the row that kept it.
FIRST_YEAR, LAST_YEAR = 1900, 2999


def serialize_datetime(value: dt.datetime) -> str:
    """ISO 8601 with the Asia/Tokyo offset. A naive value is UTC: it came from the database,
    which stores UTC (persistence/models/base.py: UTCDateTime)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(TOKYO).isoformat()


def parse_datetime(value: object) -> dt.datetime:
    """Any ISO 8601 instant with an offset (Z, +00:00, +09:00, …). Without an offset it
    names no instant, so it is refused rather than guessed."""
    if not isinstance(value, str):
        raise ValueError("DateTime is an ISO 8601 string with an offset, e.g. 2026-11-24T10:15:00+09:00")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not an ISO 8601 date and time: {value!r}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"no UTC offset in {value!r}: add one, e.g. +09:00")
    if not FIRST_YEAR <= parsed.year <= LAST_YEAR:  # checked before any conversion could overflow
        raise BadScalarValue("DateTime", value, messages.DATETIME_OUT_OF_RANGE)
    return parsed


TOKYO_DATETIME: ScalarDefinition = strawberry.scalar(
    name="DateTime",
    description=(
        "An instant, in ISO 8601 with the Asia/Tokyo offset: 2026-11-24T10:15:00+09:00. "
        "As input, any offset is accepted (Z, +00:00, +09:00); a value without one is refused."
    ),
    serialize=serialize_datetime,
    parse_value=parse_datetime,
)

SCALAR_OVERRIDES: dict[object, ScalarDefinition] = {dt.datetime: TOKYO_DATETIME}
