"""UserError and the error codes of docs/api.md, defined once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import Enum
from typing import TypeVar

import strawberry

from resolvers.core.errors import UserFailure, UserFailures

T = TypeVar("T")
P = TypeVar("P")


@strawberry.enum(description="Why a mutation did nothing (docs/api.md).")
class ErrorCode(Enum):
    INVALID = "INVALID"
    REQUIRED = "REQUIRED"
    NOT_FOUND = "NOT_FOUND"
    INVALID_STATE = "INVALID_STATE"
    INSUFFICIENT_COUPONS = "INSUFFICIENT_COUPONS"
    PURCHASE_IN_PROGRESS = "PURCHASE_IN_PROGRESS"
    PRODUCT_NOT_OFFERED = "PRODUCT_NOT_OFFERED"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    EMAIL_DOMAIN_MISMATCH = "EMAIL_DOMAIN_MISMATCH"
    EMAIL_LOCKED = "EMAIL_LOCKED"
    TARGET_NOT_ELIGIBLE = "TARGET_NOT_ELIGIBLE"
    TOKEN_EXPIRED = "TOKEN_EXPIRED"
    TOKEN_INVALID = "TOKEN_INVALID"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    SIGNER_LIMIT = "SIGNER_LIMIT"
    SESSION_EXPIRED = "SESSION_EXPIRED"
    NOT_BUSINESS_DAY = "NOT_BUSINESS_DAY"
    DATE_TOO_EARLY = "DATE_TOO_EARLY"
    PASSWORD_TOO_WEAK = "PASSWORD_TOO_WEAK"
    TOO_MANY_ATTEMPTS = "TOO_MANY_ATTEMPTS"
    PAYMENT_DECLINED = "PAYMENT_DECLINED"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    TOO_MANY_REQUESTS = "TOO_MANY_REQUESTS"
    TOO_MANY_ITEMS = "TOO_MANY_ITEMS"
    TOO_LONG = "TOO_LONG"


@strawberry.type(description="A business-rule violation or bad input; `field` is the input path.")
class UserError:
    code: ErrorCode
    field: list[str] | None
    message: str = strawberry.field(description="Japanese; English when Accept-Language prefers en.")


def user_errors(failure: UserFailure | UserFailures, language: str) -> list[UserError]:
    failures = failure.failures if isinstance(failure, UserFailures) else [failure]
    return [UserError(code=ErrorCode(f.code), field=f.field, message=f.message(language)) for f in failures]


async def run_mutation(info, call: Callable[[], Awaitable[T]], ok: Callable[[T], P], failed: Callable[[list[UserError]], P]) -> P:
    """Run a use case; its domain failures become the payload's `errors` (nothing was
    written: use cases fail before or inside their one transaction)."""
    try:
        result = await call()
    except (UserFailure, UserFailures) as failure:
        return failed(user_errors(failure, info.context.language))
    return ok(result)
