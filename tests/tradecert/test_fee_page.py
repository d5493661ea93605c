"""The public fee page: GET /fees (and ?on=YYYY-MM-DD) renders the schedule in force from
the rule files as printable Japanese HTML — what a chamber publishes: amounts and the dates
they apply. ``?references=1`` is the staff view: the rules version, each table's source and
each amount's note and file/version/row; `tradecert rules show --format markdown|html`."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from pages import fee_page
from resolvers.core.clock import FixedClock
from rules.policy import load_policy
from tests.conftest import RULES_DIR, settings_for, start_server, tokyo
from tests.tradecert.test_production_settings import ALLOW, production_env, serve, stop, wait_exit_or_ready

TRADECERT = str(Path(sys.executable).parent / "tradecert")


@pytest.fixture
async def fees_live(tmp_path, rules_copy):
    from persistence import migrate
    from persistence.db import Database

    url = f"sqlite+aiosqlite:///{tmp_path / 'fees.db'}"
    db = Database(url)
    await migrate.upgrade(db.engine)
    await db.dispose()
    server = await asyncio.to_thread(start_server, settings_for(url, rules_copy), FixedClock(tokyo(2026, 4, 1, 10)))
    yield server
    await asyncio.to_thread(server.stop)


def text_of(page: str) -> str:
    """What a reader sees: style sheets and tags dropped, entities kept as typed."""
    page = re.sub(r"<(style|script)[^>]*>.*?</\1>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def visible_latin_words(seen: str) -> list[str]:
    """Words in Latin letters a reader would see (an English note, a file name, a seed's id)."""
    return re.findall(r"[A-Za-z][A-Za-z_.-]{2,}", seen)


async def test_the_fee_page_shows_todays_schedule_as_a_chamber_publishes_it(fees_live):
    with fees_live.client() as client:
        response = client.get("/fees")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page = response.text
    seen = text_of(page)
    assert '<html lang="ja">' in page and "@media print" in page
    assert "手数料一覧 2026年4月1日現在" in seen
    assert "会員 1,210円" in seen and "非会員 3,630円" in seen
    assert "申請者 非会員 16,500円" in seen and "代行業者 非会員 受付なし" in seen
    assert "クーポン 30枚綴り 会員 30枚 35,090円 36,300円 3,190円" in seen
    assert "クーポン 30枚綴り 1,210円" in seen  # the pack refund deduction
    assert "0円〜29,999円 550円" in seen and "30,000円以上 770円" in seen
    assert "2026年4月1日から適用" in seen and "以前" not in seen
    assert "消費税(10%)込み" in seen
    # what a chamber publishes: no developer notes, no seed documents, no files, versions or rows
    assert visible_latin_words(seen) == [], visible_latin_words(seen)
    for internal in ("出典", "根拠", "備考", "行目", "第2版", "ルール版", fees_live.services.rules.current.version):
        assert internal not in seen, internal
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # no external assets


async def test_the_staff_view_adds_the_rules_version_sources_notes_and_rows(fees_live):
    with fees_live.client() as client:
        public = client.get("/fees", params={"on": "2026-04-01"}).text
        response = client.get("/fees", params={"on": "2026-04-01", "references": "1"})
    assert response.status_code == 200
    page, seen = response.text, text_of(response.text)
    assert f"ルール版 {fees_live.services.rules.current.version}" in seen
    assert "2026年4月1日から適用 (application_fees.yaml 第2版)" in seen
    assert "出典: eco-payment-2026: オンライン申請利用料" in seen
    assert "application_fees.yaml 第2版 1行目" in seen and "coupon_products.yaml 第2版 2行目" in seen
    assert "代行業者の非会員登録は受け付けない" in seen and "(tax.yaml 第1版 1行目)" in seen
    assert 'name="references" value="1"' in page  # choosing another date keeps the staff view
    # the staff view links to the published one for the same date; the published page does not advertise the staff view
    assert 'href="/fees?on=2026-04-01"' in page and "references" not in public


async def test_a_date_shows_the_schedule_then_in_force_and_the_coming_revision(fees_live):
    with fees_live.client() as client:
        seen = text_of(client.get("/fees", params={"on": "2026-03-31"}).text)
        staff = text_of(client.get("/fees", params={"on": "2026-03-31", "references": "1"}).text)
    assert "会員 1,100円" in seen and "非会員 3,300円" in seen and "1,210円" not in seen.split("貿易登録料")[0]
    assert "2022年4月1日から2026年3月31日まで適用" in seen
    assert "2026年4月1日に改定されます" in seen
    registration = seen.split("貿易登録料")[1].split("クーポン商品")[0]
    # the registration fees start on 2026-04-01: on 2026-03-31 they are upcoming, not in force "since before"
    assert "2026年4月1日から適用されます" in registration and "以前" not in seen
    assert "改定されます" not in registration  # its only version is not a revision of itself
    assert "2026年4月1日から適用されます (registration_fees.yaml 第1版)" in staff
    assert "2022年4月1日から2026年3月31日まで適用 (application_fees.yaml 第1版)" in staff


async def test_the_coming_revision_links_to_its_schedule(fees_live):
    with fees_live.client() as client:
        page = client.get("/fees", params={"on": "2026-03-31"}).text
    assert '<a href="/fees?on=2026-04-01">' in page


@pytest.mark.parametrize("value", ["2026-02-30", "abc", "20260401", "<script>alert(1)</script>", "2026-4-1", "9" * 500])
async def test_a_bad_date_is_a_400_in_japanese_never_a_500(fees_live, value):
    with fees_live.client() as client:
        response = client.get("/fees", params={"on": value})
    assert response.status_code == 400
    assert "日付は YYYY-MM-DD の形式" in response.text
    assert "<script>" not in response.text and len(response.text) < 2000


async def test_text_from_the_rule_files_is_escaped(fees_live):
    path = fees_live.rules_dir / "application_fees.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('      - membership: MEMBER\n        amount: 1210\n',
                                 '      - membership: MEMBER\n        amount: 1210\n        note: "<b>会員</b> & \'特別\'"\n'),
                    encoding="utf-8")
    assert fees_live.services.rules.reload().changed
    with fees_live.client() as client:
        page = client.get("/fees", params={"references": "1"}).text  # notes are shown to staff
    assert "&lt;b&gt;会員&lt;/b&gt; &amp; &#x27;特別&#x27;" in page and "<b>" not in page


def run_cli(*args: str, rules_dir: Path = RULES_DIR) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRADECERT_RULES_DIR": str(rules_dir), "COLUMNS": "200"}
    return subprocess.run([TRADECERT, "rules", "show", *args], env=env, capture_output=True, text=True, timeout=120)


def test_rules_show_prints_the_page_as_markdown_html_and_text():
    policy = load_policy(RULES_DIR)
    import datetime as dt

    day = dt.date(2026, 4, 1)
    markdown = run_cli("--on", "2026-04-01", "--format", "markdown")
    assert markdown.returncode == 0, markdown.stderr
    assert markdown.stdout == fee_page.render_markdown(fee_page.build(policy, day))
    assert "| 会員 | 1,210円 |" in markdown.stdout and "|---|---:|" in markdown.stdout
    assert "yaml" not in markdown.stdout and "出典" not in markdown.stdout  # the published schedule
    staff = fee_page.render_markdown(fee_page.build(policy, day), references=True)
    assert "| 会員 | 1,210円 |  | application_fees.yaml 第2版 1行目 |" in staff and "|---|---:|---|---|" in staff
    page = run_cli("--on", "2026-04-01", "--format", "html")
    assert page.returncode == 0 and page.stdout == fee_page.render_html(fee_page.build(policy, day))
    text = run_cli("--on", "2026-04-01", "--format", "text")
    assert text.returncode == 0 and "Fee schedule on 2026-04-01" in text.stdout
    wrong = run_cli("--format", "pdf")
    assert wrong.returncode == 2 and "pdf" in wrong.stderr


def test_the_fee_page_is_public_in_production(tmp_path):
    process, base, _ = serve(production_env(tmp_path, **{ALLOW: "1"}))
    try:
        assert wait_exit_or_ready(process, base), stop(process)
        page = httpx.get(f"{base}/fees", params={"on": "2026-04-01"})
        bad = httpx.get(f"{base}/fees", params={"on": "x"})
    finally:
        stop(process)
    assert page.status_code == 200 and "1,210円" in page.text
    assert bad.status_code == 400
