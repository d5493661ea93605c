"""Schema-wide behaviour: limits, error masking with logging, Prometheus metrics per operation."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from typing import cast

from graphql import ASTValidationRule, GraphQLError
from prometheus_client import Counter, Histogram
from strawberry.extensions import MaskErrors

from resolvers.core.errors import (
    Forbidden,
    TooManyRequests,
    Unauthenticated,
    UserFailure,
    UserFailures,
    domain_failure,
    localised,
)
from resolvers.core.logs import request_id_var
from schema.input_errors import is_bad_input, loggable, reword
from schema.request_errors import answer, is_request_error

log = logging.getLogger("tradecert.graphql")

GRAPHQL_REQUESTS = Counter(
    "tradecert_graphql_operations_total", "GraphQL operations by name and outcome", ["operation", "outcome"]
)
GRAPHQL_LATENCY = Histogram(
    "tradecert_graphql_operation_seconds", "GraphQL operation latency by name", ["operation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_Children = tuple[Counter, Counter, Histogram]  # label children: ok counter, error counter, latency histogram
_children: dict[str, _Children] = {}  # by operation name
MAX_OPERATION_NAMES = 500  # names are client-chosen: bound the label cardinality


def _metrics_for(name: str) -> _Children:
    """Label children, looked up once per operation name (labels() takes a lock each call)."""
    children = _children.get(name)
    if children is None:
        if name != "other" and (not _NAME.match(name) or len(_children) >= MAX_OPERATION_NAMES):
            return _metrics_for("other")
        children = (GRAPHQL_REQUESTS.labels(name, "ok"), GRAPHQL_REQUESTS.labels(name, "error"), GRAPHQL_LATENCY.labels(name))
        _children[name] = children
    return children


def is_unexpected(error: GraphQLError) -> bool:
    """An error we did not raise on purpose: an exception that is not a GraphQLError
    (nor a domain failure, which a query answers as a top-level error with its code)."""
    original = error.original_error
    return (original is not None and not isinstance(original, (GraphQLError, UserFailure, UserFailures))
            and not is_bad_input(error))  # a scalar's parser refusing a value the request gave


def _is_domain_failure(error: GraphQLError) -> bool:
    return domain_failure(error.original_error) is not None


def _refusal(error: GraphQLError) -> Unauthenticated | Forbidden | TooManyRequests | None:
    original = error.original_error
    return original if isinstance(original, (Unauthenticated, Forbidden, TooManyRequests)) else None


def _replaced(error: GraphQLError) -> bool:
    return (is_unexpected(error) or _is_domain_failure(error) or is_bad_input(error) or is_request_error(error)
            or _refusal(error) is not None)


class OperationPolicy(MaskErrors):
    """Per-operation policy in one extension (each extension costs every request):

    * adds the depth and alias limiters' validation rules — built once per schema, so
      ValidationCache keys stay stable (see schema.build_schema);
    * times and counts the operation for Prometheus, by operation name;
    * masks unexpected errors: clients see a generic message and the request id; the
      exception itself was logged by ``TradecertSchema.process_errors``.
    """

    def __init__(self, validation_rules: tuple[type[ASTValidationRule], ...] = ()) -> None:
        super().__init__(should_mask_error=_replaced)
        self.validation_rules = validation_rules

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        if self.validation_rules:
            context.validation_rules = context.validation_rules + self.validation_rules
        started = time.perf_counter()
        yield from super().on_operation()  # masking happens after the operation
        ok, failed, latency = _metrics_for(context.operation_name or "anonymous")
        result = context.result
        (failed if result is not None and getattr(result, "errors", None) else ok).inc()
        latency.observe(time.perf_counter() - started)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        if is_bad_input(error):  # a value the request gave: answered in the request's language (schema/input_errors.py)
            context = self.execution_context
            return reword(error, getattr(context.context, "language", "ja"), context.graphql_document, context.variables)
        if is_request_error(error):  # a document refused before it ran: in the request's language (schema/request_errors.py)
            return answer(error, getattr(self.execution_context.context, "language", "ja"))
        refusal = _refusal(error)
        if refusal is not None:  # UNAUTHENTICATED / FORBIDDEN / TOO_MANY_REQUESTS, in the request's language
            language = getattr(self.execution_context.context, "language", "ja")
            return GraphQLError(message=localised(refusal, language), nodes=error.nodes, source=error.source,
                                positions=error.positions, path=error.path, extensions=dict(refusal.extensions or {}))
        if _is_domain_failure(error):  # a query's bad input or rule: its code, field and message
            failure = domain_failure(error.original_error)
            first = failure.failures[0] if isinstance(failure, UserFailures) else cast(UserFailure, failure)
            language = getattr(self.execution_context.context, "language", "ja")
            return GraphQLError(message=first.message(language), nodes=error.nodes, source=error.source,
                                positions=error.positions, path=error.path,
                                extensions={"code": first.code, "field": first.field})
        request_id = request_id_var.get()
        return GraphQLError(
            message=f"内部エラーが発生しました。/ Internal server error (request id {request_id}).",
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
        )


def log_errors(errors: list[GraphQLError]) -> None:
    for error in errors:
        original = error.original_error
        if original is not None and is_unexpected(error):
            log.error(
                "unexpected error in %s: %s", ".".join(str(p) for p in error.path or []) or "operation", original,
                exc_info=(type(original), original, original.__traceback__),
                extra={"request_id": request_id_var.get()},
            )
        else:
            log.info("graphql error: %s", loggable(error.message))
