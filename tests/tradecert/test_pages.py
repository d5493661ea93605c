"""The pages people reach by a link work as plain HTML forms, with JavaScript off, over
plain HTTP, on SQLite and PostgreSQL: the sub-ID activation page (/activate) posts to
itself and answers with a page; the sandbox card page's success screen links back. A
cross-site form post is refused (the Origin check of pages/common.py)."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import httpx
import pytest

from resolvers.core.clock import FixedClock
from resolvers.core.settings import Settings
from tests.conftest import settings_for, start_server, tokyo
from tests.identity.test_identity_sessions import login
from tests.identity.test_subaccounts import ACTIVATE, SUB_PASSWORD, as_user, create_sub, mailed_token, notify
from tests.payments.test_card_payments import GOOD, card_start, pay, purchase_node
from tests.tradecert.test_fee_page import text_of
from tests.tradecert.test_graphiql import CHROMIUM, _chromium

SHOTS = os.environ.get("TRADECERT_SCREENSHOTS")  # a folder: the browser tests save what they saw there


async def a_notified_sub_id(live) -> tuple[str, str]:
    """A sub-ID notified by mail: (its username, the link's token)."""
    signer = as_user(live, "signer-2701000002")
    sub = create_sub(live, signer)
    notify(live, signer, sub["id"])
    token, _ = await mailed_token(live)
    return sub["username"], token


def post_activation(live, token: str, username: str, password: str, **headers: str) -> httpx.Response:
    return httpx.post(f"{live.url}/activate", data={"token": token, "username": username, "password": password},
                      headers=headers, timeout=30)


async def test_the_activation_page_is_a_form_that_posts_to_itself(live):
    username, token = await a_notified_sub_id(live)
    page = httpx.get(f"{live.url}/activate", params={"token": token})
    assert page.status_code == 200
    assert '<form method="post" action="/activate"' in page.text and f'value="{token}"' in page.text
    assert "form-action 'self'" in page.headers["content-security-policy"]

    activated = post_activation(live, token, username, SUB_PASSWORD, Origin=live.url)
    assert activated.status_code == 200 and activated.headers["content-type"].startswith("text/html")
    seen = text_of(activated.text)
    assert "有効化しました" in seen and 'data-code="ACTIVATED"' in activated.text
    assert "<form" not in activated.text  # nothing left to submit
    assert activated.headers["referrer-policy"] == "no-referrer" and activated.headers["cache-control"] == "no-store"
    assert login(live, username, SUB_PASSWORD)["errors"] == []

    again = post_activation(live, token, username, SUB_PASSWORD, Origin=live.url)
    assert again.status_code == 422 and 'data-code="TOKEN_INVALID"' in again.text  # a link works once
    assert "<form" not in again.text  # nothing another try with this link could change


async def test_a_wrong_password_names_the_sub_id_and_password_not_a_chamber_code(live):
    username, token = await a_notified_sub_id(live)
    wrong = post_activation(live, token, username, "not-the-password-1", Origin=live.url)
    assert wrong.status_code == 422 and 'data-code="INVALID_CREDENTIALS"' in wrong.text
    seen = text_of(wrong.text)
    assert "サブIDまたはパスワードが正しくありません" in seen and "商工会議所コード" not in seen
    assert f'value="{username}"' in wrong.text and "not-the-password-1" not in wrong.text  # a password is never echoed
    assert f'value="{token}"' in wrong.text  # the form is there again, for another try
    # the API says the same for activateSubAccount (login keeps naming the chamber code: its form has one)
    api = live.graphql(ACTIVATE.replace("errors { code field }", "errors { code field message }"),
                       {"t": token, "u": username, "p": "not-the-password-2"}).json()["data"]["activateSubAccount"]
    assert api["errors"][0]["code"] == "INVALID_CREDENTIALS"
    assert "サブIDまたはパスワード" in api["errors"][0]["message"] and "商工会議所コード" not in api["errors"][0]["message"]
    assert "商工会議所コード" in login(live, "signer-2701000002", "wrong-password-0")["errors"][0]["message"]


async def test_a_cross_site_form_post_is_refused_and_activates_nothing(live):
    username, token = await a_notified_sub_id(live)
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Origin": "null", "Sec-Fetch-Site": "cross-site"}, {"Origin": live.url + ".evil.example"}):
        refused = post_activation(live, token, username, SUB_PASSWORD, **headers)
        assert refused.status_code == 403, headers
        assert 'data-code="CSRF"' in refused.text and "別のサイト" in text_of(refused.text)
    assert login(live, username, SUB_PASSWORD)["errors"][0]["code"] == "INVALID_CREDENTIALS"  # still not active
    # what a browser sends from the page itself: it sends no referrer, so its Origin is "null"
    same_site = post_activation(live, token, username, SUB_PASSWORD, Origin="null", **{"Sec-Fetch-Site": "same-origin"})
    assert same_site.status_code == 200


def test_a_cross_site_post_to_the_card_page_charges_nothing(live):
    signer = as_user(live, "signer-2701000002")
    url = purchase_node(live, signer, card_start(live, signer)["id"])["paymentUrl"]
    refused = httpx.post(url, data=GOOD, headers={"Origin": "https://evil.example"}, timeout=30)
    assert refused.status_code == 403 and 'data-code="CSRF"' in refused.text
    assert 'data-code="PAID"' in pay(url, GOOD).text  # the session is still open


async def test_bad_form_bodies_are_answered_with_a_page_never_a_500(live):
    for body, content_type in ((b"token=%ff%fe&username=\x00&password=", "application/x-www-form-urlencoded"),
                               (b"{}", "application/json"), (b"x" * 5000, "application/x-www-form-urlencoded"),
                               (b"token=a&token=b", "application/x-www-form-urlencoded")):
        answer = httpx.post(f"{live.url}/activate", content=body, headers={"Content-Type": content_type}, timeout=30)
        assert 400 <= answer.status_code < 500, (body[:30], answer.status_code)
        assert answer.headers["content-type"].startswith(("text/html", "application/json"))


def test_the_card_page_success_screen_links_back(live):
    signer = as_user(live, "signer-2701000002")
    url = purchase_node(live, signer, card_start(live, signer)["id"])["paymentUrl"]
    done = pay(url, GOOD)
    assert done.status_code == 200 and 'data-code="PAID"' in done.text
    assert f'<a href="{live.url}/" class="back">' in done.text and "戻る" in text_of(done.text)
    again = httpx.get(url)  # the same screen when the page is opened again
    assert 'class="back"' in again.text


async def test_the_card_page_return_url_is_a_setting(migrated, rules_copy):
    target, _db = migrated
    settings = settings_for(target.url, rules_copy, payment_return_url="https://eco.example.jp/orders?from=card&x=<1>")
    server = await asyncio.to_thread(start_server, settings, FixedClock(tokyo(2026, 4, 1, 10)), target.schema)
    try:
        signer = as_user(server, "signer-2701000002")
        url = purchase_node(server, signer, card_start(server, signer)["id"])["paymentUrl"]
        done = await asyncio.to_thread(pay, url, GOOD)
    finally:
        await asyncio.to_thread(server.stop)
    assert '<a href="https://eco.example.jp/orders?from=card&amp;x=&lt;1&gt;" class="back">' in done.text


def test_the_return_url_must_be_an_http_address():
    base = {"TRADECERT_DATABASE_URL": "sqlite+aiosqlite:///x.db"}
    assert Settings.from_env({**base, "TRADECERT_PAYMENT_RETURN_URL": "https://eco.example.jp/"}).payment_return_url \
        == "https://eco.example.jp/"
    assert Settings.from_env(base).payment_return_url is None
    for bad in ("javascript:alert(1)", "/orders", "ftp://eco.example.jp/"):
        with pytest.raises(ValueError, match="TRADECERT_PAYMENT_RETURN_URL"):
            Settings.from_env({**base, "TRADECERT_PAYMENT_RETURN_URL": bad})


async def _browser(playwright):
    return await playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--no-first-run", "--disable-default-apps", "--disable-extensions"])


async def _shot(page, name: str) -> None:
    if SHOTS:
        await asyncio.to_thread(Path(SHOTS).mkdir, parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


async def test_activation_and_card_payment_work_in_chromium_without_javascript(live):
    async_playwright = _chromium()
    username, token = await a_notified_sub_id(live)
    signer = as_user(live, "signer-2701000002")
    card_url = purchase_node(live, signer, card_start(live, signer)["id"])["paymentUrl"]
    async with async_playwright() as playwright:
        browser = await _browser(playwright)
        try:
            context = await browser.new_context(java_script_enabled=False, viewport={"width": 900, "height": 700}, locale="ja-JP")
            page = await context.new_page()
            await page.goto(f"{live.url}/activate?token={token}")
            await _shot(page, "activate-form")
            await page.fill("input[name=username]", username)
            await page.fill("input[name=password]", "not-the-password-1")
            async with page.expect_navigation():
                await page.click("button[type=submit]")
            assert "サブIDまたはパスワードが正しくありません" in await page.inner_text("body")
            await _shot(page, "activate-wrong-password")
            await page.fill("input[name=password]", SUB_PASSWORD)  # the sub-ID is kept, the password is not
            assert await page.input_value("input[name=username]") == username
            async with page.expect_navigation():
                await page.click("button[type=submit]")
            assert "有効化しました" in await page.inner_text("body")
            await _shot(page, "activate-done")

            await page.goto(card_url)
            await _shot(page, "card-form")
            for name, value in GOOD.items():
                await page.fill(f"input[name={name}]", value)
            async with page.expect_navigation():
                await page.click("button[type=submit]")
            assert "お支払いが完了しました" in await page.inner_text("body")
            assert await page.get_attribute("a.back", "href") == f"{live.url}/"
            await _shot(page, "card-paid")

            await page.goto(f"{live.url}/fees?on=2026-03-31")
            await _shot(page, "fees-public")
            await page.goto(f"{live.url}/fees?on=2026-03-31&references=1")
            await _shot(page, "fees-staff")
        finally:
            await browser.close()
    assert login(live, username, SUB_PASSWORD)["errors"] == []


async def test_activation_with_javascript_on_posts_once_and_shows_the_same_answer(live):
    async_playwright = _chromium()
    username, token = await a_notified_sub_id(live)
    posts: list[str] = []
    errors: list[str] = []
    async with async_playwright() as playwright:
        browser = await _browser(playwright)
        try:
            context = await browser.new_context(viewport={"width": 900, "height": 700}, locale="ja-JP")
            await context.add_init_script(
                "window.__violations = [];"
                "document.addEventListener('securitypolicyviolation', e => window.__violations.push(e.violatedDirective));")
            page = await context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
            await page.goto(f"{live.url}/activate?token={token}")
            await page.fill("input[name=username]", username)
            await page.fill("input[name=password]", SUB_PASSWORD)
            async with page.expect_navigation():
                await page.dblclick("button[type=submit]")  # a double click posts once: the link works once
            assert "有効化しました" in await page.inner_text("body")
            assert await page.evaluate("window.__violations") == [] and errors == []
            await _shot(page, "activate-done-js")
        finally:
            await browser.close()
    assert posts == [f"{live.url}/activate"]


async def test_the_card_page_s_default_way_back_is_a_page_not_a_404(live):
    signer = as_user(live, "signer-2701000002")
    done = pay(purchase_node(live, signer, card_start(live, signer)["id"])["paymentUrl"], GOOD)
    [back] = re.findall(r'href="([^"]+)" class="back"', done.text)
    home = httpx.get(back)
    assert home.status_code == 200 and home.headers["content-type"].startswith("text/html")
    seen = text_of(home.text)
    assert "貿易関係証明発給システム" in seen and 'href="/fees"' in home.text and 'href="/verify"' in home.text
    assert "Not Found" not in seen


async def test_the_fee_page_fits_a_phone_screen(live):
    """A wide table scrolls inside its section; the page itself never scrolls sideways."""
    async_playwright = _chromium()
    async with async_playwright() as playwright:
        browser = await _browser(playwright)
        try:
            context = await browser.new_context(viewport={"width": 375, "height": 700})
            page = await context.new_page()
            for path in ("/fees", "/fees?references=1"):
                await page.goto(f"{live.url}{path}")
                await _shot(page, "fees-phone" + ("-staff" if "references" in path else ""))
                width = await page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
                assert width[0] <= width[1], (path, width)
        finally:
            await browser.close()


async def test_the_activation_page_without_the_link_s_token_says_so_and_shows_no_form(live):
    for url in (f"{live.url}/activate", f"{live.url}/activate?token=", f"{live.url}/activate?token=%20"):
        page = httpx.get(url)
        assert page.status_code == 400 and 'data-code="TOKEN_MISSING"' in page.text, url
        assert "通知メールに記載のURL" in text_of(page.text) and "<form" not in page.text
