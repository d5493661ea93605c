"""The fee schedule kept per (rules version, Tokyo date): answers still come from the
rules, a reload is seen at once, and client-chosen dates cannot grow it without bound."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from resolvers.fees.schedule import ScheduleCache
from rules.runtime import RulesRuntime

APRIL_1 = dt.date(2026, 4, 1)


def test_a_kept_schedule_answers_what_the_rules_say(rules_copy: Path) -> None:
    runtime = RulesRuntime(rules_copy)
    cache = ScheduleCache()
    first = cache.get(runtime.current, APRIL_1)
    assert cache.get(runtime.current, APRIL_1) is first  # the second request reads the kept schedule
    assert first.application_fee("MEMBER").value == 1210
    assert first.application_fee("MEMBER").rule.file == "application_fees.yaml"
    assert [(p.code, p.price, p.tax) for p in first.coupon_products("MEMBER")] == [("SINGLE", 1210, 110), ("PACK30", 35090, 3190)]
    assert first.registration_fee("AGENT", "NON_MEMBER").value is None
    assert cache.get(runtime.current, dt.date(2026, 3, 31)).application_fee("MEMBER").value == 1100


def test_a_rules_reload_is_seen_by_the_next_request(rules_copy: Path) -> None:
    runtime = RulesRuntime(rules_copy)
    cache = ScheduleCache()
    before = cache.get(runtime.current, APRIL_1)
    assert before.application_fee("MEMBER").value == 1210
    path = rules_copy / "application_fees.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("amount: 1210", "amount: 1250"), encoding="utf-8")
    assert runtime.reload().changed
    after = cache.get(runtime.current, APRIL_1)
    assert after.application_fee("MEMBER").value == 1250
    assert after.rules_version == runtime.current.version != before.rules_version


def test_schedules_of_many_dates_are_bounded(rules_copy: Path) -> None:
    runtime = RulesRuntime(rules_copy)
    cache = ScheduleCache(limit=5)
    for day in range(40):
        on = dt.date(2026, 3, 10) + dt.timedelta(days=day)
        assert cache.get(runtime.current, on).application_fee("MEMBER").value == (1100 if on < APRIL_1 else 1210)
        assert len(cache) <= 5
