"""The worked example of docs/integration.md runs as written: against the real
`tradecert serve --demo` (SQLite file, and PostgreSQL in a schema of its own), with its jobs
running and loopback allowed as a webhook destination, `python docs/examples/integration.py`
makes a key, files and submits three applications in one call each, and verifies the three
webhooks at its own receiver. The page shows the file in full."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_BASE, _free_port, create_pg_schema, drop_pg_schema, require_postgres
from tests.tradecert.test_serve_process import serve, stop

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "integration.py"
PAGE = ROOT / "docs" / "integration.md"


def example(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("TRADECERT_URL", "PORT", "RECEIVER_HOST", "RECEIVER_PORT")}
    return subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=180,
                          env={**clean, **env})


def one_line_exit(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stdout + done.stderr
    assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1, done.stdout + done.stderr
    return done.stderr.strip()


def test_the_example_says_in_one_line_that_the_server_is_unreachable():
    port = _free_port()  # nothing listens there
    line = one_line_exit(example(TRADECERT_URL=f"http://127.0.0.1:{port}"))
    assert line.startswith(f"cannot reach tradecert at http://127.0.0.1:{port}") and "TRADECERT_URL" in line, line


def test_the_server_address_follows_port_unless_tradecert_url_is_set():
    port = _free_port()
    assert f"cannot reach tradecert at http://127.0.0.1:{port} " in one_line_exit(example(PORT=str(port)))
    assert one_line_exit(example(PORT="eighty")) == "PORT must be a port number (1 to 65535), got 'eighty'"
    assert one_line_exit(example(RECEIVER_PORT="-1")).startswith("RECEIVER_PORT must be a port number (0 to 65535)")


def test_the_page_shows_the_example_as_it_is_run():
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S)
    assert EXAMPLE.read_text(encoding="utf-8") in blocks, "docs/integration.md must show docs/examples/integration.py in full"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_the_worked_example_runs_against_the_real_server(kind, tmp_path):
    env = {"TRADECERT_WEBHOOK_ALLOW_HOSTS": "127.0.0.1", "TRADECERT_RUN_JOBS": "1"}
    schema = None
    if kind == "postgresql":
        require_postgres()
        schema = await create_pg_schema()
        env |= {"TRADECERT_DATABASE_URL": PG_BASE, "TRADECERT_DATABASE_SCHEMA": schema}
    process, base = serve(tmp_path, env=env)
    receiver_port = _free_port()
    # SQLite: the server named by PORT alone (TRADECERT_URL follows it); PostgreSQL: by TRADECERT_URL
    where = {"PORT": base.rsplit(":", 1)[1]} if kind == "sqlite" else {"TRADECERT_URL": base, "PORT": "1"}
    try:
        done = example(**where, RECEIVER_PORT=str(receiver_port))
        assert done.returncode == 0, done.stdout + done.stderr + stop(process)
        lines = done.stdout.splitlines()
        assert lines[0].startswith("API key made: tck_"), done.stdout
        assert f"webhook endpoint: http://127.0.0.1:{receiver_port}/tradecert-events" in lines
        assert "filed 3 applications in one call" in lines
        assert sum("SUBMITTED 受付番号" in line for line in lines) == 3, done.stdout
        assert sum(line.startswith("webhook verified: application.submitted") for line in lines) == 3, done.stdout
        assert lines[-1] == "done: 3 applications filed, submitted and announced"
    finally:
        stop(process)
        if schema is not None:
            await drop_pg_schema(schema)


def test_a_server_that_refuses_loopback_webhooks_is_named_with_the_setting(tmp_path):
    """Plain `make serve` (no TRADECERT_WEBHOOK_ALLOW_HOSTS): one line saying what to set."""
    process, base = serve(tmp_path, env={"TRADECERT_WEBHOOK_ALLOW_HOSTS": ""})
    try:
        done = example(PORT=base.rsplit(":", 1)[1], RECEIVER_PORT=str(_free_port()))
    finally:
        stop(process)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "TRADECERT_WEBHOOK_ALLOW_HOSTS=127.0.0.1" in line and "receiver" in line, line
