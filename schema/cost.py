"""The cost of a query: how many values its answer may hold, estimated from the validated
document before anything runs (issue 20, item 5).

Every field selected counts 1, its sub-selection counted once per value it returns. A list
counts as many times as the page asked by its field's ``first`` (the connection's ``edges``
and ``nodes``), ``MAX_PAGE`` when ``first`` is a variable (the value may be anything up to it)
and ``DEFAULT_PAGE`` when it is left out; a list without ``first`` counts ``LIST_ESTIMATE``
(our unpaged lists are short: goods lines, user codes, products). Aliases are fields of their
own, fragments count where they are spread. Introspection fields count 1 each: the schema is
their bound, and production turns them off.

Counting is work of its own, done on the event loop before any time budget: a page of
``first: 0`` counts nothing, so fragments spread inside it again and again (or spreads of
fragments that do not exist, or cycles) would cost nothing while their expansion grows
exponentially — 0.04 s a spread, minutes of one request. So the count visits at most as
many selections as the limit allows values; a document that needs more is refused as costly.

Depth (12), aliases (30) and tokens (2,000) bound the document; this bounds the answer: 30
aliases of ``applications(first: 100)`` with every relation asked 23 MB of one request.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)

from resolvers.core import messages
from resolvers.core.messages import Words
from resolvers.core.paging import DEFAULT_PAGE, MAX_PAGE

LIST_ESTIMATE = 10  # values of a list without `first`


class LimitRefused(GraphQLError):
    """A request refused by one of our limits before it ran, worded in both languages: the
    answer takes ``words`` in the request's language (schema/extensions.py)."""

    def __init__(self, words: Words, code: str, node: Any = None, **extensions: object) -> None:
        super().__init__(f"{words.en}", node, extensions={"code": code, **extensions})
        self.words = words


def _page(field: FieldNode) -> int:
    for argument in field.arguments or ():
        if argument.name.value == "first":
            value = argument.value
            if isinstance(value, IntValueNode):
                return max(0, min(int(value.value), MAX_PAGE))  # outside 1–100 is refused while resolving
            return MAX_PAGE  # a variable: the most it may be
    return DEFAULT_PAGE


def _unwrap(type_: GraphQLOutputType) -> tuple[Any, bool]:
    listed = False
    while isinstance(type_, (GraphQLNonNull, GraphQLList)):
        listed = listed or isinstance(type_, GraphQLList)
        type_ = type_.of_type
    return type_, listed


class _Estimate:
    def __init__(self, context: ValidationContext, ceiling: int) -> None:
        self.context = context
        self.ceiling = ceiling  # counting stops past it: the answer is "too much" either way
        self.visits = 0  # selections looked at, fragments expanded where spread: at most `ceiling`

    def selection(self, selection_set: SelectionSetNode, parent: Any, page: int | None,
                  spread: frozenset[str]) -> int:
        total = 0
        for selection in selection_set.selections:
            self.visits += 1
            if self.visits > self.ceiling:  # more to look at than values allowed: too costly to count
                return self.ceiling + 1
            if total > self.ceiling:
                break
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, page, spread)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.context.schema.get_type(condition.name.value) if condition else parent
                total += self.selection(selection.selection_set, target or parent, page, spread)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.context.get_fragment(name)
                if fragment is None or name in spread:  # unknown or cyclic: validation says so
                    continue
                target = self.context.schema.get_type(fragment.type_condition.name.value)
                total += self.selection(fragment.selection_set, target or parent, page, spread | {name})
        return total

    def field(self, field: FieldNode, parent: Any, page: int | None, spread: frozenset[str]) -> int:
        name = field.name.value
        if name.startswith("__") or not isinstance(parent, (GraphQLObjectType, GraphQLInterfaceType)):
            return 1
        definition = parent.fields.get(name)
        if definition is None:  # unknown field: validation says so
            return 1
        target, listed = _unwrap(definition.type)
        times = (page if page is not None else LIST_ESTIMATE) if listed else 1
        paged = _page(field) if "first" in definition.args else None
        inner = self.selection(field.selection_set, target, paged, spread) if field.selection_set else 0
        return times * (1 + inner)


def expanded_size(document: DocumentNode) -> int:
    """How many selections the document holds with every fragment spread where it is spread
    (a cycle counts once), in one pass: each fragment is measured once. strawberry's depth and
    alias limiters walk every spread again, so a fragment spread 30 times in one spread 30
    times in … costs them 30^k (schema.build_schema asks this first)."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    sizes: dict[str, int] = {}

    def size(selection_set: SelectionSetNode | None, seen: frozenset[str]) -> int:
        total = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                total += 1 + size(selection.selection_set, seen)
            elif isinstance(selection, InlineFragmentNode):
                total += size(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in sizes and name in fragments and name not in seen:
                    sizes[name] = size(fragments[name].selection_set, seen | {name})
                total += sizes.get(name, 0)
        return total

    return sum(size(d.selection_set, frozenset()) for d in document.definitions
               if isinstance(d, OperationDefinitionNode))


def cost_limit(max_cost: int) -> type[ASTValidationRule]:
    """A validation rule refusing an operation whose estimated answer holds more than
    ``max_cost`` values (QUERY_TOO_COSTLY). Built once per schema: ValidationCache keys on
    the rule classes (schema.build_schema)."""

    class QueryCostLimit(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: object) -> None:
            root = self.context.schema.get_root_type(node.operation)
            estimate = _Estimate(self.context, max_cost)
            cost = estimate.selection(node.selection_set, root, None, frozenset())
            if cost > max_cost or estimate.visits > max_cost:  # a page of 0 multiplies what it cut short by 0
                words = messages.QUERY_TOO_COSTLY.format(limit=f"{max_cost:,}")
                self.report_error(LimitRefused(words, "QUERY_TOO_COSTLY", node, limit=max_cost))

    return QueryCostLimit
