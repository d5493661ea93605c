"""The composition root builds the long-lived collaborators once: the card gateway too."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from resolvers.adapters.gateway import GatewayNotConfigured, SandboxGateway, gateway_of
from resolvers.core.settings import Settings
from tests.conftest import RULES_DIR
from tradecert.composition import build_services

ALLOW = "TRADECERT_ALLOW_SANDBOX_GATEWAY_IN_PRODUCTION"


def settings_of(tmp_path: Path, **extra: str) -> Settings:
    env = {key: value for key, value in os.environ.items()
           if key not in ("TRADECERT_PAYMENT_GATEWAY", ALLOW, "TRADECERT_ENV")}
    return Settings.from_env({**env, "TRADECERT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'c.db'}",
                              "TRADECERT_RULES_DIR": str(RULES_DIR), "TRADECERT_PAYMENT_SECRET": "x" * 32, **extra})


async def test_the_gateway_is_built_once_per_process(tmp_path):
    services = build_services(settings_of(tmp_path))
    try:
        assert isinstance(services.gateway, SandboxGateway)
        assert gateway_of(services) is gateway_of(services) is services.gateway
    finally:
        await services.db.dispose()


async def test_a_plugged_in_gateway_is_kept(tmp_path):
    plugged = SandboxGateway()
    services = build_services(settings_of(tmp_path), gateway=plugged)
    try:
        assert gateway_of(services) is plugged
    finally:
        await services.db.dispose()


async def test_a_configuration_without_a_gateway_still_builds_and_refuses_at_use(tmp_path):
    """`jobs run`, `bank import` build services too: they ran before without a usable gateway,
    and a card payment (or create_app, or serve) still refuses in one line."""
    for settings in (settings_of(tmp_path, TRADECERT_PAYMENT_GATEWAY="epsilon"),
                     settings_of(tmp_path, TRADECERT_ENV="production")):
        services = build_services(settings)
        try:
            assert services.gateway is None
            with pytest.raises(GatewayNotConfigured):
                gateway_of(services)
        finally:
            await services.db.dispose()
