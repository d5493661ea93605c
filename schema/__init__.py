"""The GraphQL schema: strawberry types per domain, assembled here.

``build_schema(settings)`` adds the production extensions (caches, limiters, error
masking, metrics, introspection switch). ``sdl()`` is what schema/schema.graphql holds.
"""

from __future__ import annotations

from pathlib import Path

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.types import ExecutionContext

from schema.extensions import OperationPolicy, log_errors
from schema.fees import FeesQuery
from schema.identity import IDENTITY_TYPES, IdentityMutation, IdentityQuery
from schema.registrations import RegistrationsMutation, RegistrationsQuery
from schema.coupons import CouponsMutation, CouponsQuery, PurchasesMutation
from schema.applications import ApplicationsMutation, ApplicationsQuery
from schema.checkout import CheckoutMutation, CheckoutQuery
from schema.naccs import NaccsMutation, NaccsQuery

SDL_PATH = Path(__file__).parent / "schema.graphql"


@strawberry.type
class Query(IdentityQuery, RegistrationsQuery, CouponsQuery, ApplicationsQuery, CheckoutQuery, NaccsQuery, FeesQuery):
    pass


@strawberry.type
class Mutation(IdentityMutation, RegistrationsMutation, CouponsMutation, PurchasesMutation, ApplicationsMutation,
               CheckoutMutation, NaccsMutation):
    pass


class TradecertSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        log_errors(errors)


def build_schema(settings=None) -> strawberry.Schema:
    depth = getattr(settings, "max_query_depth", 12)
    tokens = getattr(settings, "max_query_tokens", 2000)
    aliases = getattr(settings, "max_aliases", 30)
    # Factories: strawberry builds fresh extension instances per request; the parser and
    # validation caches live at module level, so they are shared across requests.
    # QueryDepthLimiter and MaxAliasesLimiter create new validation-rule *classes* per
    # instance, and ValidationCache keys on those classes: a limiter built per request
    # would miss the cache every time (measured: 0.04 of baseline) and fill it. So the
    # limiters' rules are built once here and added per request by OperationPolicy.
    limiter_rules = tuple(
        QueryDepthLimiter(max_depth=depth).validation_rules
        + MaxAliasesLimiter(max_alias_count=aliases).validation_rules
    )
    extensions = [
        lambda: OperationPolicy(limiter_rules),
        lambda: MaxTokensLimiter(max_token_count=tokens),
        lambda: ParserCache(maxsize=1024),
        lambda: ValidationCache(maxsize=1024),
    ]
    if settings is not None and not settings.introspection:
        extensions.append(DisableIntrospection)
    return TradecertSchema(query=Query, mutation=Mutation, types=IDENTITY_TYPES, extensions=extensions)


def sdl() -> str:
    return strawberry.Schema(query=Query, mutation=Mutation, types=IDENTITY_TYPES).as_str() + "\n"
