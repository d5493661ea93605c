"""The loopback webhook receiver every webhook test posts to (answers 200 at once)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.webhooks.test_webhooks_api import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    try:
        yield found
    finally:
        found.close()
