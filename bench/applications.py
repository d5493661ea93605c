"""P2 in-process: ``applications(first: 20)`` against an in-memory list of the same shape.

    .venv/bin/python bench/applications.py [--seconds 10] [--rounds 9]

``applications(first: 20)`` with registration { number name membership chamber { name } },
createdBy and signer, read from a SQLite file (demo data, 20 drafts of ``signer-2701000002``,
a real session token) through the production schema (``build_schema``: every extension) and
a fresh ``Context`` per request, closed after it as the server does — against a strawberry
schema returning a cached in-memory page of 20 objects of the same shape (same parser and
validation caches). A third case is the floor of the type layer: the production types built
from views already in memory (``Application.from_view``), no database at all.

Interleaved rounds; the script prints the medians of the rates and of the per-round ratios.
Over HTTP (wrk, one worker each) see bench/over_http.py; submitApplication on PostgreSQL is
bench/submit.py.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

# the repository, not bench/ (a module there could shadow the standard library)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import strawberry  # noqa: E402
from strawberry.extensions import ParserCache, ValidationCache  # noqa: E402

from persistence import migrate  # noqa: E402
from persistence.db import Database  # noqa: E402
from resolvers.applications import queries  # noqa: E402
from resolvers.applications import use_cases as applications  # noqa: E402
from resolvers.core.clock import TOKYO, FixedClock  # noqa: E402
from resolvers.core.context import Context  # noqa: E402
from resolvers.core.settings import PROJECT_DIR, Settings  # noqa: E402
from resolvers.identity.sessions import login  # noqa: E402
from rules.runtime import RulesRuntime  # noqa: E402
from schema import build_schema  # noqa: E402
from schema.applications import Application, ApplicationConnection, ApplicationEdge, Shared  # noqa: E402
from schema.paging import PageInfo, encode_cursor  # noqa: E402
from tradecert.composition import build_services  # noqa: E402
from tradecert.demo import DEMO_PASSWORD, seed_demo  # noqa: E402

NOW = dt.datetime(2026, 4, 1, 10, tzinfo=TOKYO)
PAGE = """{ applications(first: 20) { totalCount edges { node { receiptNumber state invoiceNumber fee
  registration { number name membership chamber { name } } createdBy { username name } signer { username name } } } } }"""
DRAFT = applications.ApplicationData(
    type="INVOICE", destination_country="US", goods_category="一般機械", invoice_number="BENCH", exporter_name="bench",
    fee_payment="COUPON")


@strawberry.type
class MemChamber:
    name: str


@strawberry.type
class MemRegistration:
    number: str
    name: str
    membership: str
    chamber: MemChamber


@strawberry.type
class MemAccount:
    username: str
    name: str


@strawberry.type
class MemApplication:
    receipt_number: str | None
    state: str
    invoice_number: str
    fee: int | None
    registration: MemRegistration
    created_by: MemAccount
    signer: MemAccount


@strawberry.type
class MemEdge:
    node: MemApplication


@strawberry.type
class MemConnection:
    total_count: int
    edges: list[MemEdge]


CACHED = MemConnection(total_count=20, edges=[MemEdge(node=MemApplication(
    receipt_number=None, state="DRAFT", invoice_number="BENCH", fee=None,
    registration=MemRegistration(number="2701000002", name="加古川自然食品", membership="MEMBER",
                                 chamber=MemChamber(name="神戸商工会議所")),
    created_by=MemAccount(username="signer-2701000002", name="ツァイス"),
    signer=MemAccount(username="signer-2701000002", name="ツァイス"))) for _ in range(20)])


@strawberry.type
class MemQuery:
    @strawberry.field
    def applications(self, first: int = 20) -> MemConnection:
        return CACHED


FLOOR_VIEWS: list[queries.ApplicationView] = []  # filled once the page has been read


@strawberry.type
class FloorQuery:
    """Tradecert's own types, built per request from views already in memory."""

    @strawberry.field
    def applications(self, first: int = 20) -> ApplicationConnection:
        shared = Shared()
        edges = [ApplicationEdge(cursor=encode_cursor("Application", v.id), node=Application.from_view(v, shared))
                 for v in FLOOR_VIEWS]
        return ApplicationConnection(edges=edges, page_info=PageInfo(has_next_page=False, end_cursor=None),
                                     total_count=len(edges))


async def _rate(schema: strawberry.Schema, make_context: Callable[[], Any], span: float) -> float:
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < span:
        for _ in range(10):
            context = make_context()
            try:
                result = await schema.execute(PAGE, context_value=context)
            finally:
                if context is not None:
                    await context.close()
            assert not result.errors, result.errors
            assert len(result.data["applications"]["edges"]) == 20  # type: ignore[index]
        count += 10
    return count / (time.perf_counter() - started)


async def page_ratios(seconds: float, rounds: int) -> dict[str, tuple[float, float]]:
    """name → (median pages/s, median ratio to the in-memory list)."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env({"TRADECERT_DATABASE_URL": f"sqlite:///{tmp}/bench.db",
                                      "TRADECERT_RULES_DIR": str(PROJECT_DIR / "rules")})
        clock = FixedClock(NOW)
        db = Database(settings.database_url)
        services = build_services(settings=settings, db=db, rules=RulesRuntime(settings.rules_dir), clock=clock)
        await migrate.upgrade(db.engine)
        await seed_demo(db, clock)
        token = (await login(Context(services=services), "2701", "signer-2701000002", DEMO_PASSWORD)).token
        request = SimpleNamespace(headers={"authorization": f"Bearer {token}"}, cookies={})
        viewer_ctx = Context(services=services, request=request)
        async with viewer_ctx.writing():  # as run_mutation: the page read next sees the drafts
            for _ in range(20):
                await applications.create_application(viewer_ctx, DRAFT)
        FLOOR_VIEWS[:] = (await queries.application_page(viewer_ctx, queries.Filter(), 20, None)).applications
        await viewer_ctx.close()
        cases: dict[str, tuple[strawberry.Schema, Callable[[], Any]]] = {
            "in-memory list (baseline)": (strawberry.Schema(query=MemQuery, extensions=[
                lambda: ParserCache(maxsize=64), lambda: ValidationCache(maxsize=64)]), lambda: None),
            "floor: our types from views in memory": (strawberry.Schema(query=FloorQuery, extensions=[
                lambda: ParserCache(maxsize=64), lambda: ValidationCache(maxsize=64)]), lambda: None),
            "applications(first: 20) from SQLite": (build_schema(settings),
                                                    lambda: Context(services=services, request=request)),
        }
        for schema, make in cases.values():  # warm up: caches, the pool, the JIT-less interpreter's dicts
            await _rate(schema, make, 0.5)
        rates: dict[str, list[float]] = {name: [] for name in cases}
        ratios: dict[str, list[float]] = {name: [] for name in cases}
        for n in range(rounds):
            order = list(cases) if n % 2 == 0 else list(reversed(cases))
            this = {name: await _rate(*cases[name], seconds / rounds / len(cases)) for name in order}
            for name, value in this.items():
                rates[name].append(value)
                ratios[name].append(value / this["in-memory list (baseline)"])
        await db.dispose()
    return {name: (statistics.median(rates[name]), statistics.median(ratios[name])) for name in cases}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10, help="measuring time in all, over the rounds")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    for name, (rate, ratio) in asyncio.run(page_ratios(args.seconds, args.rounds)).items():
        print(f"{name:40}: {rate:7.0f} pages/s  {ratio:5.2f} of the in-memory list (P2 goal >= 0.6)")


if __name__ == "__main__":
    main()
