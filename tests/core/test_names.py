"""Each state or kind is one StrEnum: the database accepts exactly its values (the CHECK
constraints of persistence/models/), and GraphQL shows exactly its members."""

from __future__ import annotations

import re
from enum import StrEnum

import pytest
from sqlalchemy import CheckConstraint, Table

from persistence.models import Base
from resolvers.adapters.gateway import SandboxStatus
from resolvers.adapters.mail import OutboxStatus
from resolvers.applications.names import ApplicationState
from resolvers.coupons.names import CouponEntryKind, PurchaseMethod, PurchaseStatus
from resolvers.identity.names import AccountKind, AccountStatus, Membership, RegistrationKind
from resolvers.naccs.names import NaccsApplicationKind, NaccsApplicationState
from resolvers.payments.names import CardPaymentStatus
from resolvers.webhooks.names import WebhookDeliveryStatus, WebhookEvent

# (table, column) → the enum whose values its CHECK constraint lists
CHECKED: dict[tuple[str, str], type[StrEnum]] = {
    ("trade_registrations", "kind"): RegistrationKind,
    ("registration_memberships", "membership"): Membership,
    ("accounts", "kind"): AccountKind,
    ("accounts", "status"): AccountStatus,
    ("mail_outbox", "status"): OutboxStatus,
    ("coupon_entries", "kind"): CouponEntryKind,
    ("coupon_purchases", "status"): PurchaseStatus,
    ("coupon_purchases", "method"): PurchaseMethod,
    ("card_payments", "status"): CardPaymentStatus,
    ("applications", "state"): ApplicationState,
    ("naccs_applications", "kind"): NaccsApplicationKind,
    ("naccs_applications", "state"): NaccsApplicationState,
    ("webhook_deliveries", "status"): WebhookDeliveryStatus,
    ("webhook_deliveries", "event"): WebhookEvent,
}


def _checked_values(table: Table, column: str) -> set[str]:
    for constraint in table.constraints:
        if isinstance(constraint, CheckConstraint):
            found = re.fullmatch(rf"\s*{column} IN \(([^)]*)\)\s*", str(constraint.sqltext))
            if found:
                return set(re.findall(r"'([^']*)'", found[1]))
    raise AssertionError(f"no CHECK ({column} IN …) on {table.name}")


@pytest.mark.parametrize(("table", "column"), list(CHECKED), ids=lambda v: str(v))
def test_the_database_accepts_exactly_the_enum(table: str, column: str) -> None:
    enum = CHECKED[(table, column)]
    assert _checked_values(Base.metadata.tables[table], column) == {m.value for m in enum}


def test_the_sandbox_stores_its_states_but_never_closed() -> None:
    stored = _checked_values(Base.metadata.tables["sandbox_gateway_sessions"], "status")
    assert stored == {m.value for m in SandboxStatus} - {SandboxStatus.CLOSED}


ENUMS: list[type[StrEnum]] = sorted({*CHECKED.values(), SandboxStatus}, key=lambda e: e.__name__)


@pytest.mark.parametrize("enum", ENUMS, ids=[e.__name__ for e in ENUMS])
def test_a_member_is_its_text(enum: type[StrEnum]) -> None:
    for member in enum:
        assert member == member.value and f"{member}" == member.value
