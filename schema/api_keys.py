"""API keys (issue 14): ``apiKeys``, ``createApiKey``, ``revokeApiKey`` and ``ApiKey`` nodes.

Built from ``resolvers.identity.api_keys.ApiKeyView`` (the account preloaded with it). The
secret appears once, in ``CreateApiKeyPayload.secret``; no field ever shows it again.
"""

from __future__ import annotations

import datetime as dt

import strawberry

from resolvers.core.context import Context
from resolvers.core.errors import ErrorCode, UserFailure
from resolvers.identity import api_keys
from resolvers.identity.api_keys import ApiKeyView
from schema.errors import UserError, run_mutation
from schema.identity import Account, Node, NodeLoader, from_global_id, to_global_id


@strawberry.type(description="An API key of a signer or sub-ID: sent as `Authorization: Bearer tck_…`, it acts as its "
                             "account (docs/api.md, \"API keys\"). The secret is shown once, when it is made.")
class ApiKey(Node):
    name: str
    prefix: str = strawberry.field(description="The key's first characters (`tck_` + 8), to tell keys apart.")
    account: Account
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None = strawberry.field(description="Written at most once a minute.")
    revoked_at: dt.datetime | None

    @classmethod
    def from_view(cls, view: ApiKeyView) -> ApiKey:
        return cls(id=to_global_id("ApiKey", view.id), name=view.name, prefix=view.prefix,
                   account=Account.from_view(view.account), created_at=view.created_at, expires_at=view.expires_at,
                   last_used_at=view.last_used_at, revoked_at=view.revoked_at)


async def _api_key_node(info: strawberry.Info[Context], pk: int) -> ApiKey | None:
    view = await api_keys.visible_api_key(info.context, pk)
    return ApiKey.from_view(view) if view else None


NODES: dict[str, NodeLoader] = {"ApiKey": _api_key_node}  # wired into Node lookup by schema/__init__.py


@strawberry.input
class CreateApiKeyInput:
    name: str = strawberry.field(description="What the key is for (e.g. the system using it); at most 100 characters.")
    expires_at: dt.datetime | None = strawberry.field(default=None, description="After this the key is refused; "
                                                                                "in the future. Null: until revoked.")


@strawberry.type
class CreateApiKeyPayload:
    api_key: ApiKey | None
    secret: str | None = strawberry.field(description="The key, `tck_…`: shown only here, once; store it now.")
    errors: list[UserError]


@strawberry.input
class RevokeApiKeyInput:
    api_key_id: strawberry.ID


@strawberry.type
class RevokeApiKeyPayload:
    api_key: ApiKey | None
    errors: list[UserError]


def _key_pk(value: str) -> int:
    decoded = from_global_id(value)
    if decoded is None or decoded[0] != "ApiKey":
        raise UserFailure(ErrorCode.NOT_FOUND, ["input", "apiKeyId"])
    return decoded[1]


async def _key_after(ctx: Context, key_id: int) -> ApiKeyView:
    """The key a use case just wrote, read again by id (inside ``run_mutation``: after the write)."""
    return (await api_keys.api_keys_by_id(ctx, [key_id]))[key_id]


@strawberry.type
class ApiKeysQuery:
    @strawberry.field(description="Own keys; a registration's admin: all keys of the registration (revoked ones too).")
    async def api_keys(self, info: strawberry.Info[Context]) -> list[ApiKey]:
        return [ApiKey.from_view(view) for view in await api_keys.list_api_keys(info.context)]


@strawberry.type
class ApiKeysMutation:
    @strawberry.mutation(description="Signer or sub-ID: a new key for itself; the secret is in the payload, once. "
                                     "Not with an API key.")
    async def create_api_key(self, info: strawberry.Info[Context], input: CreateApiKeyInput) -> CreateApiKeyPayload:
        async def call() -> tuple[ApiKeyView, str]:
            made = await api_keys.create_api_key(info.context, input.name, input.expires_at)
            return await _key_after(info.context, made.id), made.secret

        return await run_mutation(
            info, call,
            ok=lambda done: CreateApiKeyPayload(api_key=ApiKey.from_view(done[0]), secret=done[1], errors=[]),
            failed=lambda errors: CreateApiKeyPayload(api_key=None, secret=None, errors=errors),
        )

    @strawberry.mutation(description="Revoke a key: one's own, or (a registration's admin) any of the registration's.")
    async def revoke_api_key(self, info: strawberry.Info[Context], input: RevokeApiKeyInput) -> RevokeApiKeyPayload:
        async def call() -> ApiKeyView:
            return await _key_after(info.context, await api_keys.revoke_api_key(info.context, _key_pk(input.api_key_id)))

        return await run_mutation(
            info, call,
            ok=lambda view: RevokeApiKeyPayload(api_key=ApiKey.from_view(view), errors=[]),
            failed=lambda errors: RevokeApiKeyPayload(api_key=None, errors=errors),
        )
