"""Trade registrations managed by chamber staff, renewal by the admin, the audit log (a page
with its accounts: three statements)."""

from __future__ import annotations

import datetime as dt

import strawberry

from resolvers.core.context import Context
from resolvers.identity import messages as words
from resolvers.identity import names, queries, registrations
from resolvers.identity.queries import AccountView, RegistrationView
from schema.errors import UserError, run_mutation
from schema.fees import Membership, PurchaseMethod, RegistrationKind
from schema.identity import Account, TradeRegistration, account_after
from schema.inputs import at_most
from schema.paging import PageInfo, encode_cursor, page_info, page_window


@strawberry.input
class CreateTradeRegistrationInput:
    kind: RegistrationKind
    name: str
    membership: Membership
    contact_email: str = strawberry.field(description="The contact person's e-mail (its domain may receive sub-ID notices).")
    purchase_methods: list[PurchaseMethod] = strawberry.field(default_factory=list)
    admin_name: str
    admin_email: str
    admin_password: str


@strawberry.type
class CreateTradeRegistrationPayload:
    registration: TradeRegistration | None
    admin: Account | None = strawberry.field(description="The admin ID created with the registration (admin-<number>).")
    errors: list[UserError]


@strawberry.input
class AddSignerInput:
    registration_number: str
    name: str
    email: str
    password: str
    username: str | None = strawberry.field(default=None, description="Default signer<N>-<registration number>.")
    reason: str | None = strawberry.field(default=None, description="Required beyond the signer limit (SIGNER_LIMIT).")


@strawberry.type
class AddSignerPayload:
    account: Account | None
    errors: list[UserError]


@strawberry.input
class RenewTradeRegistrationInput:
    confirm: bool = strawberry.field(default=True, description="Renew the viewer's registration for one more term.")


@strawberry.type
class RenewTradeRegistrationPayload:
    registration: TradeRegistration | None
    errors: list[UserError]


@strawberry.type(description="Who did what: the acting ID, the responsible signer (for a sub-ID, its generating signer).")
class AuditEntry:
    at: dt.datetime
    action: str
    target: str | None
    request_id: str | None
    detail: str | None
    actor: Account | None
    responsible: Account | None


@strawberry.type
class AuditEntryEdge:
    cursor: str
    node: AuditEntry


@strawberry.type
class AuditEntryConnection:
    edges: list[AuditEntryEdge]
    page_info: PageInfo
    total_count: int


async def _after_write(ctx: Context, registration_id: int) -> RegistrationView:
    """The registration a use case just wrote, read again by id — inside ``run_mutation``,
    so after the write."""
    found = await queries.registrations(ctx, [registration_id])
    return found[registration_id]


@strawberry.type
class RegistrationsQuery:
    @strawberry.field(description="Chamber staff: the chamber's audit trail, newest first.")
    async def audit_log(self, info: strawberry.Info[Context], first: int = 20, after: str | None = None) -> AuditEntryConnection:
        size, before = page_window("AuditEntry", first, after)
        rows, total, more = await registrations.audit_log(info.context, size, before)
        accounts = await queries.accounts(info.context, {pk for r in rows for pk in (r.actor_id, r.responsible_id) if pk})

        def account(pk: int | None) -> Account | None:
            view = accounts.get(pk) if pk else None
            return Account.from_view(view) if view else None

        edges = [
            AuditEntryEdge(cursor=encode_cursor("AuditEntry", r.id), node=AuditEntry(
                at=r.at, action=r.action, target=r.target, request_id=r.request_id, detail=r.detail,
                actor=account(r.actor_id), responsible=account(r.responsible_id)))
            for r in rows
        ]
        return AuditEntryConnection(edges=edges, total_count=total, page_info=page_info(edges, more))


@strawberry.type
class RegistrationsMutation:
    @strawberry.mutation(description="Chamber staff: register an applicant or agent; its admin ID is created with it.")
    async def create_trade_registration(self, info: strawberry.Info[Context], input: CreateTradeRegistrationInput) -> CreateTradeRegistrationPayload:
        async def call() -> tuple[RegistrationView, AccountView]:
            at_most(input.purchase_methods, len(PurchaseMethod), ["input", "purchaseMethods"], words.PURCHASE_METHODS)
            data = registrations.NewRegistration(
                kind=names.RegistrationKind(input.kind.value), name=input.name,
                membership=names.Membership(input.membership.value), contact_email=input.contact_email,
                bank_transfer=PurchaseMethod.BANK_TRANSFER in input.purchase_methods,
                card=PurchaseMethod.CARD in input.purchase_methods,
                admin_name=input.admin_name, admin_email=input.admin_email, admin_password=input.admin_password,
            )
            registration, admin = await registrations.create_trade_registration(info.context, data)
            return await _after_write(info.context, registration.id), await account_after(info.context, admin)
        return await run_mutation(
            info, call,
            ok=lambda created: CreateTradeRegistrationPayload(
                registration=TradeRegistration.from_view(created[0]), admin=Account.from_view(created[1]), errors=[]),
            failed=lambda errors: CreateTradeRegistrationPayload(registration=None, admin=None, errors=errors),
        )

    @strawberry.mutation(description="Chamber staff: register a signer (user ID); beyond the limit only with a reason.")
    async def add_signer(self, info: strawberry.Info[Context], input: AddSignerInput) -> AddSignerPayload:
        async def call() -> AccountView:
            return await account_after(info.context, await registrations.add_signer(
                info.context, input.registration_number, input.name, input.email, input.password, input.username,
                input.reason))
        return await run_mutation(
            info, call,
            ok=lambda account: AddSignerPayload(account=Account.from_view(account), errors=[]),
            failed=lambda errors: AddSignerPayload(account=None, errors=errors),
        )

    @strawberry.mutation(description="Admin: renew the registration for one more term (limits.yaml).")
    async def renew_trade_registration(self, info: strawberry.Info[Context], input: RenewTradeRegistrationInput) -> RenewTradeRegistrationPayload:
        async def call() -> RegistrationView:
            registration = await registrations.renew_trade_registration(info.context)
            return await _after_write(info.context, registration.id)
        return await run_mutation(
            info, call,
            ok=lambda registration: RenewTradeRegistrationPayload(registration=TradeRegistration.from_view(registration), errors=[]),
            failed=lambda errors: RenewTradeRegistrationPayload(registration=None, errors=errors),
        )
