"""Production refuses to start with the sandbox card gateway (its test card pays for real
coupons) unless a setting says so by name, and never starts with a gateway that does not
exist. The check is configuration only, so these tests need no second database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from resolvers.core.settings import Settings
from tests.conftest import RULES_DIR, _free_port
from tradecert.app import create_app

TRADECERT = str(Path(sys.executable).parent / "tradecert")
SECRET = "a-production-notification-secret-of-40-chars"
ALLOW = "TRADECERT_ALLOW_SANDBOX_GATEWAY_IN_PRODUCTION"


def production_keys(directory: Path) -> dict[str, str]:
    """The two key files `tradecert keys init --dir` makes, and the settings naming them."""
    from tradecert.cli.keys import KEY_KINDS

    found = {}
    for kind in KEY_KINDS:
        path = directory / kind.file_name
        if not path.exists():
            path.write_bytes(kind.make())
        found[kind.setting] = str(path)
    return found


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("TRADECERT_PAYMENT_GATEWAY", ALLOW, "TRADECERT_PUBLIC_URL")}
    return {**env, "TRADECERT_ENV": "production", "TRADECERT_PAYMENT_SECRET": SECRET, "TRADECERT_RUN_JOBS": "0",
            "TRADECERT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'production.db'}",
            "TRADECERT_PUBLIC_URL": "https://cert.example-cci.or.jp", **production_keys(tmp_path),
            "TRADECERT_RULES_DIR": str(RULES_DIR), "COLUMNS": "200", **extra}


def serve(env: dict[str, str], *args: str) -> tuple[subprocess.Popen, str, Path]:
    port = _free_port()
    log_path = Path(env["TRADECERT_DATABASE_URL"].split("///", 1)[1]).parent / f"serve-{port}.log"
    log = open(log_path, "w+", encoding="utf-8")  # a pipe nobody reads would fill and block the server
    process = subprocess.Popen([TRADECERT, "serve", "--host", "127.0.0.1", "--port", str(port), *args],
                               env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    process.log = log  # type: ignore[attr-defined]
    return process, f"http://127.0.0.1:{port}", log_path


def wait_exit_or_ready(process: subprocess.Popen, base: str, seconds: float = 40) -> bool:
    """True when the server answers /readyz, False when the process exited first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code in (200, 503):
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("serve neither started nor exited")


def stop(process: subprocess.Popen) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    process.log.flush()  # type: ignore[attr-defined]
    process.log.seek(0)  # type: ignore[attr-defined]
    output = process.log.read()  # type: ignore[attr-defined]
    process.log.close()  # type: ignore[attr-defined]
    return output


@pytest.mark.parametrize("workers", ["1", "2"])
def test_production_serve_refuses_the_sandbox_gateway_in_one_line(tmp_path, workers):
    process, base, _ = serve(production_env(tmp_path), "--workers", workers)
    started = wait_exit_or_ready(process, base)
    mounted = started and "決済が見つかりません" in httpx.get(f"{base}/sandbox-gateway/pay/sbx_x").text
    output = stop(process)
    assert not started, f"production served with the sandbox gateway (page mounted: {mounted}):\n{output}"
    assert process.returncode == 1
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert ALLOW in lines[0] and "TRADECERT_PAYMENT_GATEWAY" in lines[0]


def test_production_serve_with_the_sandbox_allowed_by_name_mounts_its_page(tmp_path):
    process, base, _ = serve(production_env(tmp_path, **{ALLOW: "1"}))
    try:
        assert wait_exit_or_ready(process, base), stop(process)
        page = httpx.get(f"{base}/sandbox-gateway/pay/sbx_unknown")
    finally:
        stop(process)
    assert page.status_code == 404 and "決済が見つかりません" in page.text  # the page's own answer: it is mounted


def test_serve_refuses_a_gateway_this_build_does_not_have(tmp_path):
    env = production_env(tmp_path, TRADECERT_ENV="development", TRADECERT_PAYMENT_GATEWAY="epsilon")
    process, base, _ = serve(env)
    started = wait_exit_or_ready(process, base)
    output = stop(process)
    assert not started, output
    assert process.returncode == 1 and "Traceback" not in output
    assert "TRADECERT_PAYMENT_GATEWAY='epsilon'" in output and "sandbox" in output


def test_create_app_refuses_the_sandbox_in_production(tmp_path):
    from resolvers.adapters.gateway import GatewayNotConfigured

    settings = Settings.from_env(production_env(tmp_path))
    with pytest.raises(GatewayNotConfigured) as refused:
        create_app(settings)
    message = str(refused.value)
    assert "\n" not in message and ALLOW in message


def test_create_app_mounts_the_sandbox_page_only_where_the_sandbox_is_the_gateway(tmp_path):
    allowed = create_app(Settings.from_env(production_env(tmp_path, **{ALLOW: "1"})))
    development = create_app(Settings.from_env(production_env(tmp_path, TRADECERT_ENV="development")))
    for app in (allowed, development):
        assert "/sandbox-gateway/pay/{session}" in {route.path for route in app.routes}


def test_create_app_refuses_an_unknown_gateway_in_any_environment(tmp_path):
    from resolvers.adapters.gateway import GatewayNotConfigured

    for environment in ("development", "production"):
        settings = Settings.from_env(production_env(tmp_path, TRADECERT_ENV=environment, TRADECERT_PAYMENT_GATEWAY="epsilon"))
        with pytest.raises(GatewayNotConfigured, match="TRADECERT_PAYMENT_GATEWAY='epsilon'"):
            create_app(settings)


def test_the_allowance_is_a_boolean_setting(tmp_path):
    assert Settings.from_env(production_env(tmp_path)).allow_sandbox_gateway_in_production is False
    assert Settings.from_env(production_env(tmp_path, **{ALLOW: "1"})).allow_sandbox_gateway_in_production is True
    with pytest.raises(ValueError, match=ALLOW):
        Settings.from_env(production_env(tmp_path, **{ALLOW: "perhaps"}))


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([TRADECERT, *args], capture_output=True, text=True, env=env, timeout=120)


def one_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, done.stdout + done.stderr
    return lines[0]


def test_production_refuses_to_start_without_an_explicit_database(tmp_path):
    env = production_env(tmp_path, **{ALLOW: "1"})
    del env["TRADECERT_DATABASE_URL"]
    for args in (("db", "upgrade"), ("serve", "--port", str(_free_port()))):
        line = one_line(run_cli(env, *args))
        assert "TRADECERT_DATABASE_URL must be set in production" in line, line
    with pytest.raises(ValueError, match="TRADECERT_DATABASE_URL"):
        Settings.from_env(env)
    assert Settings.from_env({**env, "TRADECERT_ENV": "development"}).database_url.endswith("tradecert.db")


def test_demo_data_is_refused_in_production(tmp_path):
    env = production_env(tmp_path, **{ALLOW: "1"})
    line = one_line(run_cli(env, "demo", "seed"))
    assert line == "Error: production refuses demo data: its accounts share the published demo password", line
    line = one_line(run_cli(env, "serve", "--demo", "--port", str(_free_port())))
    assert "production refuses demo data" in line
    assert not (tmp_path / "production.db").exists()  # refused before opening anything


def test_production_start_up_line_names_no_graphiql(tmp_path):
    process, base, _ = serve(production_env(tmp_path, **{ALLOW: "1"}))
    try:
        assert wait_exit_or_ready(process, base), stop(process)
        browser = httpx.get(f"{base}/graphql", headers={"Accept": "text/html"})
    finally:
        output = stop(process)
    assert browser.status_code == 404
    line = next(line for line in output.splitlines() if line.startswith("GraphQL at "))
    assert "GraphiQL" in line and "GraphiQL in a browser" not in line and "off" in line, line
    assert f"{base}/graphql" in line


@pytest.mark.parametrize("unset", ["TRADECERT_PUBLIC_URL", "TRADECERT_SIGNING_KEY_FILE", "TRADECERT_NACCS_KEY_FILE"])
def test_production_serve_refuses_a_development_default_in_one_line(tmp_path, unset):
    """Without these, production would print http://127.0.0.1:PORT/verify on every certificate and
    mail links there, or fail its first approval on a key under the release's var/."""
    env = production_env(tmp_path, **{ALLOW: "1"})
    del env[unset]
    line = one_line(run_cli(env, "serve", "--port", str(_free_port())))
    assert f"{unset} must be set in production" in line, line
    assert not (tmp_path / "production.db").exists()  # refused before opening anything


def test_production_serve_refuses_a_key_file_that_is_missing(tmp_path):
    env = production_env(tmp_path, **{ALLOW: "1"}, TRADECERT_SIGNING_KEY_FILE=str(tmp_path / "nowhere.pem"))
    line = one_line(run_cli(env, "serve", "--port", str(_free_port())))
    assert str(tmp_path / "nowhere.pem") in line and "tradecert keys init" in line, line


def test_production_serve_warns_that_mail_without_a_relay_reaches_nobody(tmp_path):
    """`mail list` and /dev/mail are off in production, so the outbox has no reader there."""
    for smtp, warned in (("", True), ("smtp://127.0.0.1:1", False)):
        process, base, _ = serve(production_env(tmp_path, **{ALLOW: "1"}, TRADECERT_SMTP_URL=smtp))
        try:
            assert wait_exit_or_ready(process, base), stop(process)
        finally:
            output = stop(process)
        warning = [line for line in output.splitlines() if "TRADECERT_SMTP_URL is not set" in line]
        assert bool(warning) is warned, output
        assert not warned or "reach nobody" in warning[0]
