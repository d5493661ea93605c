# ruff: noqa: E402 - the imports below need the repository on sys.path first
"""P4: ``submitApplication`` by coupon on PostgreSQL against ``pgbench -N`` on the same server.

    .venv/bin/python bench/submit.py [--rounds 5] [--seconds 5] [--workers 2] [--clients 8] [--registrations 8]

Each of our transactions is the real use case (``applications.submit_application``: the
registration and application locks, completeness, membership and fee from the rules, the
coupon debit, the receipt number, the state change, the audit row) called in-process,
without GraphQL or HTTP, by ``--clients`` asyncio clients spread over ``--workers``
processes (as ``tradecert serve --workers N`` would run), on drafts spread over
``--registrations`` applicants. The baseline is ``pgbench -N -c CLIENTS -j 2`` (TPC-B
without the branch and teller updates) in a scratch database of the same server.

The two run in interleaved rounds (the order alternating), and the script prints the
medians and the median of the per-round ratios. After every timed round a race checks
oversell: each of ``--registrations`` other applicants is given 5 coupons and 20 drafts,
all submitted at once by every client; exactly 5 per applicant may succeed, the rest must
be INSUFFICIENT_COUPONS. Then the money invariants of the tests (``tests/invariants.py``:
the ledger audit — entries = balance = lots — and each application holding a coupon
exactly while submitted) must hold; the script stops on the first disagreement.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path

# the repository, not bench/ (whose modules, e.g. bench/http.py, would shadow the standard library)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event, select, text
from sqlalchemy import inspect as sa_inspect

from bench.pg import PgBench
from persistence import locks, migrate
from persistence.db import Database
from persistence.models import Account, RegistrationMembership, TradeRegistration
from resolvers.applications import use_cases as applications
from resolvers.core.clock import TOKYO, FixedClock
from resolvers.core.context import Context, Services
from resolvers.core.errors import UserFailure
from resolvers.core.settings import PROJECT_DIR, Settings
from resolvers.coupons import ledger
from resolvers.identity import queries as identity_queries
from resolvers.identity.actor import Viewer
from rules.runtime import RulesRuntime
from tests.invariants import money_problems
from tradecert.composition import build_services
from tradecert.demo import seed_demo

DSN = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
NOW = dt.datetime(2026, 4, 1, 10, tzinfo=TOKYO)
STOCK = 1_000_000  # coupons of each timed registration: the timed rounds never run out
RACE_COUPONS, RACE_DRAFTS = 5, 20  # per race registration and round


def psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-d", "test", "-v", "ON_ERROR_STOP=1", "-c",
                    "SET client_min_messages = warning; " + sql], check=True)


def services_for(schema: str) -> Services:
    settings = Settings.from_env({"TRADECERT_DATABASE_URL": DSN, "TRADECERT_DATABASE_SCHEMA": schema,
                                  "TRADECERT_RULES_DIR": str(PROJECT_DIR / "rules")})
    return build_services(settings=settings, db=Database(DSN, schema=schema), rules=RulesRuntime(settings.rules_dir),
                          clock=FixedClock(NOW))


# --------------------------------------------------------------------------- set-up (main process)


async def _applicants(services: Services, prefix: str, count: int) -> list[Account]:
    """``count`` applicant registrations of the demo chamber, each with a member signer."""
    signers = []
    async with services.db.write() as session:
        chamber_id = await session.scalar(select(Account.chamber_id).where(Account.username == "signer-2701000002"))
        for i in range(count):
            reg = TradeRegistration(number=f"{prefix}{i:05d}", chamber_id=chamber_id, kind="APPLICANT", name=f"bench {prefix}{i}",
                                    valid_from=NOW.date(), allows_bank_transfer=True, allows_card=True, created_at=NOW)
            session.add(reg)
            await session.flush()
            session.add(RegistrationMembership(registration_id=reg.id, membership="MEMBER", valid_from=NOW - dt.timedelta(days=1)))
            signer = Account(kind="SIGNER", username=f"bench-{prefix}-{i}", chamber_id=chamber_id, registration_id=reg.id,
                             name="bench signer", status="ACTIVE", created_at=NOW, updated_at=NOW)
            session.add(signer)
            await session.flush()
            signers.append(signer)
    return signers


async def _credit(services: Services, signers: list[Account], coupons: int, key: str) -> None:
    for signer in signers:
        async with services.db.write() as session:
            await locks.registration(session, signer.registration_id)
            await ledger.credit(session, registration_id=signer.registration_id, coupons=coupons, kind="CHAMBER_OPERATION",
                                key=f"{key}-{signer.registration_id}", now=NOW, acquired_on=NOW.date(), rules_version="bench")


async def _drafts(services: Services, signers: list[Account], per_signer: int) -> list[tuple[int, int]]:
    """``per_signer`` INVOICE drafts by coupon for each signer, interleaved: (application id, signer id)."""
    by_signer = []
    async with services.db.write() as session:
        for signer in signers:
            ids = (await session.scalars(text(
                "INSERT INTO applications (registration_id, created_by_id, signer_id, type, destination_country, goods_category,"
                " invoice_number, exporter_name, fee_payment, state, coupon_uses, created_at, updated_at)"
                " SELECT :reg, :signer, :signer, 'INVOICE', 'US', '一般機械', 'BENCH-' || n, 'bench', 'COUPON', 'DRAFT', 0, :now, :now"
                " FROM generate_series(1, :n) AS n RETURNING id"),
                {"reg": signer.registration_id, "signer": signer.id, "now": NOW, "n": per_signer})).all()
            by_signer.append([(app_id, signer.id) for app_id in ids])
    return [pair for group in zip(*by_signer, strict=True) for pair in group]



async def viewer_of(services: Services, signer: Account) -> Viewer:
    """The signer as a request's viewer (as `viewer()` builds it from a session token)."""
    async with services.db.read() as unit:
        views = await identity_queries.accounts_by_id(unit, [signer.id], services.clock.now())
    record = {attr.key: getattr(signer, attr.key) for attr in sa_inspect(Account).column_attrs}
    return Viewer(views[signer.id], 0, record)

async def count_statements(services: Services, app_id: int, signer: Account) -> tuple[int, int]:
    """(SQL statements, units of work) of one submission, counted at the driver."""
    statements, units = [], [0]

    def on_execute(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    def on_begin(conn) -> None:
        units[0] += 1

    engine = services.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "begin", on_begin)
    try:
        ctx = Context(services=services)
        ctx.loaders["viewer"] = await viewer_of(services, signer)
        await applications.submit_application(ctx, app_id)
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
        event.remove(engine, "begin", on_begin)
    return len(statements), units[0]


# --------------------------------------------------------------------------- the floor: our statements in pgbench

# The seven statements one submission sends (as `one submission:` counts them, in the same
# order and shape), run by pgbench itself — a C client, no Python, no SQLAlchemy — on drafts
# of the bench schema. Each transaction writes what ours writes (a fresh ledger key each
# time; the UPDATE has no state condition so a draft picked twice is written again). Its
# tps over pgbench -N is the ceiling the database leaves our statement mix on this machine.
FLOOR_SCRIPT = """\\set app random({lo}, {hi})
\\set r random(1, 2000000000)
BEGIN;
SELECT registration_id AS reg FROM applications WHERE id = :app \\gset
SELECT * FROM trade_registrations WHERE id IN (:reg) ORDER BY id FOR NO KEY UPDATE;
SELECT * FROM applications WHERE id IN (:app) ORDER BY id FOR NO KEY UPDATE;
SELECT membership FROM registration_memberships WHERE registration_id = :reg AND valid_from <= now()
  AND (valid_until IS NULL OR valid_until > now()) ORDER BY valid_from DESC LIMIT 1;
WITH account AS (UPDATE coupon_accounts SET balance = balance - 1, updated_at = now()
    WHERE registration_id = :reg AND NOT EXISTS (SELECT FROM coupon_entries WHERE external_key = 'floor:' || :client_id || ':' || :r)
      AND balance >= 1 RETURNING balance),
  entry AS (INSERT INTO coupon_entries (registration_id, kind, coupons, balance_after, at, confirmed, actor_id, note, receipt_number, external_key)
    SELECT :reg, 'USE', -1, balance, now(), true, NULL, 'floor', lpad(nextval('receipt_numbers_id_seq')::text, 9, '0'),
      'floor:' || :client_id || ':' || :r FROM account RETURNING id, balance_after, receipt_number),
  picked AS (SELECT id, CASE WHEN coupons_left < 1 - before THEN coupons_left ELSE 1 - before END AS take FROM (
    SELECT id, coupons_left, coalesce(sum(coupons_left) OVER (ORDER BY acquired_on, id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
    FROM coupon_lots WHERE registration_id = :reg AND coupons_left > 0 AND EXISTS (SELECT FROM account)) AS running WHERE before < 1),
  allocations AS (INSERT INTO coupon_entry_lots (entry_id, lot_id, coupons) SELECT entry.id, picked.id, -picked.take FROM entry JOIN picked ON true
    RETURNING lot_id, coupons),
  moved AS (UPDATE coupon_lots SET coupons_left = coupon_lots.coupons_left + allocations.coupons FROM allocations
    WHERE coupon_lots.id = allocations.lot_id RETURNING allocations.coupons AS moved)
SELECT (SELECT id FROM entry), (SELECT balance_after FROM entry), (SELECT receipt_number FROM entry),
  (SELECT coalesce(sum(moved), 0) FROM moved), EXISTS (SELECT FROM coupon_entries WHERE external_key = 'floor:' || :client_id || ':' || :r);
UPDATE applications SET state = 'SUBMITTED',
  receipt_number = coalesce(receipt_number, lpad(nextval('receipt_numbers_id_seq')::text, 9, '0')), fee = 1210, fee_rules_version = 'application_fees@2026-04-01',
  fee_membership = 'MEMBER', submitted_at = now(), submitted_on = current_date, coupon_uses = coupon_uses + 1, hold_reason = NULL,
  updated_at = now() WHERE id = :app RETURNING *;
INSERT INTO audit_log (at, actor_id, responsible_id, chamber_id, action, target, request_id, detail)
  VALUES (now(), NULL, NULL, NULL, 'application.submit', 'Application:' || :app, NULL, 'floor') RETURNING id;
END;
"""


def floor_tps(schema: str, clients: int, seconds: int, lo: int, hi: int) -> float:
    """tps of pgbench running :data:`FLOOR_SCRIPT` on drafts ``lo``..``hi`` of ``schema``."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
        script.write(FLOOR_SCRIPT.format(lo=lo, hi=hi))
        script.flush()
        run = subprocess.run(["pgbench", "-h", "127.0.0.1", "-U", "postgres", "-n", "-f", script.name, "-c", str(clients),
                              "-j", "2", "-T", str(seconds), "test"], capture_output=True, text=True,
                             env={**os.environ, "PGOPTIONS": f"-c search_path={schema}"})
    if run.returncode:
        raise RuntimeError(f"pgbench failed: {run.stderr[-2000:]}")
    out = run.stdout
    found = re.search(r"tps = ([0-9.]+)", out)
    if found is None:
        raise RuntimeError(f"pgbench printed no tps: {out}")
    return float(found.group(1))


# --------------------------------------------------------------------------- the worker processes


async def _submit_all(services: Services, viewers: dict[int, Viewer], pairs: list[tuple[int, int]], clients: int,
                      seconds: float | None) -> tuple[int, dict[str, int], float]:
    """Submit ``pairs`` with ``clients`` clients until done or ``seconds`` pass: (done, refusals by code, elapsed)."""
    done, refused = 0, {}
    queue = list(reversed(pairs))
    started = time.perf_counter()
    deadline = started + seconds if seconds is not None else None

    async def client() -> None:
        nonlocal done
        while queue and (deadline is None or time.perf_counter() < deadline):
            app_id, signer_id = queue.pop()
            ctx = Context(services=services)
            ctx.loaders["viewer"] = viewers[signer_id]
            try:
                await applications.submit_application(ctx, app_id)
                done += 1
            except UserFailure as failure:
                refused[failure.code] = refused.get(failure.code, 0) + 1

    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    if seconds is not None and not queue and elapsed < seconds * 0.95:
        raise RuntimeError("a worker ran out of drafts before the round ended: raise --drafts")
    return done, refused, elapsed


def _worker(conn: Connection, schema: str, clients: int) -> None:
    """A serving process: one engine (its pool stays warm across rounds), commands over a pipe."""
    loop = asyncio.new_event_loop()
    services = services_for(schema)
    viewers: dict[int, Viewer] = {}
    while (command := conn.recv()) is not None:
        pairs, seconds = command
        wanted = {signer for _app, signer in pairs} - viewers.keys()

        async def load(ids: set[int]) -> None:
            async with services.db.read() as session:
                accounts = (await session.scalars(select(Account).where(Account.id.in_(ids)))).all()
            for account in accounts:
                viewers[account.id] = await viewer_of(services, account)

        if wanted:
            loop.run_until_complete(load(wanted))
        conn.send(loop.run_until_complete(_submit_all(services, viewers, pairs, clients, seconds)))
    loop.run_until_complete(services.db.dispose())
    loop.close()


class Workers:
    def __init__(self, schema: str, workers: int, clients: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes, self.processes = [], []
        for _ in range(workers):
            ours, theirs = context.Pipe()
            process = context.Process(target=_worker, args=(theirs, schema, max(1, clients // workers)), daemon=True)
            process.start()
            self.pipes.append(ours)
            self.processes.append(process)

    def run(self, pairs: list[tuple[int, int]], seconds: float | None) -> list[tuple[int, dict[str, int], float]]:
        for n, pipe in enumerate(self.pipes):
            pipe.send((pairs[n::len(self.pipes)], seconds))
        return [pipe.recv() for pipe in self.pipes]

    def close(self) -> None:
        for pipe in self.pipes:
            pipe.send(None)
        for process in self.processes:
            process.join(timeout=30)


# --------------------------------------------------------------------------- the run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="processes (this machine has 2 cores)")
    parser.add_argument("--clients", type=int, default=8, help="clients in all, spread over the workers")
    parser.add_argument("--registrations", type=int, default=8)
    parser.add_argument("--drafts", type=int, default=25_000, help="drafts per timed round (more than a round submits)")
    parser.add_argument("--floor", action="store_true",
                        help="also run our statements as a pgbench script each round (the database's ceiling for them)")
    args = parser.parse_args()

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    psql(f'CREATE SCHEMA "{schema}"')
    loop = asyncio.new_event_loop()
    services = services_for(schema)
    workers = None
    try:
        loop.run_until_complete(migrate.upgrade(services.db.engine))
        loop.run_until_complete(seed_demo(services.db, services.clock))
        timed = loop.run_until_complete(_applicants(services, "27018", args.registrations))
        racers = loop.run_until_complete(_applicants(services, "27017", args.registrations))
        loop.run_until_complete(_credit(services, timed, STOCK, "bench-stock"))
        probe = loop.run_until_complete(_drafts(services, timed[:1], 1))[0][0]
        statements, units = loop.run_until_complete(count_statements(services, probe, timed[0]))
        print(f"one submission: {statements} SQL statements in {units} unit(s) of work (BEGIN/COMMIT not counted)")

        workers = Workers(schema, args.workers, args.clients)
        ours_tps, base_tps, ratios, floors = [], [], [], []
        with PgBench() as pgbench:
            pgbench.tps(args.clients, 2, "-N")  # warm-up
            for round_ in range(args.rounds):
                pairs = loop.run_until_complete(_drafts(services, timed, args.drafts // args.registrations))

                def ours(pairs: list[tuple[int, int]] = pairs) -> float:
                    results = workers.run(pairs, args.seconds)
                    if any(r[1] for r in results):
                        raise SystemExit(f"timed round refused submissions: {[r[1] for r in results]}")
                    return sum(done / elapsed for done, _refused, elapsed in results)

                def theirs() -> float:
                    return pgbench.tps(args.clients, args.seconds, "-N")

                if round_ % 2:
                    base, mine = theirs(), ours()
                else:
                    mine, base = ours(), theirs()
                ours_tps.append(mine)
                base_tps.append(base)
                ratios.append(mine / base)

                loop.run_until_complete(_credit(services, racers, RACE_COUPONS, f"race-{round_}"))
                race = loop.run_until_complete(_drafts(services, racers, RACE_DRAFTS))
                results = workers.run(race, None)
                won = sum(r[0] for r in results)
                codes = {code for r in results for code in r[1]}
                oversold = max(0, won - RACE_COUPONS * len(racers))
                problems = loop.run_until_complete(money_problems(services.db))
                print(f"round {round_ + 1}: ours {mine:7.0f} tps, pgbench -N {base:7.0f} tps, ratio {mine / base:.3f}; "
                      f"race {won}/{len(race)} submitted against {RACE_COUPONS * len(racers)} coupons, "
                      f"refusals {sorted(str(code) for code in codes)}, "
                      f"oversold {oversold}, audit {'clean' if not problems else problems[:3]}", flush=True)
                if oversold or problems or won != RACE_COUPONS * len(racers) or codes - {"INSUFFICIENT_COUPONS"}:
                    raise SystemExit("the ledger disagrees: stopping")
            # the floor last: its transactions keep no per-application coupon keys, so the audit is done by now
            for round_ in range(args.rounds if args.floor else 0):
                pairs = loop.run_until_complete(_drafts(services, timed, args.drafts // args.registrations))
                if round_ % 2:
                    base, floor = theirs(), floor_tps(schema, args.clients, args.seconds, pairs[0][0], pairs[-1][0])
                else:
                    floor, base = floor_tps(schema, args.clients, args.seconds, pairs[0][0], pairs[-1][0]), theirs()
                floors.append(floor / base)
                print(f"floor round {round_ + 1}: our statements run by pgbench {floor:7.0f} tps, pgbench -N {base:7.0f} tps, "
                      f"ratio {floor / base:.3f}", flush=True)
        print(f"submitApplication by coupon, {args.workers} processes x {args.clients // args.workers} clients, "
              f"{args.registrations} registrations: median {statistics.median(ours_tps):.0f} tps; "
              f"pgbench -N -c {args.clients} -j 2: median {statistics.median(base_tps):.0f} tps; "
              f"median ratio {statistics.median(ratios):.3f} (target >= 0.3); oversold 0, audit clean in every round")
        if floors:
            print(f"floor: the same statements run by pgbench (C, no Python): median {statistics.median(floors):.3f} of pgbench -N")
    finally:
        if workers is not None:
            workers.close()
        loop.run_until_complete(services.db.dispose())
        loop.close()
        psql(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
