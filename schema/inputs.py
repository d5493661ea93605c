"""Input checks every domain shares at the GraphQL edge.

* A bad argument of a *query* is a top-level error with ``extensions.code`` BAD_USER_INPUT
  (a query has no payload to carry a UserError); a mutation answers with a UserError.
* Every list input is bounded: by the rules where the chamber decides the number, otherwise
  by ``MAX_LIST_ITEMS``; more is TOO_MANY_ITEMS on the list's field path, with the limit in
  the message — refused before any per-item work.
* A value the schema cannot read (a malformed Date, a string for an Int, …) is a top-level
  error with ``extensions.code`` BAD_USER_INPUT too, its message in the request's language
  naming the argument and the value (schema/extensions.py words it; ``Date`` below says
  whether the format is wrong or the day does not exist).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sized
from typing import Any

import strawberry
from graphql import GraphQLError, StringValueNode, ValueNode, print_ast
from strawberry.types.scalar import ScalarDefinition

from resolvers.core import messages, validation
from resolvers.core.errors import ErrorCode, UserFailure
from resolvers.core.messages import Label, Words

MAX_LIST_ITEMS = 100  # a list no rule bounds (cart ids, order lines): a page's worth (docs/api.md: pages are 1–100)


class BadUserInput(GraphQLError):
    """A query argument a resolver refused. Its message is the Japanese text; the client reads
    ``words`` in its language (OperationPolicy in schema/extensions.py)."""

    def __init__(self, words: Words, argument: str) -> None:
        self.words = words
        super().__init__(words.ja, extensions={"code": "BAD_USER_INPUT", "argument": argument})


def query_failure(failure: UserFailure, language: str = "ja") -> BadUserInput:
    """A query argument's UserFailure as the top-level error a query answers with; it keeps
    both languages and the edge answers in the request's (``language`` is not needed)."""
    return BadUserInput(Words(failure.message("ja"), failure.message("en")), ".".join(failure.field or []))


class BadScalarValue(GraphQLError):
    """A value one of our scalars cannot read; ``problem`` says why, in both languages.
    graphql-core reports it as it is (a literal) or wrapped (a variable's value)."""

    def __init__(self, type_name: str, value: object, problem: Words, node: ValueNode | None = None) -> None:
        self.value = value
        self.problem = problem
        super().__init__(f"{type_name}: {problem.en}", node, extensions={"code": "BAD_USER_INPUT"})


def parse_date(value: object) -> dt.date:
    """YYYY-MM-DD only; a day the calendar does not have (2026-02-30) is told apart from a
    wrong format (2026/02/01)."""
    day = validation.iso_date(value)
    if isinstance(day, Words):
        raise BadScalarValue("Date", value, day)
    return day


def _parse_date_literal(node: ValueNode, _variables: dict[str, Any] | None = None) -> dt.date:
    if not isinstance(node, StringValueNode):
        raise BadScalarValue("Date", print_ast(node), messages.DATE_FORMAT, node)
    try:
        return parse_date(node.value)
    except BadScalarValue as bad:
        raise BadScalarValue("Date", node.value, bad.problem, node) from None


DATE: ScalarDefinition = strawberry.scalar(
    name="Date",
    description="A calendar date, YYYY-MM-DD (2026-04-01); a malformed or non-existent date is BAD_USER_INPUT.",
    serialize=dt.date.isoformat,
    parse_value=parse_date,
    parse_literal=_parse_date_literal,
)

INPUT_SCALARS: dict[object, ScalarDefinition] = {dt.date: DATE}  # with schema/scalars.py's, in build_schema and sdl


def at_most(values: Sized | None, limit: int, field: list[str], label: Label) -> None:
    """TOO_MANY_ITEMS when ``values`` holds more than ``limit`` items."""
    if values is not None and len(values) > limit:
        raise UserFailure(ErrorCode.TOO_MANY_ITEMS, field, label=label, limit=limit)
