"""GraphiQL from this server alone: the vendored files match their manifest, the page names
no other origin (CSP, addresses), its files are cached for good, GraphiQL off serves neither,
and in a real headless Chromium that may reach nothing but loopback the editor renders, runs
a query typed into it, sends the token of the headers tab, and breaks no CSP rule.

The browser runs against the embedded SQLite database only: what it checks is the page and
the HTTP edge, which are the same on PostgreSQL (login and sessions on both databases are
tested in tests/identity).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from resolvers.core.clock import FixedClock
from tests.conftest import settings_for, start_server, tokyo
from tradecert.graphiql import CSP, SCRIPTS, STYLES, assets
from tradecert.graphiql.vendor import PINS, VENDOR_DIR, verify

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path("/tmp/shots")
HTML = {"Accept": "text/html"}


@pytest.fixture
async def graphiql_server(tmp_path, rules_copy):
    """A server on a migrated SQLite database with the demo data; ``start(**settings)``."""
    from persistence import migrate
    from persistence.db import Database
    from tradecert.demo import seed_demo

    url = f"sqlite+aiosqlite:///{tmp_path / 'graphiql.db'}"
    db = Database(url)
    await migrate.upgrade(db.engine)
    await seed_demo(db, FixedClock(tokyo(2026, 3, 1, 9, 0)))
    await db.dispose()
    servers = []

    def start(**changes):
        server = start_server(settings_for(url, rules_copy, **changes), FixedClock(tokyo(2026, 4, 1, 10)))
        servers.append(server)
        return server

    yield start
    for server in servers:
        await asyncio.to_thread(server.stop)


def test_vendored_files_match_their_manifest():
    assert verify() == []
    manifest = json.loads((VENDOR_DIR / "manifest.json").read_text(encoding="utf-8"))
    assert {p["name"]: p["version"] for p in manifest["packages"]} == PINS
    names = set(manifest["files"])
    assert {"LICENSE.react", "LICENSE.react-dom", "LICENSE.graphiql", "LICENSE.graphiql-explorer", "NOTICE"} <= names
    assert {*SCRIPTS, *STYLES} - {"tradecert-graphiql.js", "tradecert-graphiql.css"} <= names


def test_a_changed_vendored_file_is_reported(tmp_path):
    copy = tmp_path / "vendor"
    copy.mkdir()
    for path in VENDOR_DIR.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    (copy / "graphiql.min.js").write_bytes(b"alert(1)")
    (copy / "extra.js").write_bytes(b"")
    assert verify(copy) == ["graphiql.min.js: SHA-256 differs from the manifest", "extra.js: not in the manifest"]


def _addresses(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]*)"', page)


async def test_the_page_and_its_files_come_from_this_server(graphiql_server):
    live = await asyncio.to_thread(graphiql_server)
    with live.client() as client:
        response = client.get("/graphql", headers=HTML)
        page = response.text
        nonce = re.search(r'data-style-nonce="([^"]+)"', page)[1]
        assert response.headers["content-security-policy"] == CSP.format(nonce=nonce)
        assert client.get("/graphql", headers=HTML).headers["content-security-policy"] != response.headers[
            "content-security-policy"]  # a fresh nonce per page
        assert response.headers["cache-control"] == "no-store"
        assert "unpkg" not in page and "http" not in page.replace("http-equiv", "")
        assert re.findall(r"<script>|<style|style=", page) == []  # no inline script or style
        addresses = [a for a in _addresses(page) if a != "data:,"]
        assert [a.rsplit("/", 1)[1] for a in addresses] == [*STYLES, *SCRIPTS]
        for address in addresses:
            served = client.get("/" + address)
            assert served.status_code == 200, address
            assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert served.headers["content-type"].startswith("text/javascript" if address.endswith(".js") else "text/css")
            name = address.rsplit("/", 1)[1]
            assert served.content == assets().files[name].body
        assert client.get(f"/graphiql/{assets().version}/graphiql.min.js").headers["content-encoding"] == "gzip"
        assert client.get("/graphiql/0000000000000000/graphiql.min.js").status_code == 404
        assert client.get(f"/graphiql/{assets().version}/manifest.json").status_code == 404
        assert client.get(f"/graphiql/{assets().version}/..%2Fvendor.py").status_code == 404


async def test_graphiql_off_serves_neither_the_page_nor_its_files(graphiql_server):
    live = await asyncio.to_thread(graphiql_server, graphiql=False)
    with live.client() as client:
        page = client.get("/graphql", headers=HTML)
        script = client.get(f"/graphiql/{assets().version}/graphiql.min.js")
    assert "graphiql" not in page.text.lower()
    assert script.status_code == 404


# --------------------------------------------------------------------------- the browser


def _chromium():
    """Playwright's async API and Debian's chromium; CI must have both (.ci/run installs them)."""
    reason = None
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        reason = "the playwright package is not installed (pip install -e '.[test]')"
    if reason is None and not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason + "; CI must run the browser test")
        pytest.skip(reason)
    return async_playwright


def _loopback(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("data", "about", "blob") or parts.hostname in ("127.0.0.1", "::1", "localhost")


async def _editor_text(page, selector: str) -> str:
    return await page.evaluate("(s) => document.querySelector(s).CodeMirror.getValue()", selector)


async def test_graphiql_runs_a_typed_query_in_chromium_with_no_other_origin(graphiql_server):
    async_playwright = _chromium()
    live = await asyncio.to_thread(graphiql_server)
    login = live.graphql('mutation { login(input: {chamberCode: "2701", username: "signer-2701000002", '
                         'password: "demo-pass-2701"}) { token } }').json()
    token = login["data"]["login"]["token"]
    requests: list[str] = []
    blocked: list[str] = []
    console: list[str] = []
    errors: list[str] = []
    graphql_posts: list[dict] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-default-apps", "--disable-extensions"])
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 900})

            async def only_loopback(route):
                if _loopback(route.request.url):
                    await route.continue_()
                else:
                    blocked.append(route.request.url)
                    await route.abort()

            await context.route("**/*", only_loopback)
            # every securitypolicyviolation event of the page, whether or not it reaches the console
            await context.add_init_script(
                "window.__violations = [];"
                "document.addEventListener('securitypolicyviolation', e => window.__violations.push("
                "e.violatedDirective + ' ' + e.blockedURI));")
            page = await context.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
            page.on("pageerror", lambda error: errors.append(str(error)))

            def on_post(request):
                if request.method == "POST" and request.url.endswith("/graphql"):
                    graphql_posts.append({"body": request.post_data_json, "headers": request.headers})

            page.on("request", on_post)

            await page.goto(live.url + "/graphql")
            query_editor = ".graphiql-query-editor .CodeMirror"
            await page.wait_for_selector(query_editor, timeout=30_000)
            assert "feeSchedule" in await _editor_text(page, query_editor)  # our default query
            headers_editor = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"
            assert json.loads(await _editor_text(page, headers_editor)) == {"Authorization": "Bearer <token>"}

            # type a query into the editor, as a person would
            await page.click(query_editor)
            await page.keyboard.press("Control+A")
            await page.keyboard.press("Delete")
            await page.keyboard.type('{ feeSchedule(on: "2026-04-01") { on rulesVersion } me { username } }', delay=5)
            await page.keyboard.press("Escape")  # close the completion list, if open
            typed = await _editor_text(page, query_editor)
            assert re.sub(r"\s+", " ", typed).strip() == '{ feeSchedule(on: "2026-04-01") { on rulesVersion } me { username } }'

            await page.click(".graphiql-execute-button")
            await page.wait_for_function(
                "() => document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue().includes('rulesVersion')",
                timeout=30_000)
            anonymous = json.loads(await _editor_text(page, ".graphiql-response .CodeMirror"))
            assert anonymous["data"]["feeSchedule"]["on"] == "2026-04-01"
            assert anonymous["data"]["feeSchedule"]["rulesVersion"] == live.services.rules.current.version
            assert anonymous["data"]["me"] is None
            assert "authorization" not in graphql_posts[-1]["headers"]  # the placeholder is not sent

            # the token in the headers tab reaches the server (and passes the CSRF guard)
            await page.evaluate("([s, v]) => document.querySelector(s).CodeMirror.setValue(v)",
                                [headers_editor, json.dumps({"Authorization": f"Bearer {token}"})])
            await page.click(".graphiql-execute-button")
            await page.wait_for_function(
                "() => document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue()"
                ".includes('signer-2701000002')", timeout=30_000)
            assert graphql_posts[-1]["headers"]["authorization"] == f"Bearer {token}"

            # a dialog: the <style> element it adds carries the page's nonce, so the CSP allows it
            nonce = await page.get_attribute("#graphiql", "data-style-nonce")
            await page.click("button[aria-label='Open settings dialog']")
            await page.wait_for_selector(".graphiql-dialog", timeout=10_000)
            styled = await page.evaluate("(n) => [...document.querySelectorAll('style')].filter(s => s.nonce === n).length",
                                         nonce)
            assert styled >= 1
            await page.keyboard.press("Escape")

            # the explorer plugin (schema loaded by introspection through the same fetcher)
            await page.click("button[aria-label='Show GraphiQL Explorer']")
            await page.wait_for_selector(".graphiql-explorer-root >> text=feeSchedule", timeout=30_000)

            await asyncio.to_thread(SHOTS.mkdir, parents=True, exist_ok=True)
            await page.screenshot(path=str(SHOTS / "graphiql.png"))
            violations = await page.evaluate("window.__violations")
        finally:
            await browser.close()

    assert errors == []
    assert violations == []
    assert [line for line in console if "Content Security Policy" in line or line.startswith("error")] == []
    assert blocked == []
    assert requests and all(_loopback(url) for url in requests), requests
    assert all(post["headers"].get("content-type") == "application/json" for post in graphql_posts)
