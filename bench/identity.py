"""Benchmark: identity over real HTTP (uvicorn on loopback, SQLite), ratios against a
bare strawberry `{ hello }` served by the same stack in the same run.

    .venv/bin/python bench/identity.py [--seconds 5]

login is dominated by argon2id by design (one hash verification per attempt); `me` and
`subAccounts` show what a session lookup and a permission check cost per request.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import strawberry
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from persistence import migrate
from persistence.db import Database
from resolvers.core.clock import TOKYO, FixedClock
from resolvers.core.settings import PROJECT_DIR
from tests.conftest import settings_for, start_server
from tradecert.demo import seed_demo


@strawberry.type
class HelloQuery:
    @strawberry.field
    def hello(self) -> str:
        return "world"


def serve_bare() -> tuple[str, uvicorn.Server]:
    import socket
    import threading

    schema = strawberry.Schema(query=HelloQuery, extensions=[lambda: ParserCache(maxsize=1024), lambda: ValidationCache(maxsize=1024)])
    app = Starlette(routes=[Route("/graphql", GraphQL(schema, allow_queries_via_get=False))])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", server


def rate(client: httpx.Client, url: str, payload: dict, headers: dict, seconds: float) -> float:
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        response = client.post(url, json=payload, headers=headers)
        client.cookies.clear()  # an API client: bearer only (a login presenting a cookie would rotate that session)
        assert response.status_code == 200 and "errors" not in response.json(), response.text
        count += 1
    return count / (time.perf_counter() - started)


def main(seconds: float) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="tradecert-bench-"))
    url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"

    async def prepare():
        db = Database(url)
        await migrate.upgrade(db.engine)
        await seed_demo(db, FixedClock(dt.datetime(2026, 3, 1, 9, tzinfo=TOKYO)))
        await db.dispose()

    asyncio.run(prepare())
    live = start_server(settings_for(url, PROJECT_DIR / "rules"), FixedClock(dt.datetime(2026, 4, 1, 10, tzinfo=TOKYO)))
    bare_url, bare = serve_bare()
    login = {"query": 'mutation { login(input: {chamberCode: "2701", username: "signer-2701000002", password: "demo-pass-2701"}) { token errors { code } } }'}
    with httpx.Client(timeout=30) as client:
        token = client.post(f"{live.url}/graphql", json=login).json()["data"]["login"]["token"]
        client.cookies.clear()
        auth = {"Authorization": f"Bearer {token}"}
        variants = {
            "bare strawberry { hello } over HTTP": (f"{bare_url}/graphql", {"query": "{ hello }"}, {}),
            "feeSchedule minimal over HTTP": (f"{live.url}/graphql", {"query": '{ feeSchedule(on: "2026-04-01") { applicationFee(membership: MEMBER) } }'}, {}),
            "me (session lookup) over HTTP": (f"{live.url}/graphql", {"query": "{ me { username } }"}, auth),
            "subAccounts (session + permission rule + list)": (f"{live.url}/graphql", {"query": "{ subAccounts { username } }"}, auth),
            "login (argon2id verify + session write)": (f"{live.url}/graphql", login, {}),
        }
        rounds = 5
        rates: dict[str, list[float]] = {k: [] for k in variants}
        ratios: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(rounds):
            this = {name: rate(client, *spec, seconds / rounds) for name, spec in variants.items()}
            for name, value in this.items():
                rates[name].append(value)
                ratios[name].append(value / this["bare strawberry { hello } over HTTP"])
    for name in variants:
        print(f"{name:48}: {statistics.median(rates[name]):8.1f} req/s  {statistics.median(ratios[name]):5.2f} of baseline")
    live.stop()
    bare.should_exit = True


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per variant, over 5 rounds")
    main(parser.parse_args().seconds)
