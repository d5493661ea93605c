"""Fixtures of the HTTP-surface tests."""

from __future__ import annotations

import asyncio

import pytest

from resolvers.core.clock import FixedClock
from tests.conftest import settings_for, start_server, tokyo


@pytest.fixture
async def sqlite_live(tmp_path, rules_copy):
    """A server on an embedded SQLite database (enough for transport-level behaviour)."""
    from persistence import migrate
    from persistence.db import Database

    url = f"sqlite+aiosqlite:///{tmp_path / 'server.db'}"
    db = Database(url)
    await migrate.upgrade(db.engine)
    await db.dispose()
    servers = []

    def start(**changes):
        server = start_server(settings_for(url, rules_copy, **changes), FixedClock(tokyo(2026, 4, 1, 10)))
        servers.append(server)
        return server

    yield start
    for server in servers:
        await asyncio.to_thread(server.stop)
