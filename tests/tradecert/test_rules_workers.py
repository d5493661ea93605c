"""Every worker on the same rules: under a real `tradecert serve --workers 2` on PostgreSQL,
an edited rule file reaches both workers within the poll interval, and each worker's /readyz
says which process answered (``worker``, its pid) and the rules version it serves."""

from __future__ import annotations

import os
import time

import httpx
import pytest

from rules.policy import fingerprint
from tests.conftest import PG_BASE, create_pg_schema, drop_pg_schema, require_postgres
from tests.tradecert.test_serve_process import serve_two_workers, stop

NEXT_YEAR = """\
  - effective_from: 2027-04-01
    source: "test: a revision dated next year"
    rows:
      - membership: MEMBER
        amount: 1320
      - membership: NON_MEMBER
        amount: 3960
"""


def versions_by_worker(base: str, want: int, seconds: float) -> dict[int, str]:
    """Ask /readyz on a new connection each time until ``want`` workers have answered; the
    last version each worker reported."""
    seen: dict[int, str] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready = httpx.get(f"{base}/readyz", timeout=5).json()  # a new connection: either worker may take it
        seen[ready["worker"]] = ready["rulesVersion"]
        if len(seen) >= want:
            return seen
    return seen


@pytest.fixture
async def pg_schema():
    require_postgres()
    name = await create_pg_schema()
    yield name
    await drop_pg_schema(name)


def test_an_edited_rule_file_reaches_every_worker_within_the_poll_interval(tmp_path, rules_copy, pg_schema):
    process, base = serve_two_workers(tmp_path, {
        "TRADECERT_DATABASE_URL": PG_BASE, "TRADECERT_DATABASE_SCHEMA": pg_schema, "TRADECERT_RUN_JOBS": "0",
        "TRADECERT_RULES_DIR": str(rules_copy), "TRADECERT_RULES_POLL_SECONDS": "1", "TRADECERT_LOG_LEVEL": "WARNING",
    })
    try:
        old = fingerprint(rules_copy)
        before = versions_by_worker(base, want=2, seconds=60)
        assert len(before) == 2 and os.getpid() not in before, before
        assert set(before.values()) == {old}

        path = rules_copy / "application_fees.yaml"
        path.write_text(path.read_text(encoding="utf-8") + NEXT_YEAR, encoding="utf-8")
        new = fingerprint(rules_copy)
        assert new != old
        edited_at = time.monotonic()
        latest = dict(before)
        while set(latest.values()) != {new} and time.monotonic() - edited_at < 30:
            ready = httpx.get(f"{base}/readyz", timeout=5).json()
            latest[ready["worker"]] = ready["rulesVersion"]
        fee = httpx.post(f"{base}/graphql", json={"query": '{ feeSchedule(on: "2027-04-01") { applicationFee(membership: MEMBER) } }'})
    finally:
        output = stop(process)
    assert set(latest) == set(before), (latest, output[-2000:])  # the same two workers, none restarted
    assert set(latest.values()) == {new}, (latest, output[-2000:])
    assert fee.json() == {"data": {"feeSchedule": {"applicationFee": 1320}}}
