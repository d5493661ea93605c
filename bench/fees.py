"""Benchmark: feeSchedule throughput against a bare strawberry `{ hello }`, measured in the
same run with the same parser/validation caches, and rule evaluation cached vs uncached.

    .venv/bin/python bench/fees.py [--seconds 2]

Prints ratios (what to compare across machines) and absolute figures (this machine only).
Executes in-process through `schema.execute`, so HTTP and database costs are excluded on
both sides.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import strawberry
from strawberry.extensions import ParserCache, ValidationCache

from bench.over_http import FEE_SCHEDULE, baseline_schema
from resolvers.core.clock import Clock
from resolvers.core.context import Context, Services
from resolvers.core.settings import PROJECT_DIR, Settings
from rules.policy import load_policy
from rules.runtime import RulesRuntime
from schema import Query, build_schema

FEE_QUERY = """
query Fees {
  feeSchedule(on: "2026-04-01") {
    on rulesVersion
    member: applicationFee(membership: MEMBER)
    nonMember: applicationFee(membership: NON_MEMBER)
    couponProducts(membership: MEMBER) { code coupons price faceValue tax }
    registrationFee(kind: APPLICANT, membership: NON_MEMBER)
  }
}
"""


# Like-for-like with `{ hello }`: one root field and one scalar below it.
FEE_QUERY_MINIMAL = '{ feeSchedule(on: "2026-04-01") { applicationFee(membership: MEMBER) } }'


@strawberry.type
class HelloQuery:
    @strawberry.field
    def hello(self) -> str:
        return "world"


async def rate(schema: strawberry.Schema, query: str, context, seconds: float) -> float:
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(25):
            await schema.execute(query, context_value=context)
        count += 25
    return count / (time.perf_counter() - started)


async def interleaved(variants: dict[str, tuple], seconds: float, rounds: int = 15) -> dict[str, tuple[float, float]]:
    """Measure every variant in each round, round after round, so drifts in machine speed
    hit all of them alike; returns (median ops/s, median ratio to the first variant)."""
    for schema, query, context in variants.values():
        for _ in range(200):  # warm the caches
            result = await schema.execute(query, context_value=context)
            assert not result.errors, result.errors
    rates: dict[str, list[float]] = {name: [] for name in variants}
    ratios: dict[str, list[float]] = {name: [] for name in variants}
    baseline = next(iter(variants))
    for _ in range(rounds):
        this_round = {name: await rate(*spec, seconds / rounds) for name, spec in variants.items()}
        for name, value in this_round.items():
            rates[name].append(value)
            ratios[name].append(value / this_round[baseline])
    return {name: (statistics.median(rates[name]), statistics.median(ratios[name])) for name in variants}


def per_call_us(fn, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n * 1e6


async def main(seconds: float) -> None:
    settings = Settings.from_env({"TRADECERT_RULES_DIR": str(PROJECT_DIR / "rules")})
    services = Services(settings=settings, db=None, rules=RulesRuntime(settings.rules_dir), clock=Clock())  # type: ignore[arg-type]
    context = Context(services=services)

    bare = strawberry.Schema(query=HelloQuery, extensions=[lambda: ParserCache(maxsize=1024), lambda: ValidationCache(maxsize=1024)])
    bare_nocache = strawberry.Schema(query=HelloQuery)
    ours = build_schema(settings)

    ours_plain = strawberry.Schema(query=Query, extensions=[lambda: ParserCache(maxsize=1024), lambda: ValidationCache(maxsize=1024)])
    # the floor of the schedule clients ask for: the same fields and arguments over dictionaries
    answer = await ours.execute(FEE_SCHEDULE, context_value=context)
    assert not answer.errors, answer.errors
    floor_file = Path(tempfile.mkdtemp(prefix="tradecert-bench-fees-")) / "fees.json"
    floor_file.write_text(json.dumps({"data": answer.data}, ensure_ascii=False), encoding="utf-8")
    floor = baseline_schema(None, str(floor_file))
    results = await interleaved(
        {
            "bare strawberry { hello }, parser+validation caches": (bare, "{ hello }", None),
            "bare strawberry { hello }, no caches": (bare_nocache, "{ hello }", None),
            "feeSchedule minimal (1 amount), full extension set": (ours, FEE_QUERY_MINIMAL, context),
            "feeSchedule minimal (1 amount), caches only": (ours_plain, FEE_QUERY_MINIMAL, context),
            "feeSchedule full (17 fields), full extension set": (ours, FEE_QUERY, context),
            "client schedule (over_http.py), full extensions": (ours, FEE_SCHEDULE, context),
            "client schedule in memory, caches only (floor)": (floor, FEE_SCHEDULE, None),
        },
        seconds,
    )

    policy = load_policy(settings.rules_dir)
    on = dt.date(2026, 4, 1)
    cached = per_call_us(lambda: policy.lookup("application_fees", on, membership="MEMBER"), 200_000)
    uncached = per_call_us(lambda: policy.evaluate("application_fees", on, membership="MEMBER"), 20_000)
    products_uncached = per_call_us(lambda: policy.evaluate("coupon_products", on, membership="MEMBER"), 20_000)

    for name, (ops, ratio) in results.items():
        print(f"{name:52}: {ops:8.0f} ops/s  {ratio:5.2f} of baseline")
    print(f"rule lookup, cached   (application_fees)            : {cached:8.2f} µs/call")
    print(f"rule lookup, uncached (durable_rules post + delete) : {uncached:8.2f} µs/call  ({uncached / cached:.0f}x cached)")
    print(f"rule lookup, uncached (coupon_products, 2 hits)     : {products_uncached:8.2f} µs/call")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=6.0, help="measuring time per variant, spread over 15 rounds")
    args = parser.parse_args()
    asyncio.run(main(args.seconds))
