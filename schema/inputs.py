"""Input checks every domain shares at the GraphQL edge.

* A bad argument of a *query* is a top-level error with ``extensions.code`` BAD_USER_INPUT
  (a query has no payload to carry a UserError); a mutation answers with a UserError.
* Every list input is bounded: by the rules where the chamber decides the number, otherwise
  by ``MAX_LIST_ITEMS``; more is TOO_MANY_ITEMS on the list's field path, with the limit in
  the message — refused before any per-item work.
"""

from __future__ import annotations

from collections.abc import Sized

from graphql import GraphQLError

from resolvers.core.errors import ErrorCode, UserFailure

MAX_LIST_ITEMS = 100  # a list no rule bounds (cart ids, order lines): a page's worth (docs/api.md: pages are 1–100)


class BadUserInput(GraphQLError):
    def __init__(self, message: str, argument: str) -> None:
        super().__init__(message, extensions={"code": "BAD_USER_INPUT", "argument": argument})


def query_failure(failure: UserFailure, language: str) -> BadUserInput:
    """A query argument's UserFailure as the top-level error a query answers with."""
    return BadUserInput(failure.message(language), ".".join(failure.field or []))


def at_most(values: Sized | None, limit: int, field: list[str], label: str) -> None:
    """TOO_MANY_ITEMS when ``values`` holds more than ``limit`` items."""
    if values is not None and len(values) > limit:
        raise UserFailure(ErrorCode.TOO_MANY_ITEMS, field, label=label, limit=limit)
