"""The GraphQL-over-HTTP audit suite (npm ``graphql-http``, ``auditServer``, pinned in
tests/tradecert/graphql_http_audit/package-lock.json) against a real server: no errors and
no warnings. The notices left are the GET audits we refuse on purpose (docs/api.md,
GraphQL over HTTP). The table is printed and written to var/graphql-http-audit.txt."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

AUDIT_DIR = Path(__file__).parent / "graphql_http_audit"
TABLE = Path(__file__).parents[2] / "var" / "graphql-http-audit.txt"
REFUSED_ON_PURPOSE = {"5A70", "D6D5", "6A70"}  # queries over GET (docs/api.md, GraphQL over HTTP)


def install_audit_suite() -> None:
    """``npm ci`` from the lock file, once (make test does it first; a plain pytest run too)."""
    npm = shutil.which("npm")
    assert npm and shutil.which("node"), "node and npm are needed for the GraphQL-over-HTTP audit"
    installed = AUDIT_DIR / "node_modules" / ".package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= (AUDIT_DIR / "package-lock.json").stat().st_mtime:
        return
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=AUDIT_DIR, check=True, timeout=300)


def run_audit(url: str) -> list[dict]:
    done = subprocess.run(["node", "audit.mjs", f"{url}/graphql"], cwd=AUDIT_DIR, capture_output=True, text=True,
                          timeout=120, check=True)
    return json.loads(done.stdout)


def table(results: list[dict]) -> str:
    rows = [f"{r['id']:<5} {r['status']:<6} {r['name']}" + (f"  ({r['reason']})" if r["reason"] else "")
            for r in results]
    counts = {status: sum(r["status"] == status for r in results) for status in ("ok", "notice", "warn", "error")}
    return "\n".join(["id    status name", *rows, ", ".join(f"{n} {s}" for s, n in counts.items())]) + "\n"


async def test_the_graphql_over_http_audit_finds_no_error_and_no_warning(sqlite_live):
    await asyncio.to_thread(install_audit_suite)
    live = await asyncio.to_thread(sqlite_live)
    results = await asyncio.to_thread(run_audit, live.url)
    text = table(results)
    print("\n" + text)
    TABLE.parent.mkdir(exist_ok=True)
    TABLE.write_text(text, encoding="utf-8")
    assert len(results) > 40, text
    assert [r for r in results if r["status"] in ("warn", "error")] == [], text
    assert {r["id"] for r in results if r["status"] == "notice"} <= REFUSED_ON_PURPOSE, text


async def test_in_production_only_the_introspection_audits_fail_as_documented(sqlite_live):
    """28B9 and 2EA1 send ``__type(name: $name)``: introspection, off in production (docs/api.md)."""
    await asyncio.to_thread(install_audit_suite)
    live = await asyncio.to_thread(sqlite_live, graphiql=False, introspection=False)
    results = await asyncio.to_thread(run_audit, live.url)
    failed = {r["id"]: r["status"] for r in results if r["status"] != "ok"}
    assert failed == {"28B9": "error", "2EA1": "warn", **dict.fromkeys(REFUSED_ON_PURPOSE, "notice")}, table(results)
