"""What every resolver receives: the services of this process and this request's facts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from persistence.db import Database
from resolvers.core.clock import Clock
from resolvers.core.settings import Settings
from rules.runtime import RulesRuntime


@dataclass
class Services:
    """Long-lived collaborators, created once per process (or per test)."""

    settings: Settings
    db: Database
    rules: RulesRuntime
    clock: Clock
    # Wired by the composition root (tradecert/composition.py), never by imports:
    purposes: Mapping[str, Any] = field(default_factory=dict)  # card payment purpose → payments.card.Purpose
    jobs: Mapping[str, Any] = field(default_factory=dict)  # job name → tradecert.jobs.Job
    # (services, body, signature) → outcome: where the sandbox gateway delivers its events
    receive_notification: Callable[[Services, bytes, str], Awaitable[str]] | None = None
    gateway: Any = None  # a PaymentGateway plugged in (tests, a provider); else TRADECERT_PAYMENT_GATEWAY
    bank: Any = None  # a Bank plugged in; else the sandbox bank


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
