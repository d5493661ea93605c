"""What every resolver receives: the services of this process and this request's facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from persistence.db import Database
from rules.runtime import RulesRuntime
from tradecert.clock import Clock
from tradecert.settings import Settings


@dataclass
class Services:
    """Long-lived collaborators, created once per process (or per test)."""

    settings: Settings
    db: Database
    rules: RulesRuntime
    clock: Clock


@dataclass
class Context:
    services: Services
    request: Any = None
    response: Any = None
    request_id: str | None = None
    language: str = "ja"  # "en" when Accept-Language prefers English
    loaders: dict = field(default_factory=dict)

    @property
    def clock(self) -> Clock:
        return self.services.clock
