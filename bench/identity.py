"""``me`` and ``subAccounts`` in-process, against ``{ hello }``, with the floors that bound them.

    .venv/bin/python bench/identity.py [--seconds 10] [--rounds 9]

The production schema (``build_schema``: every extension) answers ``me`` and ``subAccounts``
(3 sub-IDs of ``signer-2701000002``, each with its registration) from a SQLite file with the
demo data and a real session token, a fresh ``Context`` per request closed after it as the
server does. Baseline: a strawberry ``{ hello }`` with the same parser and validation caches.
Floors, no database at all:

* ``me, viewer in memory``: the production schema with the request's viewer already
  resolved — what the type layer and the extensions cost;
* ``subAccounts, views in memory``: tradecert's ``Account`` type built from views already
  read, in a schema with only the caches.

Interleaved rounds; medians of the rates and of the per-round ratios. Over HTTP (wrk, one
worker each, the same cases against ``{ hello }`` on tradecert's stack): bench/over_http.py
``--only me,subs``.
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
from resolvers.core.clock import TOKYO, FixedClock  # noqa: E402
from resolvers.core.context import Context  # noqa: E402
from resolvers.core.settings import PROJECT_DIR, Settings  # noqa: E402
from resolvers.identity import accounts, actor, sessions, subaccounts  # noqa: E402
from resolvers.identity.queries import AccountView  # noqa: E402
from rules.runtime import RulesRuntime  # noqa: E402
from schema import build_schema  # noqa: E402
from schema.identity import Account  # noqa: E402
from tradecert.composition import build_services  # noqa: E402
from tradecert.demo import DEMO_PASSWORD, seed_demo  # noqa: E402

NOW = dt.datetime(2026, 4, 1, 10, tzinfo=TOKYO)
HELLO = "{ hello }"
ME = "query Me { me { id kind username name status registration { number name membership } } }"  # as over_http.py
SUBS = "query SubAccounts { subAccounts { id username name email status } }"


@strawberry.type
class HelloQuery:
    @strawberry.field
    def hello(self) -> str:
        return "world"


SUB_VIEWS: list[AccountView] = []  # filled once they have been read


@strawberry.type
class FloorQuery:
    @strawberry.field
    def sub_accounts(self) -> list[Account]:
        return [Account.from_view(view) for view in SUB_VIEWS]


def _cached(query: type) -> strawberry.Schema:
    return strawberry.Schema(query=query, types=[Account], extensions=[
        lambda: ParserCache(maxsize=64), lambda: ValidationCache(maxsize=64)])


async def _rate(schema: strawberry.Schema, query: str, make_context: Callable[[], Any], span: float) -> float:
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < span:
        for _ in range(20):
            context = make_context()
            try:
                result = await schema.execute(query, context_value=context)
            finally:
                if context is not None:
                    await context.close()
            assert not result.errors and result.data, result.errors
        count += 20
    return count / (time.perf_counter() - started)


async def ratios(seconds: float, rounds: int) -> dict[str, tuple[float, float]]:
    """name → (median requests/s, median ratio to { hello })."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env({"TRADECERT_DATABASE_URL": f"sqlite:///{tmp}/bench.db",
                                      "TRADECERT_RULES_DIR": str(PROJECT_DIR / "rules")})
        clock = FixedClock(NOW)
        db = Database(settings.database_url)
        services = build_services(settings=settings, db=db, rules=RulesRuntime(settings.rules_dir), clock=clock)
        await migrate.upgrade(db.engine)
        await seed_demo(db, clock)
        token = (await sessions.login(Context(services=services), "2701", "signer-2701000002", DEMO_PASSWORD)).token
        request = SimpleNamespace(headers={"authorization": f"Bearer {token}"}, cookies={})
        setup = Context(services=services, request=request)
        for i in range(3):
            await subaccounts.create_sub_account(setup, f"ベンチ {i}号", f"bench-pass-{i}-Xy9!", f"bench{i}@kakogawa.example", None)
        setup = Context(services=services, request=request)
        viewer = await actor.viewer(setup)
        SUB_VIEWS[:] = await accounts.sub_accounts(setup)
        await setup.close()
        assert viewer is not None and len(SUB_VIEWS) == 3

        def with_viewer() -> Context:
            context = Context(services=services, request=request)
            context.loaders["viewer"] = viewer  # what the request's first read would have found
            return context

        production = build_schema(settings)
        cases: dict[str, tuple[strawberry.Schema, str, Callable[[], Any]]] = {
            "{ hello } (baseline)": (_cached(HelloQuery), HELLO, lambda: None),
            "me from SQLite": (production, ME, lambda: Context(services=services, request=request)),
            "me, viewer in memory (floor)": (production, ME, with_viewer),
            "subAccounts from SQLite": (production, SUBS, lambda: Context(services=services, request=request)),
            "subAccounts, views in memory (floor)": (_cached(FloorQuery), SUBS, lambda: None),
        }
        for case in cases.values():  # warm up
            await _rate(*case, 0.3)
        rates: dict[str, list[float]] = {name: [] for name in cases}
        ratio: dict[str, list[float]] = {name: [] for name in cases}
        for n in range(rounds):
            order = list(cases) if n % 2 == 0 else list(reversed(cases))
            this = {name: await _rate(*cases[name], seconds / rounds / len(cases)) for name in order}
            for name, value in this.items():
                rates[name].append(value)
                ratio[name].append(value / this["{ hello } (baseline)"])
        await db.dispose()
    return {name: (statistics.median(rates[name]), statistics.median(ratio[name])) for name in cases}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10, help="measuring time in all, over the rounds")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    for name, (rate, value) in asyncio.run(ratios(args.seconds, args.rounds)).items():
        print(f"{name:38}: {rate:7.0f} req/s  {value:5.2f} of {{ hello }}  {1e6 / rate:6.0f} us/request")


if __name__ == "__main__":
    main()
