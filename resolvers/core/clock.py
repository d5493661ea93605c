"""The one source of "now". Business dates are Asia/Tokyo dates.

Nothing computes a date at import or start-up: every caller asks the clock at the moment
of use, so a server run under libfaketime, or a test with a ``FixedClock``, sees the time
it should.
"""

from __future__ import annotations

import datetime as dt
import threading
from zoneinfo import ZoneInfo

TOKYO = ZoneInfo("Asia/Tokyo")


class Clock:
    """The system clock."""

    def now(self) -> dt.datetime:
        """The current instant, timezone-aware (UTC)."""
        return dt.datetime.now(dt.UTC)

    def today(self) -> dt.date:
        """The current business date: today in Tokyo."""
        return self.now().astimezone(TOKYO).date()


class FixedClock(Clock):
    """A clock tests set and move; thread-safe because servers under test run in threads."""

    def __init__(self, at: dt.datetime):
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._at = at
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            return self._at.astimezone(dt.UTC)

    def set(self, at: dt.datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        with self._lock:
            self._at = at

    def advance(self, delta: dt.timedelta) -> None:
        with self._lock:
            self._at = self._at + delta


def tokyo_date(instant: dt.datetime) -> dt.date:
    return instant.astimezone(TOKYO).date()
