"""A dated closure in business_calendar.yaml (a system-maintenance day) moves the NACCS
password viewing window, over HTTP on SQLite and PostgreSQL, on a copy of rules/ that the
running server reloads."""

from __future__ import annotations

from tests.conftest import tokyo
from tests.naccs.test_naccs import APPROVE, center, office, submit_codes

YEAR_END = '        note: "年末年始休業 (12月29日〜1月3日)"\n'
MAINTENANCE = ('      - closure: システムメンテナンス\n        closure_en: system maintenance\n'
               '        date: "2026-12-28"\n')


def approve(live, start: str) -> dict:
    submitted = submit_codes(live, office(live), desired=start)
    assert submitted["errors"] == [], submitted
    app = submitted["application"]
    result = live.graphql(APPROVE, {"id": app["id"], "d": start}, headers=center(live)).json()
    return result["data"]["approveUserCodeApplication"]


async def test_a_maintenance_day_moves_the_password_window(live):
    live.clock.set(tokyo(2026, 12, 21, 10, 0))
    before = approve(live, "2026-12-24")  # Thu: business days Fri 12/25 and Mon 12/28
    assert before["application"]["passwordViewableUntil"] == "2026-12-28"

    path = live.rules_dir / "business_calendar.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(YEAR_END, YEAR_END + MAINTENANCE), encoding="utf-8")
    assert live.services.rules.reload().changed

    after = approve(live, "2026-12-24")  # Mon 12/28 closed, then 12/29–1/3: Fri 12/25 and Mon 1/4
    assert after["errors"] == [], after
    assert after["application"]["passwordViewableUntil"] == "2027-01-04"
    closed = submit_codes(live, office(live), desired="2026-12-28")
    assert [(e["code"], e["field"]) for e in closed["errors"]] == [("NOT_BUSINESS_DAY", ["input", "desiredStartDate"])]
    assert "2027-01-04以降" in closed["errors"][0]["message"]
    assert "システムメンテナンス" in closed["errors"][0]["message"]  # the message names the dated closure
    english = submit_codes(live, {**office(live), "Accept-Language": "en"}, desired="2026-12-28")
    assert "(system maintenance)" in english["errors"][0]["message"], english
    holiday = submit_codes(live, {**office(live), "Accept-Language": "en"}, desired="2027-01-11")  # 成人の日
    assert "Coming of Age Day (a national holiday)" in holiday["errors"][0]["message"], holiday
    year_end = submit_codes(live, office(live), desired="2026-12-30")
    assert "(年末年始)" in year_end["errors"][0]["message"], year_end
