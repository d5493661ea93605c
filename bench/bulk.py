# ruff: noqa: E402 - the imports below need the repository on sys.path first
"""Bulk filing: one 100-row ``createApplications`` against 100 single ``createApplication``
calls, through the whole HTTP stack of the app (in-process ASGI: Starlette, the middleware,
the production schema with every extension), in the same run.

    .venv/bin/python bench/bulk.py [--database sqlite|postgresql] [--rounds 7] [--rows 100]

Each round times, in alternating order: one ``createApplications`` of ``--rows`` rows (each
a certificate of origin with one goods line, sent as a variable), the same rows as
``--rows`` ``createApplication`` calls one after the other, and — the alternative not
taken — the bulk call with one flush per row (``use_cases.create_many`` called per row),
which says whether the single multi-row INSERT is worth its code. The script prints the
medians: the time of one bulk call, of the singles in all and of one single call, and the
ratios. PostgreSQL needs the server of the tests (127.0.0.1:5432, database ``test``); a
scratch schema is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import functools
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

# the repository, not bench/ (a module there could shadow the standard library)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from persistence import migrate
from persistence.db import Database
from resolvers.applications import use_cases
from resolvers.core.clock import TOKYO, FixedClock
from resolvers.core.settings import PROJECT_DIR, Settings
from rules.runtime import RulesRuntime
from tradecert.app import create_app
from tradecert.composition import build_services
from tradecert.demo import DEMO_PASSWORD, seed_demo

NOW = dt.datetime(2026, 4, 1, 10, tzinfo=TOKYO)
PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
LOGIN = """mutation($p: String!) { login(input: {chamberCode: "2701", username: "signer-2701000002", password: $p}) {
  token } }"""
ONE = """mutation($input: CreateApplicationInput!) { createApplication(input: $input) { application { id } errors { code } } }"""
MANY = """mutation($rows: [CreateApplicationInput!]!) { createApplications(input: {applications: $rows}) {
  applications { id } errors { code } } }"""
ROW = {"type": "ORIGIN_JAPANESE", "destinationCountry": "US", "goodsCategory": "食品", "exporterName": "加古川自然食品株式会社",
       "feePayment": "COUPON", "consignee": "ACME Trading Inc., Seattle", "transport": "By sea, from Kobe to Seattle",
       "personInCharge": "ツァイス", "goods": [{"description": "Green tea (matcha), 100 g tins", "quantity": "1,200 tins",
                                                "hsCode": "0902.10", "originCountry": "JP"}]}


def rows(n: int, round_: int, case: str) -> list[dict[str, Any]]:
    return [{**ROW, "invoiceNumber": f"B-{case}-{round_}-{i}"} for i in range(n)]


async def _post(client: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    body: dict[str, Any] = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body


async def _timed(call: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


async def run(database: str, rounds: int, n: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        schema = None
        if database == "postgresql":
            import asyncpg

            schema = f"bench_{uuid.uuid4().hex[:10]}"
            conn = await asyncpg.connect(PG.replace("+asyncpg", ""))
            await conn.execute(f'CREATE SCHEMA "{schema}"')
            await conn.close()
        url = PG if schema else f"sqlite+aiosqlite:///{tmp}/bench.db"
        try:
            settings = Settings.from_env({"TRADECERT_DATABASE_URL": url, "TRADECERT_RULES_DIR": str(PROJECT_DIR / "rules")})
            settings = settings.with_(rules_poll_seconds=0, run_jobs=False)
            clock = FixedClock(NOW)
            db = Database(url, schema=schema)
            await migrate.upgrade(db.engine)
            await seed_demo(db, clock)
            services = build_services(settings=settings, db=db, rules=RulesRuntime(settings.rules_dir), clock=clock)
            app = create_app(settings, services=services)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
                token = (await _post(client, LOGIN, {"p": DEMO_PASSWORD}))["data"]["login"]["token"]
                client.headers["Authorization"] = f"Bearer {token}"
                return await _rounds(client, rounds, n)
        finally:
            await db.dispose()
            if schema:
                import asyncpg

                conn = await asyncpg.connect(PG.replace("+asyncpg", ""))
                await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
                await conn.close()


async def _rounds(client: httpx.AsyncClient, rounds: int, n: int) -> dict[str, list[float]]:
    together = use_cases.create_many

    async def per_row(tx: Any, ctx: Any, who: Any, drafts: Any) -> list[int]:
        return [app_id for draft in drafts for app_id in await together(tx, ctx, who, [draft])]

    async def bulk(round_: int) -> None:
        body = await _post(client, MANY, {"rows": rows(n, round_, "bulk")})
        assert len(body["data"]["createApplications"]["applications"]) == n, body

    async def bulk_per_row(round_: int) -> None:
        use_cases.create_many = per_row  # type: ignore[assignment]  # the alternative, measured
        try:
            body = await _post(client, MANY, {"rows": rows(n, round_, "flush")})
        finally:
            use_cases.create_many = together  # type: ignore[assignment]
        assert len(body["data"]["createApplications"]["applications"]) == n, body

    async def singles(round_: int) -> None:
        for row in rows(n, round_, "single"):
            body = await _post(client, ONE, {"input": row})
            assert body["data"]["createApplication"]["errors"] == [], body

    cases: dict[str, Callable[[int], Awaitable[None]]] = {
        "bulk": bulk, "singles": singles, "bulk, a flush per row": bulk_per_row}
    for name, case in cases.items():  # warm up: caches, pools, the first statements
        await case(-1 - list(cases).index(name))
    times: dict[str, list[float]] = {name: [] for name in cases}
    for round_ in range(rounds):
        order = list(cases) if round_ % 2 == 0 else list(reversed(cases))
        for name in order:
            times[name].append(await _timed(functools.partial(cases[name], round_)))
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--rows", type=int, default=100)
    args = parser.parse_args()
    times = asyncio.run(run(args.database, args.rounds, args.rows))
    bulk, singles, flushes = (statistics.median(times[k]) for k in ("bulk", "singles", "bulk, a flush per row"))
    ratios = [s / b for s, b in zip(times["singles"], times["bulk"])]
    print(f"{args.database}, {args.rows} applications, {args.rounds} rounds (medians)")
    for label, value in ((f"createApplications, 1 call of {args.rows} rows", f"{bulk * 1000:8.1f} ms"),
                         (f"createApplication, {args.rows} calls",
                          f"{singles * 1000:8.1f} ms  ({singles / args.rows * 1000:.2f} ms per call)"),
                         ("bulk, a flush per row (not taken)", f"{flushes * 1000:8.1f} ms"),
                         (f"{args.rows} single calls / 1 bulk call", f"{statistics.median(ratios):8.1f} x")):
        print(f"  {label:<40}: {value}")
    print(f"  one bulk call = {bulk / (singles / args.rows):.1f} single calls; a flush per row costs "
          f"{flushes / bulk:.2f} x the single INSERT")


if __name__ == "__main__":
    main()
