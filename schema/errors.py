"""UserError and the error codes of docs/api.md: the codes (and their messages) are
``resolvers.core.errors.ErrorCode``, exposed here to GraphQL under the same name."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import strawberry

from resolvers.core.context import Context
from resolvers.core.errors import ErrorCode, UserFailure, UserFailures, rules_out_of_range
from rules.limits import LimitOutOfRange

T = TypeVar("T")
P = TypeVar("P")

strawberry.enum(ErrorCode, name="ErrorCode", description="Why a mutation did nothing; docs/api.md, \"Error codes\", says what each means and what to do.")

__all__ = ["ErrorCode", "UserError", "run_mutation", "user_errors"]


@strawberry.type(description="A business-rule violation or bad input; `field` is the input path.")
class UserError:
    code: ErrorCode
    field: list[str] | None
    message: str = strawberry.field(description="Japanese; English when Accept-Language prefers en.")


def user_errors(failure: UserFailure | UserFailures, language: str) -> list[UserError]:
    failures = failure.failures if isinstance(failure, UserFailures) else [failure]
    return [UserError(code=f.code, field=f.field, message=f.message(language)) for f in failures]


async def run_mutation(info: strawberry.Info[Context], call: Callable[[], Awaitable[T]], ok: Callable[[T], P],
                       failed: Callable[[list[UserError]], P]) -> P:
    """Run a use case; its domain failures become the payload's `errors` (nothing was
    written: use cases fail before or inside their one transaction).

    It runs inside ``Context.writing()``: no read unit of the request is held while the use
    case waits to write, and what ``call`` reads after the write (the payload, read again by
    id) sees it, as does every field of the payload resolved after this returns."""
    async with info.context.writing():
        try:
            result = await call()
        except (UserFailure, UserFailures) as failure:
            return failed(user_errors(failure, info.context.language))
        except LimitOutOfRange as bad:  # rules that bypassed their bounds: refused, naming the row
            return failed(user_errors(rules_out_of_range(bad), info.context.language))
    return ok(result)
