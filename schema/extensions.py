"""Schema-wide behaviour: limits, error masking with logging, Prometheus metrics per operation."""

from __future__ import annotations

import logging
import re
import time
from typing import Iterator

from graphql import GraphQLError
from prometheus_client import Counter, Histogram
from strawberry.extensions import MaskErrors

from tradecert.logs import request_id_var

log = logging.getLogger("tradecert.graphql")

GRAPHQL_REQUESTS = Counter(
    "tradecert_graphql_operations_total", "GraphQL operations by name and outcome", ["operation", "outcome"]
)
GRAPHQL_LATENCY = Histogram(
    "tradecert_graphql_operation_seconds", "GraphQL operation latency by name", ["operation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def is_unexpected(error: GraphQLError) -> bool:
    """An error we did not raise on purpose: an exception that is not a GraphQLError."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


class OperationPolicy(MaskErrors):
    """Per-operation policy in one extension (each extension costs every request):

    * adds the depth and alias limiters' validation rules — built once per schema, so
      ValidationCache keys stay stable (see schema.build_schema);
    * times and counts the operation for Prometheus, by operation name;
    * masks unexpected errors: clients see a generic message and the request id; the
      exception itself was logged by ``TradecertSchema.process_errors``.
    """

    def __init__(self, validation_rules: tuple = ()) -> None:
        super().__init__(should_mask_error=is_unexpected)
        self.validation_rules = validation_rules

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        if self.validation_rules:
            context.validation_rules = context.validation_rules + self.validation_rules
        started = time.perf_counter()
        yield from super().on_operation()  # masking happens after the operation
        name = context.operation_name or "anonymous"
        if not _NAME.match(name):
            name = "other"
        result = context.result
        outcome = "error" if result is not None and getattr(result, "errors", None) else "ok"
        GRAPHQL_REQUESTS.labels(name, outcome).inc()
        GRAPHQL_LATENCY.labels(name).observe(time.perf_counter() - started)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
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
        if is_unexpected(error):
            original = error.original_error
            log.error(
                "unexpected error in %s: %s", ".".join(str(p) for p in error.path or []) or "operation", original,
                exc_info=(type(original), original, original.__traceback__),
                extra={"request_id": request_id_var.get()},
            )
        else:
            log.info("graphql error: %s", error.message)
