"""Identity: accounts, registrations, login and sessions (docs/api.md).

Types are built from the views of resolvers/identity/queries.py (``from_view``) and hold
plain attributes: a reader preloads every relation it shows (``me`` and a page read an
account with its registration), so graphql-core resolves them without a task or an await.
``Account.generatedBy`` is loaded on demand (a DataLoader) — a sub-ID's signer is rarely
asked for — as is ``Account.registration`` when a reader did not preload it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar, cast

import strawberry

from resolvers.core.context import Context
from resolvers.core.errors import ErrorCode, UserFailure
from resolvers.identity import accounts, actor, queries, sessions, subaccounts
from resolvers.identity.queries import AccountView, ChamberView, RegistrationView
from schema.enums import AccountKind, AccountStatus, Membership, PurchaseMethod, RegistrationKind
from schema.errors import UserError, run_mutation

T = TypeVar("T")


# --------------------------------------------------------------------------- global ids


def to_global_id(type_name: str, pk: int) -> strawberry.ID:
    return strawberry.ID(base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("="))


MAX_PK = 2**31 - 1  # ids are INTEGER columns (PostgreSQL int4): a larger number names no row


def parse_pk(text: str) -> int | None:
    """A row id written in ASCII digits, 1 … MAX_PK; None for anything else (a sign, ``1_000``,
    full-width digits, 10**30), so no caller ever sends the database a number its column cannot hold."""
    if not (0 < len(text) <= 10 and text.isascii() and text.isdigit()):
        return None
    pk = int(text)
    return pk if 1 <= pk <= MAX_PK else None


def from_global_id(value: str) -> tuple[str, int] | None:
    """(type name, row id) of a global id; None when it is not one of ours — callers answer NOT_FOUND."""
    try:
        padded = value + "=" * (-len(value) % 4)
        type_name, _, text = base64.urlsafe_b64decode(padded.encode()).decode().partition(":")
    except (binascii.Error, UnicodeError, ValueError):
        return None
    pk = parse_pk(text)
    return (type_name, pk) if pk is not None else None


@strawberry.interface(description="Relay: an object with an opaque global id, fetchable by Query.node.")
class Node:
    id: strawberry.ID


# --------------------------------------------------------------------------- types


@strawberry.type(description="商工会議所: a chamber of commerce.")
class Chamber:
    code: str
    name: str

    @classmethod
    def from_view(cls, view: ChamberView) -> Chamber:
        return cls(code=view.code, name=view.name)


def _purchase_methods(bank_transfer: bool, card: bool) -> list[PurchaseMethod]:
    methods = []
    if bank_transfer:
        methods.append(PurchaseMethod.BANK_TRANSFER)
    if card:
        methods.append(PurchaseMethod.CARD)
    return methods


@strawberry.type(description="貿易登録: an applicant or agent registered with one chamber.")
class TradeRegistration(Node):
    number: str
    kind: RegistrationKind
    name: str
    valid_from: dt.date
    valid_until: dt.date | None = strawberry.field(description="Last day of validity; renewed by the admin.")
    purchase_methods: list[PurchaseMethod] = strawberry.field(description="Coupon purchase methods the chamber allows (商工会議所管理項目).")
    membership: Membership = strawberry.field(description="The membership in force now (its history decides prices).")
    chamber: Chamber
    _pk: strawberry.Private[int]

    @classmethod
    def from_view(cls, view: RegistrationView) -> TradeRegistration:
        return cls(
            id=to_global_id("TradeRegistration", view.id), number=view.number, kind=RegistrationKind(view.kind),
            name=view.name, valid_from=view.valid_from, valid_until=view.valid_until,
            purchase_methods=_purchase_methods(view.allows_bank_transfer, view.allows_card),
            membership=_membership(view), chamber=Chamber.from_view(view.chamber), _pk=view.id,
        )


def _membership(view: RegistrationView) -> Membership:
    """The membership in force now; every registration has one from its creation (a gap in
    its history is a data error, reported as such rather than guessed)."""
    if view.membership is None:
        raise LookupError(f"registration {view.id}: no membership period covers now")
    return Membership(view.membership)


async def _registration_on_demand(ctx: Context, registration_id: int) -> TradeRegistration | None:
    view = await queries.registration(ctx, registration_id)
    return TradeRegistration.from_view(view) if view else None


async def _account_on_demand(ctx: Context, account_id: int) -> Account | None:
    view = await queries.account(ctx, account_id)
    return Account.from_view(view) if view else None


def _on_demand(load: Awaitable[T]) -> T:
    """A relation the reader did not preload: the awaitable itself, which graphql-core awaits
    (a sync resolver may return one), so a preloaded relation costs no task and no await."""
    return cast(T, load)


@strawberry.type(description="A login: admin, signer or sub-ID of a registration, chamber staff, or a NACCS account.")
class Account(Node):
    kind: AccountKind
    username: str
    name: str
    email: str | None
    phone: str | None
    status: AccountStatus
    notified_at: dt.datetime | None = None
    activation_expires_at: dt.datetime | None = None
    _view: strawberry.Private[AccountView | None] = None

    @classmethod
    def from_view(cls, view: AccountView) -> Account:
        return cls(
            id=to_global_id("Account", view.id), kind=AccountKind(view.kind), username=view.username, name=view.name,
            email=view.email, phone=view.phone, status=AccountStatus(view.status),
            notified_at=view.notified_at, activation_expires_at=view.activation_expires_at, _view=view,
        )

    @strawberry.field
    def registration(self, info: strawberry.Info[Context]) -> TradeRegistration | None:
        view = self._view
        if view is None or view.registration_id is None:
            return None
        if view.registration is not None:
            return TradeRegistration.from_view(view.registration)
        return _on_demand(_registration_on_demand(info.context, view.registration_id))

    @strawberry.field(description="For a sub-ID: the signer that generated it (and is responsible for it).")
    def generated_by(self, info: strawberry.Info[Context]) -> Account | None:
        view = self._view
        if view is None or view.generated_by_id is None:
            return None
        if view.generated_by is not None:
            return Account.from_view(view.generated_by)
        return _on_demand(_account_on_demand(info.context, view.generated_by_id))


# --------------------------------------------------------------------------- inputs / payloads


@strawberry.input
class LoginInput:
    chamber_code: str | None = strawberry.field(default=None, description="Required for eCO IDs; omitted for NACCS accounts.")
    username: str
    password: str


@strawberry.type
class LoginPayload:
    token: str | None = strawberry.field(description="Send as `Authorization: Bearer <token>`; browsers also get an HttpOnly cookie.")
    account: Account | None
    errors: list[UserError]


@strawberry.input
class LogoutInput:
    all_sessions: bool = strawberry.field(default=False, description="End every session of this account, not only this one.")


@strawberry.type
class LogoutPayload:
    errors: list[UserError]


@strawberry.input
class ChangePasswordInput:
    current_password: str
    new_password: str


@strawberry.type
class ChangePasswordPayload:
    errors: list[UserError]
    token: str | None = strawberry.field(default=None, description="Every session ended; this is the new one's token.")



# --------------------------------------------------------------------------- root fields

# type name → async (info, pk) → the object when the viewer may see it (other modules add theirs)
NodeLoader = Callable[[strawberry.Info[Context], int], Awaitable[Node | None]]
# the other domains' Node types by name, filled once by schema/__init__.py (never on import)
NODE_TYPES: dict[str, NodeLoader] = {}


async def _node(info: strawberry.Info[Context], id: strawberry.ID) -> Node | None:
    decoded = from_global_id(id)
    who = await actor.viewer(info.context)
    if decoded is None or who is None:
        return None
    type_name, pk = decoded
    if type_name == "Account":
        if pk == who.id:
            return Account.from_view(who.view)
        row = await accounts.account_by_id(info.context, pk)
        if row is None or not subaccounts.may_view(info.context, who, row):
            return None
        return await _account_on_demand(info.context, pk)
    if type_name == "TradeRegistration" and pk == who.registration_id:
        view = await queries.registration(info.context, pk)
        return TradeRegistration.from_view(view) if view else None
    if type_name in NODE_TYPES:
        return await NODE_TYPES[type_name](info, pk)
    return None


@strawberry.input
class CreateSubAccountInput:
    name: str = strawberry.field(description="Family and given name separated by one space.")
    password: str
    email: str
    phone: str | None = None


@strawberry.type
class CreateSubAccountPayload:
    account: Account | None
    errors: list[UserError]


@strawberry.input
class UpdateSubAccountInput:
    account_id: strawberry.ID
    name: str | None = None
    password: str | None = None
    email: str | None = None
    phone: str | None = None


@strawberry.type
class UpdateSubAccountPayload:
    account: Account | None
    errors: list[UserError]


@strawberry.input
class NotifySubAccountInput:
    account_id: strawberry.ID
    target_registration_number: str = strawberry.field(description="Own registration, or an agent registered with the same chamber.")
    phone: str
    email: str = strawberry.field(description="Same domain as the signer's or the target contact person's e-mail; locked once notified.")
    subject: str | None = None
    body: str | None = strawberry.field(
        default=None,
        description="Placeholders: {company} {name} {activation_url} {chamber_code} {sub_id} {expires_at} {signer_name}.",
    )


@strawberry.type
class NotifySubAccountPayload:
    account: Account | None
    errors: list[UserError]


@strawberry.input
class DeleteSubAccountInput:
    account_id: strawberry.ID


@strawberry.type
class DeleteSubAccountPayload:
    account: Account | None
    errors: list[UserError]


@strawberry.input
class ActivateSubAccountInput:
    token: str
    username: str
    password: str


@strawberry.type
class ActivateSubAccountPayload:
    account: Account | None
    errors: list[UserError]


@strawberry.input
class ResetAccountPasswordInput:
    account_id: strawberry.ID
    new_password: str


@strawberry.type
class ResetAccountPasswordPayload:
    account: Account | None
    errors: list[UserError]



def _account_pk(value: str) -> int:
    decoded = from_global_id(value)
    if decoded is None or decoded[0] != "Account":
        raise UserFailure(ErrorCode.NOT_FOUND, ["input", "accountId"])
    return decoded[1]


P = TypeVar("P")


class _HasId(Protocol):
    id: int


async def account_after(ctx: Context, done: _HasId) -> AccountView:
    """The account a use case just wrote, read again by id (with its registration) — inside
    ``run_mutation``, so after the write."""
    found = await queries.accounts(ctx, [done.id])
    return found[done.id]


async def _account_mutation(info: strawberry.Info[Context], payload_cls: Callable[..., P],
                            call: Callable[[], Awaitable[_HasId]]) -> P:
    """Run a use case returning an account; the payload maps it as read after the write."""
    async def run() -> AccountView:
        return await account_after(info.context, await call())

    return await run_mutation(
        info, run,
        ok=lambda view: payload_cls(account=Account.from_view(view), errors=[]),
        failed=lambda errors: payload_cls(account=None, errors=errors),
    )


@strawberry.type
class IdentityQuery:
    @strawberry.field(description="The logged-in account; null when not logged in.")
    async def me(self, info: strawberry.Info[Context]) -> Account | None:
        view = await accounts.me(info.context)
        return Account.from_view(view) if view else None

    @strawberry.field(description="Signer: the sub-IDs it generated. Applicant admin: all activated sub-IDs of its registration.")
    async def sub_accounts(self, info: strawberry.Info[Context]) -> list[Account]:
        return [Account.from_view(view) for view in await accounts.sub_accounts(info.context)]

    @strawberry.field(description="Relay: any object by its global id, when the viewer may see it.")
    async def node(self, info: strawberry.Info[Context], id: strawberry.ID) -> Node | None:
        return await _node(info, id)


@strawberry.type
class IdentityMutation:
    @strawberry.mutation(description="Chamber code + ID + password → a session token.")
    async def login(self, info: strawberry.Info[Context], input: LoginInput) -> LoginPayload:
        async def call() -> tuple[str, AccountView]:
            result = await sessions.login(info.context, input.chamber_code, input.username, input.password)
            return result.token, await account_after(info.context, result.account)

        return await run_mutation(
            info, call,
            ok=lambda done: LoginPayload(token=done[0], account=Account.from_view(done[1]), errors=[]),
            failed=lambda errors: LoginPayload(token=None, account=None, errors=errors),
        )

    @strawberry.mutation(description="End this session (or every session of the account).")
    async def logout(self, info: strawberry.Info[Context], input: LogoutInput) -> LogoutPayload:
        async with info.context.writing():  # as run_mutation; an anonymous logout is UNAUTHENTICATED
            await sessions.logout(info.context, all_sessions=input.all_sessions)
        return LogoutPayload(errors=[])

    @strawberry.mutation(description="Change the viewer's own password; all sessions end, a new one begins.")
    async def change_password(self, info: strawberry.Info[Context], input: ChangePasswordInput) -> ChangePasswordPayload:
        return await run_mutation(
            info, lambda: accounts.change_password(info.context, input.current_password, input.new_password),
            ok=lambda token: ChangePasswordPayload(errors=[], token=token),
            failed=lambda errors: ChangePasswordPayload(errors=errors),
        )

    @strawberry.mutation(description="Signer: generate a sub-ID (12 random characters).")
    async def create_sub_account(self, info: strawberry.Info[Context], input: CreateSubAccountInput) -> CreateSubAccountPayload:
        return await _account_mutation(info, CreateSubAccountPayload, lambda: subaccounts.create_sub_account(
            info.context, input.name, input.password, input.email, input.phone))

    @strawberry.mutation(description="Generating signer: change name, password, e-mail (until notified) or phone.")
    async def update_sub_account(self, info: strawberry.Info[Context], input: UpdateSubAccountInput) -> UpdateSubAccountPayload:
        async def call() -> _HasId:
            return await subaccounts.update_sub_account(
                info.context, _account_pk(input.account_id), input.name, input.password, input.email, input.phone)
        return await _account_mutation(info, UpdateSubAccountPayload, call)

    @strawberry.mutation(description="Generating signer: mail the activation link (72 hours) — never the password. Again to re-notify.")
    async def notify_sub_account(self, info: strawberry.Info[Context], input: NotifySubAccountInput) -> NotifySubAccountPayload:
        async def call() -> _HasId:
            return await subaccounts.notify_sub_account(info.context, subaccounts.NotifyInput(
                _account_pk(input.account_id), input.target_registration_number, input.phone, input.email,
                input.subject, input.body))
        return await _account_mutation(info, NotifySubAccountPayload, call)

    @strawberry.mutation(description="Generating signer: delete a sub-ID (its history stays attributable).")
    async def delete_sub_account(self, info: strawberry.Info[Context], input: DeleteSubAccountInput) -> DeleteSubAccountPayload:
        async def call() -> _HasId:
            return await subaccounts.delete_sub_account(info.context, _account_pk(input.account_id))
        return await _account_mutation(info, DeleteSubAccountPayload, call)

    @strawberry.mutation(description="Public: activate a sub-ID with the mailed link's token, the sub-ID and its password.")
    async def activate_sub_account(self, info: strawberry.Info[Context], input: ActivateSubAccountInput) -> ActivateSubAccountPayload:
        return await _account_mutation(info, ActivateSubAccountPayload, lambda: subaccounts.activate_sub_account(
            info.context, input.token, input.username, input.password))

    @strawberry.mutation(description="Applicant admin (signers, activated sub-IDs) or generating signer (its sub-IDs).")
    async def reset_account_password(self, info: strawberry.Info[Context], input: ResetAccountPasswordInput) -> ResetAccountPasswordPayload:
        async def call() -> _HasId:
            return await subaccounts.reset_account_password(info.context, _account_pk(input.account_id), input.new_password)
        return await _account_mutation(info, ResetAccountPasswordPayload, call)


IDENTITY_TYPES = [Account, TradeRegistration]
