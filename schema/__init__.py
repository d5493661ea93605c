"""The GraphQL schema: strawberry types per domain, assembled here.

``build_schema(settings)`` adds the production extensions (caches, limiters, error
masking, metrics, the introspection and field-suggestion switch). ``sdl()`` is what
schema/schema.graphql holds.
"""

from __future__ import annotations

import re
from pathlib import Path

import strawberry
from graphql import ASTValidationRule, GraphQLError, GraphQLSyntaxError, ValidationContext
from strawberry.extensions import (
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.types import ExecutionContext

from resolvers.core.settings import Settings
from schema import api_keys, applications, coupons, naccs, webhooks
from schema.api_keys import ApiKeysMutation, ApiKeysQuery
from schema.applications import ApplicationsMutation, ApplicationsQuery
from schema.applications_bulk import ApplicationsBulkMutation
from schema.checkout import CheckoutMutation, CheckoutQuery
from schema.cost import cost_limit, expanded_size
from schema.coupons import CouponsMutation, CouponsQuery, PurchasesMutation
from schema.extensions import OperationPolicy, log_errors
from schema.fees import FeesQuery
from schema.identity import IDENTITY_TYPES, NODE_TYPES, IdentityMutation, IdentityQuery
from schema.inputs import INPUT_SCALARS
from schema.naccs import NaccsMutation, NaccsQuery
from schema.registrations import RegistrationsMutation, RegistrationsQuery
from schema.request_errors import answer, is_request_error
from schema.rules_diff import RulesDiffQuery
from schema.rules_history import RulesHistoryQuery
from schema.scalars import SCALAR_OVERRIDES
from schema.webhooks import WebhooksMutation, WebhooksQuery

SDL_PATH = Path(__file__).parent / "schema.graphql"


# Node lookup by type name: each domain module lists its loaders; they are wired here, once
NODE_TYPES.update({**applications.NODES, **coupons.NODES, **naccs.NODES, **api_keys.NODES, **webhooks.NODES})


@strawberry.type
class Query(IdentityQuery, RegistrationsQuery, CouponsQuery, ApplicationsQuery, CheckoutQuery, NaccsQuery, FeesQuery,
            RulesDiffQuery, RulesHistoryQuery, ApiKeysQuery,
            WebhooksQuery):
    pass


@strawberry.type
class Mutation(IdentityMutation, RegistrationsMutation, CouponsMutation, PurchasesMutation, ApplicationsMutation,
               ApplicationsBulkMutation,
               CheckoutMutation, NaccsMutation, ApiKeysMutation, WebhooksMutation):
    pass


_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")  # graphql-core's did_you_mean(): schema names, never a '?'


# graphql-core's words when a value does not fit its type: a variable before execution, or
# an argument while resolving (graphql/execution/values.py)
_BAD_VALUE = re.compile(r"(Variable '\$[^']+'|Argument '[^']+') (has invalid (default )?value|of required type)")


def _code_of(error: GraphQLError) -> str | None:
    """What is wrong with a request graphql-core refused (Apollo's codes); errors we raise
    carry their own code, and other exceptions are masked or mapped by OperationPolicy."""
    original = error.original_error
    if (error.extensions or {}).get("code") or (original is not None and not isinstance(original, GraphQLError)):
        return None
    if isinstance(error, GraphQLSyntaxError):
        return "GRAPHQL_PARSE_FAILED"
    if _BAD_VALUE.match(error.message):
        return "BAD_USER_INPUT"
    return "GRAPHQL_VALIDATION_FAILED" if error.path is None else None


class TradecertSchema(strawberry.Schema):
    hide_suggestions = False  # with introspection off: "Did you mean …?" would spell out the schema

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        for error in errors:  # in place: these are the errors the response carries (and the validation cache keeps)
            code = _code_of(error)
            if code:
                error.extensions = {**(error.extensions or {}), "code": code}
            if self.hide_suggestions and "Did you mean" in error.message:
                error.message = _SUGGESTION.sub("", error.message)
        log_errors(errors)
        # a document that does not parse ends outside the operation hook that answers the other
        # request errors in the request's language (OperationPolicy); a parse failure is not cached
        language = getattr(getattr(execution_context, "context", None), "language", "ja")
        for index, error in enumerate(errors):
            if isinstance(error, GraphQLSyntaxError) and is_request_error(error):
                errors[index] = answer(error, language)


def _bounded(rule: type[ASTValidationRule], most: int) -> type[ASTValidationRule]:
    """strawberry's depth or alias rule, which measures in its constructor by walking every
    fragment spread again: a document expanding to more than ``most`` selections (30 spreads of
    a fragment of 30 spreads of …, minutes on the event loop) is not walked — the cost limit
    refuses it (schema/cost.py). The depth rule also fails with a KeyError on a spread of an
    unknown fragment (an unmasked "'F'"): such a document is refused by graphql-core's
    KnownFragmentNames instead."""

    class Bounded(rule):  # type: ignore[misc,valid-type]  # a class made by strawberry at run time
        def __init__(self, context: ValidationContext) -> None:
            if expanded_size(context.document) > most:
                ASTValidationRule.__init__(self, context)
                return
            try:
                super().__init__(context)
            except KeyError:
                ASTValidationRule.__init__(self, context)

    return Bounded


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    depth = getattr(settings, "max_query_depth", 12)
    tokens = getattr(settings, "max_query_tokens", 2000)
    aliases = getattr(settings, "max_aliases", 30)
    cost = getattr(settings, "max_query_cost", 20_000)
    # Factories: strawberry builds fresh extension instances per request; the parser and
    # validation caches live at module level, so they are shared across requests.
    # QueryDepthLimiter and MaxAliasesLimiter create new validation-rule *classes* per
    # instance, and ValidationCache keys on those classes: a limiter built per request
    # would miss the cache every time (measured: 0.04 of baseline) and fill it. So the
    # limiters' rules are built once here and added per request by OperationPolicy.
    limiter_rules = (
        *(_bounded(rule, cost) for rule in QueryDepthLimiter(max_depth=depth).validation_rules),
        *(_bounded(rule, cost) for rule in MaxAliasesLimiter(max_alias_count=aliases).validation_rules),
        cost_limit(cost),  # the estimated size of the answer (schema/cost.py)
    )
    extensions = [
        lambda: OperationPolicy(limiter_rules),
        lambda: MaxTokensLimiter(max_token_count=tokens),
        lambda: ParserCache(maxsize=1024),
        lambda: ValidationCache(maxsize=1024),
    ]
    hidden = settings is not None and not settings.introspection
    if hidden:
        extensions.append(DisableIntrospection)
    schema = TradecertSchema(query=Query, mutation=Mutation, types=IDENTITY_TYPES, extensions=extensions,
                             scalar_overrides={**SCALAR_OVERRIDES, **INPUT_SCALARS})  # DateTime in Tokyo time (schema/scalars.py)
    schema.hide_suggestions = hidden  # production: field suggestions go with introspection
    return schema


def sdl() -> str:
    return strawberry.Schema(query=Query, mutation=Mutation, types=IDENTITY_TYPES,
                             scalar_overrides={**SCALAR_OVERRIDES, **INPUT_SCALARS}).as_str() + "\n"
