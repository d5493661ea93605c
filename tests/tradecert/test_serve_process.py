"""The real `tradecert serve --demo` process — what `make serve` runs — and the same
process under libfaketime, as the acceptance tests outside this repo run it."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import _free_port

TRADECERT = str(Path(sys.executable).parent / "tradecert")
QUERY = "{ feeSchedule { on applicationFee(membership: MEMBER) couponProducts(membership: MEMBER) { code price } } }"


def serve(tmp_path: Path, prefix: list[str] | None = None, env: dict | None = None):
    port = _free_port()
    full_env = {**os.environ, "TRADECERT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}", **(env or {})}
    log = open(tmp_path / f"serve-{port}.log", "w+", encoding="utf-8")  # a pipe nobody reads would fill and block the server
    process = subprocess.Popen(
        [*(prefix or []), TRADECERT, "serve", "--demo", "--host", "127.0.0.1", "--port", str(port)],
        env=full_env, stdout=log, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own process group: stop() reaches a wrapper's (faketime's) child too
    )
    process.log = log  # type: ignore[attr-defined]
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise AssertionError(f"serve exited {process.returncode}: {_output(process)}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            raise AssertionError(f"serve did not become ready: {_output(process)}")
        time.sleep(0.2)


def serve_two_workers(tmp_path, env_changes: dict, ready_within: float = 90) -> tuple[subprocess.Popen, str]:
    """`tradecert serve --demo --workers 2` as a real process on a free port, once /readyz says ready."""
    port = _free_port()
    log = open(tmp_path / "workers.log", "w+", encoding="utf-8")
    process = subprocess.Popen([TRADECERT, "serve", "--demo", "--workers", "2", "--host", "127.0.0.1", "--port", str(port)],
                               env={**os.environ, **env_changes}, stdout=log, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)  # its own process group: stop() reaches the workers too
    process.log = log  # type: ignore[attr-defined]
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_within
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise AssertionError(_output(process))
        time.sleep(0.2)


def _output(process: subprocess.Popen) -> str:
    process.log.flush()  # type: ignore[attr-defined]
    process.log.seek(0)  # type: ignore[attr-defined]
    return process.log.read()  # type: ignore[attr-defined]


def stop(process: subprocess.Popen) -> str:
    """SIGINT to the whole process group (serve, its workers, a wrapper's child), then SIGKILL
    to what is left: no server outlives its test."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    output = _output(process)
    process.log.close()  # type: ignore[attr-defined]
    return output


def test_serve_demo_migrates_seeds_and_serves(tmp_path):
    process, base = serve(tmp_path)
    try:
        ready = httpx.get(f"{base}/readyz").json()
        ide = httpx.get(f"{base}/graphql", headers={"Accept": "text/html"})
        answer = httpx.post(f"{base}/graphql", json={"query": '{ feeSchedule(on: "2026-04-01") { applicationFee(membership: NON_MEMBER) } }'})
    finally:
        output = stop(process)
    assert ready["status"] == "ready"
    assert ide.status_code == 200 and "graphiql" in ide.text.lower()
    assert answer.json() == {"data": {"feeSchedule": {"applicationFee": 3630}}}
    assert "demo data: 14 created" in output
    # development logs a readable line a request, with its request id (JSON in production: test_request_log.py)
    assert re.search(r"INFO +tradecert\.http +POST /graphql 200 [\d.]+ms +\[[0-9a-f]{32}\]", output), output


def test_serve_refuses_to_start_on_invalid_rules(tmp_path, rules_copy):
    path = rules_copy / "tax.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("rate_percent: 10", "rate_percent: ten"), encoding="utf-8")
    result = subprocess.run(
        [TRADECERT, "serve", "--port", str(_free_port())],
        env={**os.environ, "TRADECERT_RULES_DIR": str(rules_copy), "TRADECERT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "tax.yaml: version 1 (effective_from 2019-10-01), row 1, rate_percent" in result.stderr


def _require_faketime() -> str:
    found = shutil.which("faketime")
    if not found:
        if os.environ.get("CI"):
            pytest.fail("faketime (libfaketime) is not installed; .ci/run installs it")
        pytest.skip("faketime (libfaketime) is not installed: apt-get install faketime")
    return found


@pytest.mark.parametrize(
    "utc, expected_on, expected_fee",
    [
        ("2026-03-31 15:30:00", "2026-04-01", 1210),  # 00:30 on 2026-04-01 in Tokyo
        ("2026-03-31 14:59:00", "2026-03-31", 1100),  # 23:59 on 2026-03-31 in Tokyo
    ],
)
def test_today_follows_the_system_clock_under_libfaketime(tmp_path, utc, expected_on, expected_fee):
    faketime = _require_faketime()
    # -f: the clock keeps running from the faked start, as in the acceptance tests.
    process, base = serve(tmp_path, prefix=[faketime, "-f", f"@{utc}"], env={"TZ": "UTC"})
    try:
        data = httpx.post(f"{base}/graphql", json={"query": QUERY}, timeout=10).json()["data"]["feeSchedule"]
    finally:
        stop(process)
    assert data["on"] == expected_on
    assert data["applicationFee"] == expected_fee


def test_sighup_reloads_edited_rules_and_keeps_them_when_broken(tmp_path, rules_copy):
    env = {"TRADECERT_RULES_DIR": str(rules_copy), "TRADECERT_RULES_POLL_SECONDS": "0"}  # SIGHUP only
    path = rules_copy / "application_fees.yaml"  # a version not in force yet: it may be edited (rules history)
    path.write_text(path.read_text(encoding="utf-8") + """
  - effective_from: 2099-04-01
    rows:
      - {membership: MEMBER, amount: 1299}
      - {membership: NON_MEMBER, amount: 3700}
""", encoding="utf-8")
    process, base = serve(tmp_path, env=env)
    query = {"query": '{ feeSchedule(on: "2099-04-01") { applicationFee(membership: MEMBER) } }'}

    def fee() -> int:
        return httpx.post(f"{base}/graphql", json=query).json()["data"]["feeSchedule"]["applicationFee"]

    def fee_after_hup(expected: int) -> int:
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while (current := fee()) != expected and time.monotonic() < deadline:
            time.sleep(0.1)
        return current

    original = path.read_text(encoding="utf-8")
    try:
        assert fee() == 1299
        path.write_text(original.replace("amount: 1299", "amount: 1265"), encoding="utf-8")
        time.sleep(0.5)
        assert fee() == 1299  # no polling: nothing changes until the signal
        assert fee_after_hup(1265) == 1265
        path.write_text(original.replace("amount: 1299", "amount: 1,265"), encoding="utf-8")
        process.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert fee() == 1265  # broken files: the old rules stay
    finally:
        output = stop(process)
    assert "rules not reloaded" in output and "application_fees.yaml" in output


def test_serve_with_two_workers(tmp_path):
    process, base = serve_two_workers(tmp_path, {"TRADECERT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'workers.db'}"})
    try:
        answers = {
            httpx.post(f"{base}/graphql", json={"query": '{ feeSchedule(on: "2026-03-31") { applicationFee(membership: MEMBER) } }'}).json()["data"]["feeSchedule"]["applicationFee"]
            for _ in range(20)
        }
    finally:
        output = stop(process)
    assert answers == {1100}
    assert "several workers on SQLite" in output


def test_mailed_links_point_at_the_port_serve_listens_on(tmp_path):
    import sqlite3

    env = {"TRADECERT_PUBLIC_URL": "", "TRADECERT_RUN_JOBS": "0"}
    process, base = serve(tmp_path, env=env)
    try:
        def gql(query, variables=None, headers=None):
            return httpx.post(f"{base}/graphql", json={"query": query, "variables": variables or {}}, headers=headers or {}).json()

        token = gql('mutation { login(input: {chamberCode: "2701", username: "signer-2701000002", password: "demo-pass-2701"}) { token } }')["data"]["login"]["token"]
        auth = {"Authorization": f"Bearer {token}"}
        sub = gql('mutation { createSubAccount(input: {name: "山田 花子", password: "hanako-pass-2026", email: "h@kakogawa.example"}) { account { id } } }',
                  headers=auth)["data"]["createSubAccount"]["account"]
        notified = gql('mutation($id: ID!) { notifySubAccount(input: {accountId: $id, targetRegistrationNumber: "2701000002", phone: "0612345678", email: "h@kakogawa.example"}) { errors { code } } }',
                       {"id": sub["id"]}, auth)
        assert notified["data"]["notifySubAccount"]["errors"] == []
    finally:
        stop(process)
    body = sqlite3.connect(tmp_path / "serve.db").execute("SELECT body FROM mail_outbox").fetchone()[0]
    assert f"{base}/activate?token=" in body
