"""The development mail box: `tradecert mail list|show` and /dev/mail read the outbox that
real use cases fill (a sub-ID notice carries its activation link), on SQLite and
PostgreSQL; both are off in production; hostile ids are refused in one line / 404."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from resolvers.core.clock import FixedClock
from tests.conftest import settings_for, start_server, tokyo
from tests.identity.test_identity_sessions import login
from tests.identity.test_subaccounts import ACTIVATE, SUB_PASSWORD, as_user, create_sub, notify
from tradecert.cli.text import columns as cells

TRADECERT = str(Path(sys.executable).parent / "tradecert")
SUBJECT = "【貿易関係証明発給システム】サブID付与のお知らせ"
SECRET = "a-production-notification-secret-of-40-chars"


def cli(target, *args: str, **env: str) -> subprocess.CompletedProcess:
    """`tradecert ...` on the test's database, without SMTP, piped."""
    full = {key: value for key, value in os.environ.items() if not key.startswith("TRADECERT_")}
    full |= {"TRADECERT_DATABASE_URL": target.url, "COLUMNS": "80", **env}
    if target.schema:
        full["TRADECERT_DATABASE_SCHEMA"] = target.schema
    return subprocess.run([TRADECERT, *args], capture_output=True, text=True, env=full, timeout=120)


def mail_cli(target, *args: str, **env: str) -> subprocess.CompletedProcess:
    return cli(target, "mail", *args, **env)


def notified_sub(live, **extra) -> dict:
    signer = as_user(live, "signer-2701000002")
    sub = create_sub(live, signer)
    answer = notify(live, signer, sub["id"], **extra)["data"]["notifySubAccount"]
    assert answer["errors"] == [], answer
    return sub


def one_line_refusal(result: subprocess.CompletedProcess, code: int) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# --------------------------------------------------------------------------- the command


async def test_mail_list_and_show_print_the_activation_notice_decoded_with_its_link(live, migrated):
    target, _db = migrated
    sub = notified_sub(live)

    listed = await asyncio.to_thread(mail_cli, target, "list")
    assert listed.returncode == 0, listed.stderr
    assert "2026-04-01 10:00:00 JST  waiting  subaccount.notify" in listed.stdout  # Tokyo time of the notice
    assert "To:      hanako@kakogawa.example" in listed.stdout and f"Subject: {SUBJECT}" in listed.stdout
    [link] = re.findall(r"^  Link:    (\S+)$", listed.stdout, re.MULTILINE)
    assert link.startswith(f"{live.url}/activate?token=")
    assert "1 mail(s), newest first" in listed.stdout
    mail_id = re.search(r"^#(\d+) ", listed.stdout, re.MULTILINE).group(1)

    shown = await asyncio.to_thread(mail_cli, target, "show", mail_id)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert out.startswith(f"Mail {mail_id} — waiting\n")
    for line in ("From:    noreply@tradecert.example", "To:      hanako@kakogawa.example", f"Subject: {SUBJECT}",
                 "Date:    2026-04-01 10:00:00 JST", "Status:  waiting (not sent yet)", "Kind:    subaccount.notify"):
        assert line in out
    assert f"サブID: {sub['username']}" in out and "貿易関係証明発給システムのサブIDが付与されました" in out.replace("\n", "")
    assert f"Links:\n  [1] {link}\n" in out
    for line in out.splitlines():  # 80 columns; only a link may be longer, and it is never cut
        assert cells(line) <= 80 or re.fullmatch(r"(.*: |  \[\d+\] )?https?://\S+", line), line

    token = parse_qs(urlsplit(link).query)["token"][0]
    activated = live.graphql(ACTIVATE, {"t": token, "u": sub["username"], "p": SUB_PASSWORD}).json()
    assert activated["data"]["activateSubAccount"]["errors"] == []

    assert (await live.run_job("mail-delivery")).status == "ok"
    sent = await asyncio.to_thread(mail_cli, target, "show", mail_id)
    assert "Status:  sent 2026-04-01 10:00:00 JST" in sent.stdout


async def test_mail_list_filters_by_address_newest_first_and_wraps_when_piped(live, migrated):
    target, _db = migrated
    notified_sub(live)
    live.clock.advance(dt.timedelta(minutes=5))
    notified_sub(live, target="2701000004", email="clerk@osaka-fwd.example")

    both = await asyncio.to_thread(mail_cli, target, "list", COLUMNS="")  # piped, no COLUMNS: 80 columns
    assert both.returncode == 0, both.stderr
    assert both.stdout.index("clerk@osaka-fwd.example") < both.stdout.index("hanako@kakogawa.example")
    assert "2026-04-01 10:05:00 JST" in both.stdout and "2 mail(s)" in both.stdout
    assert all(cells(line) <= 80 or "http" in line for line in both.stdout.splitlines())

    one = await asyncio.to_thread(mail_cli, target, "list", "--to", "CLERK@osaka-fwd.example")
    assert "clerk@osaka-fwd.example" in one.stdout and "hanako@" not in one.stdout and "1 mail(s)" in one.stdout
    limited = await asyncio.to_thread(mail_cli, target, "list", "--limit", "1")
    assert "1 of 2 mail(s)" in limited.stdout
    nobody = await asyncio.to_thread(mail_cli, target, "list", "--to", "nobody@example.invalid")
    assert nobody.returncode == 0 and nobody.stdout.strip() == "no mail to nobody@example.invalid"

    waiting = await asyncio.to_thread(cli, target, "jobs", "run", "mail-delivery")
    assert waiting.stdout.strip() == ("mail-delivery: ok — 2 mail(s) waiting: TRADECERT_SMTP_URL is not set "
                                      "(read them with `tradecert mail list`)"), waiting.stderr


@pytest.mark.parametrize("hostile", ["abc", "0", "-1", "+1", "１", "1e3", " 1", "99999999999999999999999", "2147483648",
                                     "'; DROP TABLE mail_outbox; --", "\x1b[31m7"])
def test_a_hostile_mail_id_is_one_line_exit_2(tmp_path, hostile):
    from tests.conftest import DbTarget

    target = DbTarget("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'none.db'}", None)
    line = one_line_refusal(mail_cli(target, "show", hostile), 2)
    assert line.startswith("Error: no mail ") and "\x1b" not in line


async def test_an_unknown_mail_id_is_one_line_exit_2(migrated):
    target, _db = migrated
    line = await asyncio.to_thread(lambda: one_line_refusal(mail_cli(target, "show", "2147483647"), 2))
    assert line == "Error: no mail 2147483647 in the outbox (`tradecert mail list` shows what there is)"


def test_a_nul_in_the_id_is_refused_in_one_line(tmp_path):
    """A NUL cannot come through argv; a caller in-process is refused before any database."""
    from tradecert.cli import main

    env = {"TRADECERT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'none.db'}", "TRADECERT_ENV": "development"}
    result = CliRunner().invoke(main, ["mail", "show", "1\x00"], env=env)
    assert result.exit_code == 2 and result.exception is not None and isinstance(result.exception, SystemExit)
    assert "no mail '1\\x00'" in result.output and not (tmp_path / "none.db").exists()


def test_a_database_without_the_outbox_is_one_line(tmp_path):
    from tests.conftest import DbTarget

    target = DbTarget("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", None)
    line = one_line_refusal(mail_cli(target, "list"), 1)
    assert "cannot read the outbox" in line and "tradecert db upgrade" in line


def test_the_command_is_off_in_production(tmp_path):
    from tests.conftest import DbTarget

    target = DbTarget("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'production.db'}", None)
    for args in (["list"], ["show", "1"]):
        result = mail_cli(target, *args, TRADECERT_ENV="production", TRADECERT_PAYMENT_SECRET=SECRET)
        assert one_line_refusal(result, 1) == ("Error: the development mail box is off in production "
                                               "(TRADECERT_ENV=production); mail goes out over TRADECERT_SMTP_URL")
    assert not (tmp_path / "production.db").exists()  # refused before opening anything


# --------------------------------------------------------------------------- the page


async def test_the_page_lists_the_outbox_and_its_link_activates_the_sub_id(live):
    sub = notified_sub(live)
    with live.client() as client:
        listing = client.get("/dev/mail")
        assert listing.status_code == 200
        assert listing.headers["content-type"] == "text/html; charset=utf-8"
        assert "default-src 'none'" in listing.headers["content-security-policy"]
        assert listing.headers["referrer-policy"] == "no-referrer" and listing.headers["cache-control"] == "no-store"
        page = listing.text
        assert "hanako@kakogawa.example" in page and SUBJECT in page and "2026-04-01 10:00:00 JST" in page
        assert "送信待ち waiting" in page
        href = re.search(r'<a href="(/dev/mail/\d+)">' + re.escape(SUBJECT), page).group(1)

        shown = client.get(href)
        assert shown.status_code == 200 and '<meta charset="utf-8">' in shown.text
        assert f"サブID: {sub['username']}" in shown.text and "noreply@tradecert.example" in shown.text
        links = re.findall(r'<a href="([^"]+)" rel="noreferrer noopener">', shown.text)
        activation = next(url for url in links if "/activate?token=" in url).replace("&amp;", "&")
        assert activation.startswith(f"{live.url}/activate?token=")

        followed = client.get(activation)  # the demo walk clicks it
    assert followed.status_code == 200 and "サブIDの有効化" in followed.text
    token = parse_qs(urlsplit(activation).query)["token"][0]
    assert f'value="{token}"' in followed.text
    activated = live.graphql(ACTIVATE, {"t": token, "u": sub["username"], "p": SUB_PASSWORD},
                             headers={"Origin": live.url}).json()["data"]["activateSubAccount"]
    assert activated == {"account": {"username": sub["username"], "status": "ACTIVE"}, "errors": []}
    assert login(live, sub["username"], SUB_PASSWORD)["errors"] == []

    await live.run_job("mail-delivery")
    with live.client() as client:
        assert "送信済み sent" in client.get("/dev/mail").text
        assert "送信済み" in client.get(href).text
        filtered = client.get("/dev/mail", params={"to": "nobody@example.invalid"})
    assert filtered.status_code == 200 and "hanako@" not in filtered.text and "No mail" in filtered.text


async def test_what_a_signer_wrote_is_shown_as_text_never_as_markup(live):
    hostile = '<script>alert(1)</script> "quoted" & javascript:alert(2)'
    notified_sub(live, subject="<b>お知らせ</b>", body=f"{hostile}\n{{activation_url}}\n<img src=x onerror=alert(3)>")
    with live.client() as client:
        listing = client.get("/dev/mail").text
        href = re.search(r'href="(/dev/mail/\d+)"', listing).group(1)
        shown = client.get(href).text
    for text in (listing, shown):
        assert "<b>お知らせ</b>" not in text and "&lt;b&gt;お知らせ&lt;/b&gt;" in text
    assert "<script>" not in shown and "<img" not in shown and "&lt;script&gt;alert(1)&lt;/script&gt;" in shown
    assert 'href="javascript' not in shown
    assert all(url.startswith(("http://", "/dev/mail")) for url in re.findall(r'href="([^"]+)"', shown))


HOSTILE_PATHS = ["/dev/mail/abc", "/dev/mail/0", "/dev/mail/-1", "/dev/mail/99999999999999999999999", "/dev/mail/2147483648",
                 "/dev/mail/2147483647", "/dev/mail/%EF%BC%91", "/dev/mail/1e3", "/dev/mail/" + "9" * 5000]


async def test_a_hostile_mail_id_in_the_page_is_404(live):
    with live.client() as client:
        answers = {path: client.get(path) for path in HOSTILE_PATHS}
        other = client.get("/dev/mail/1%2F2")  # /dev/mail/1/2: no such route
    assert {path: a.status_code for path, a in answers.items()} == dict.fromkeys(HOSTILE_PATHS, 404)
    assert all("No such mail" in a.text for a in answers.values())
    assert other.status_code == 404


async def test_a_nul_in_the_page_address_is_refused_not_an_error(live):
    with live.client() as client:
        answers = [client.get("/dev/mail/1%00"), client.get("/dev/mail", params={"to": "a\x00b"}),
                   client.get("/dev/mail", params={"to": "x" * 10000})]
    assert [a.status_code for a in answers[:2]] == [400, 400]
    assert answers[2].status_code == 200


@pytest.fixture
async def production_server(tmp_path, rules_copy):
    from persistence import migrate
    from persistence.db import Database

    url = f"sqlite+aiosqlite:///{tmp_path / 'production.db'}"
    db = Database(url)
    await migrate.upgrade(db.engine)
    await db.dispose()
    settings = settings_for(url, rules_copy, environment="production", payment_secret=SECRET,
                            allow_sandbox_gateway_in_production=True, graphiql=False, introspection=False)
    server = await asyncio.to_thread(start_server, settings, FixedClock(tokyo(2026, 4, 1, 10)))
    yield server
    await asyncio.to_thread(server.stop)


async def test_the_page_is_not_there_in_production(production_server):
    with production_server.client() as client:
        answers = [client.get(path) for path in ("/dev/mail", "/dev/mail/1", "/dev/mail?to=a@b.example")]
        assert client.get("/healthz").status_code == 200
    assert [a.status_code for a in answers] == [404, 404, 404]
