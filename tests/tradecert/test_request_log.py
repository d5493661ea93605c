"""Each request is logged once, by tradecert.http (uvicorn's access log is off): a readable
line in development, a JSON line in production (issue 20, item 17)."""

from __future__ import annotations

import json
import re

import httpx

from resolvers.core.settings import Settings
from tests.tradecert.test_production_settings import ALLOW, production_env, wait_exit_or_ready
from tests.tradecert.test_production_settings import serve as serve_production
from tests.tradecert.test_production_settings import stop as stop_production
from tests.tradecert.test_serve_process import serve, stop

READABLE = re.compile(r"^\d\d:\d\d:\d\d INFO +tradecert\.http +GET /healthz\?probe=1 200 [\d.]+ms +\[log-once-1\]$")


def test_development_logs_each_request_once_as_a_readable_line(tmp_path):
    process, base = serve(tmp_path)
    try:
        assert httpx.get(f"{base}/healthz?probe=1", headers={"X-Request-ID": "log-once-1"}).status_code == 200
    finally:
        output = stop(process)
    lines = [line for line in output.splitlines() if "/healthz" in line]
    assert len(lines) == 1, output[-3000:]
    assert READABLE.match(lines[0]), lines[0]
    assert not any(line.startswith("{") for line in output.splitlines()), output[-3000:]
    assert "color_message" not in output and "\x1b[" not in output, output[-3000:]  # uvicorn's start-up lines, plain
    # uvicorn's start-up lines too: no copy of the message with terminal colour codes
    started = next(line for line in output.splitlines() if "Uvicorn running on" in line)
    assert "color_message" not in started and "\x1b[" not in started, started


def test_production_logs_each_request_once_as_a_json_line(tmp_path):
    process, base, _ = serve_production(production_env(tmp_path, **{ALLOW: "1"}))
    try:
        assert wait_exit_or_ready(process, base), stop_production(process)
        httpx.get(f"{base}/healthz?probe=1", headers={"X-Request-ID": "log-once-2"})
    finally:
        output = stop_production(process)
    lines = [line for line in output.splitlines() if "/healthz" in line]
    assert len(lines) == 1, output[-3000:]
    record = json.loads(lines[0])
    assert record["logger"] == "tradecert.http" and record["request_id"] == "log-once-2"
    started = json.loads(next(line for line in output.splitlines() if "Uvicorn running on" in line))
    assert "color_message" not in started, started
    assert record["message"].startswith("GET /healthz?probe=1 200") and record["status"] == 200


def test_json_logs_are_production_s_default_and_a_setting():
    assert Settings.from_env({}).log_json is False
    assert Settings.from_env({"TRADECERT_LOG_JSON": "1"}).log_json is True
    production = {"TRADECERT_ENV": "production", "TRADECERT_PAYMENT_SECRET": "x" * 40,
                  "TRADECERT_DATABASE_URL": "sqlite+aiosqlite:///unused.db"}
    assert Settings.from_env(production).log_json is True
    assert Settings.from_env({**production, "TRADECERT_LOG_JSON": "0"}).log_json is False
