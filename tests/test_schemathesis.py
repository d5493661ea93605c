"""Property-based: schemathesis generates queries for every root field (valid and invalid
inputs) against the real ASGI app; no response may be a server error."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.generation import GenerationMode

from persistence import migrate
from persistence.db import Database
from tests.conftest import RULES_DIR, settings_for
from tradecert.app import create_app

_DB = Path(tempfile.mkdtemp(prefix="tradecert-schemathesis-")) / "tradecert.db"
_URL = f"sqlite+aiosqlite:///{_DB}"


async def _migrate() -> None:
    db = Database(_URL)
    await migrate.upgrade(db.engine)
    await db.dispose()


asyncio.run(_migrate())
app = create_app(settings_for(_URL, RULES_DIR))
schema = schemathesis.graphql.from_asgi("/graphql", app)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_query_causes_a_server_error(case):
    response = case.call(headers={"Content-Type": "application/json"})
    assert response.status_code < 500, response.text
    body = response.json()
    for error in body.get("errors") or []:
        assert (error.get("extensions") or {}).get("code") != "INTERNAL_SERVER_ERROR", error
