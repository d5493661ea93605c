"""Backups restore into a database the real server serves the same data from.

Demo data plus some activity (coupons given, applications submitted and issued) on a running
server; `tradecert db backup` while it runs (SQLite's online backup; pg_dump on PostgreSQL);
a restore into a new SQLite file (`tradecert db restore`) or a new PostgreSQL database
(pg_restore); then `tradecert serve` on the restore answers the same GraphQL as the original."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.applications.test_applications import act, create, give_coupons
from tests.conftest import PG_DSN, _free_port, settings_for, start_server, tokyo
from tests.identity.test_identity_sessions import LOGIN, PASSWORD
from tests.tradecert.test_serve_process import stop

TRADECERT = str(Path(sys.executable).parent / "tradecert")
SEEN = """{ couponAccount { balance } applications(first: 50) { totalCount
  edges { node { receiptNumber state fee invoiceNumber certificateNumber } } } }"""


class Remote:
    """GraphQL against a server by its address."""

    def __init__(self, url: str):
        self.url = url

    def graphql(self, query: str, variables: dict | None = None, headers: dict | None = None) -> httpx.Response:
        return httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}},
                          headers=headers or {}, timeout=30)


def seen_by(server, username: str) -> dict:
    token = server.graphql(LOGIN, {"c": "2701", "u": username, "p": PASSWORD}).json()["data"]["login"]["token"]
    body = server.graphql(SEEN, headers={"Authorization": f"Bearer {token}"}).json()
    assert "errors" not in body, body
    return body["data"]


def tradecert(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run([TRADECERT, *args], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "TRADECERT_DATABASE_SCHEMA": "", **env})
    assert done.returncode == 0, done.stderr
    return done


def serve(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """`tradecert serve` (no --demo: what is there is what was restored) once /readyz says ready."""
    port = _free_port()
    log = open(tmp_path / "restored.log", "w+", encoding="utf-8")
    process = subprocess.Popen([TRADECERT, "serve", "--host", "127.0.0.1", "--port", str(port)],
                               env={**os.environ, "TRADECERT_DATABASE_SCHEMA": "", "TRADECERT_RUN_JOBS": "0", **env},
                               stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    process.log = log  # type: ignore[attr-defined]
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(stop(process))
        time.sleep(0.2)


def libpq(dsn: str) -> dict[str, str]:
    return {"PGHOST": "127.0.0.1", "PGPORT": "5432", "PGUSER": "postgres", "PGDATABASE": dsn.rsplit("/", 1)[1]}


def psql(sql: str) -> None:
    subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True, capture_output=True,
                   env={**os.environ, **libpq(PG_DSN)})


async def test_a_backup_restores_into_a_new_database_that_serves_the_same_data(migrated, rules_copy, tmp_path):
    target, _db = migrated
    if target.kind == "postgresql":
        for tool in ("pg_dump", "pg_restore", "psql"):
            if not shutil.which(tool):
                if os.environ.get("CI"):
                    pytest.fail(f"{tool} is not installed")
                pytest.skip(f"{tool} is not installed: apt-get install postgresql-client")
    from resolvers.core.clock import FixedClock

    settings = settings_for(target.url, rules_copy)
    live = await asyncio.to_thread(start_server, settings, FixedClock(tokyo(2026, 4, 1, 10, 0)), target.schema)
    env = {"TRADECERT_DATABASE_URL": target.url, "TRADECERT_DATABASE_SCHEMA": target.schema or ""}
    backup = tmp_path / ("backup.db" if target.kind == "sqlite" else "backup.dump")
    try:
        from tests.identity.test_subaccounts import as_user

        signer, staff = as_user(live, "signer-2701000002"), as_user(live, "staff-2701")
        give_coupons(live, 3)
        for invoice in ("INV-B-1", "INV-B-2"):
            app = create(live, signer, invoiceNumber=invoice)["application"]
            assert act(live, signer, "submitApplication", app["id"])["errors"] == []
        assert act(live, staff, "approveApplication", app["id"])["application"]["state"] == "ISSUED"
        before = seen_by(live, "signer-2701000002")
        assert before["couponAccount"]["balance"] == 1 and before["applications"]["totalCount"] == 2
        # the backup is taken while the server runs
        done = await asyncio.to_thread(tradecert, "db", "backup", str(backup), env=env)
        assert f"backed up to {backup}" in done.stdout
        give_coupons(live, 5)  # after the backup: not in the restore
    finally:
        await asyncio.to_thread(live.stop)

    if target.kind == "sqlite":
        restored = tmp_path / "restored" / "tradecert.db"
        restored.parent.mkdir()
        restored_env = {"TRADECERT_DATABASE_URL": f"sqlite:///{restored}"}
        done = await asyncio.to_thread(tradecert, "db", "restore", str(backup), env=restored_env)
        assert f"restored {backup} into {restored}" in done.stdout
        refused = subprocess.run([TRADECERT, "db", "restore", str(backup)], capture_output=True, text=True,
                                 env={**os.environ, **restored_env})
        assert refused.returncode == 1 and "already has tables" in refused.stderr  # never over a live database
    else:
        database = f"r_{uuid.uuid4().hex[:12]}"
        psql(f'CREATE DATABASE "{database}"')
        subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", "-d", database, str(backup)], check=True,
                       capture_output=True, env={**os.environ, **libpq(PG_DSN)})
        restored_env = {"TRADECERT_DATABASE_URL": target.url.rsplit("/", 1)[0] + f"/{database}",
                        "TRADECERT_DATABASE_SCHEMA": target.schema or ""}
    try:
        process, base = await asyncio.to_thread(serve, tmp_path, restored_env)
        try:
            after = await asyncio.to_thread(seen_by, Remote(base), "signer-2701000002")
        finally:
            await asyncio.to_thread(stop, process)
    finally:
        if target.kind == "postgresql":
            psql(f'DROP DATABASE "{database}" WITH (FORCE)')
    assert after == before


def test_sqlite_backup_is_one_self_contained_file(tmp_path):
    import sqlite3

    source = tmp_path / "live.db"
    env = {"TRADECERT_DATABASE_URL": f"sqlite:///{source}"}
    tradecert("demo", "seed", env=env)
    tradecert("db", "backup", str(tmp_path / "copy.db"), env=env)
    with sqlite3.connect(tmp_path / "copy.db") as copy:
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert copy.execute("SELECT count(*) FROM trade_registrations").fetchone()[0] > 0
    assert not (tmp_path / "copy.db-wal").exists()
    again = subprocess.run([TRADECERT, "db", "backup", str(tmp_path / "copy.db")], capture_output=True, text=True,
                           env={**os.environ, **env})
    assert again.returncode == 1 and "exists" in again.stderr  # a backup is never overwritten by mistake
