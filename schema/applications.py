"""Applications (docs/api.md): types, the filtered connection, the lifecycle mutations.

``Application`` is built from an ``ApplicationView`` (resolvers/applications/queries.py)
that already holds its registrations, creator and signer: the connection resolver loads a
page in a fixed number of statements and every field below it is a plain attribute, except
``goods`` (on demand, batched) and the print window (computed for issued ones).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

import strawberry

from resolvers.applications import certificates, queries
from resolvers.applications import messages as application_words
from resolvers.applications import use_cases as applications
from resolvers.applications.queries import ApplicationView, GoodsLineView
from resolvers.core import ratelimit
from resolvers.core.clock import tokyo_date
from resolvers.core.context import Context
from resolvers.identity.queries import AccountView, RegistrationView
from schema.enums import ApplicationState, CertificateType, FeePayment
from schema.errors import UserError, run_mutation
from schema.identity import Account, Chamber, Node, NodeLoader, TradeRegistration, from_global_id, to_global_id
from schema.inputs import at_most
from schema.paging import PageInfo, encode_cursor, page_info, page_window


@strawberry.type(description="A goods line of a certificate of origin.")
class GoodsLine:
    description: str
    quantity: str
    hs_code: str
    origin_country: str = strawberry.field(description="ISO 3166-1 alpha-2.")

    @classmethod
    def from_view(cls, view: GoodsLineView) -> GoodsLine:
        return cls(description=view.description, quantity=view.quantity, hs_code=view.hs_code,
                   origin_country=view.origin_country)


class Shared:
    """The registrations and accounts built for one answer, by id: immutable, so every
    application of a page that shows the same one points to the same object."""

    __slots__ = ("_accounts", "_registrations")

    def __init__(self) -> None:
        self._registrations: dict[int, TradeRegistration] = {}
        self._accounts: dict[int, Account] = {}

    def registration(self, view: RegistrationView) -> TradeRegistration:
        found = self._registrations.get(view.id)
        if found is None:
            found = self._registrations[view.id] = TradeRegistration.from_view(view)
        return found

    def account(self, view: AccountView) -> Account:
        found = self._accounts.get(view.id)
        if found is None:
            found = self._accounts[view.id] = Account.from_view(view)
        return found


async def _goods(ctx: Context, pk: int) -> list[GoodsLine]:
    return [GoodsLine.from_view(view) for view in await queries.goods(ctx, pk)]


@strawberry.type(description="発給申請.")
class Application(Node):
    receipt_number: str | None = strawberry.field(description="9-digit 発給受付番号, from the first submission.")
    state: ApplicationState
    type: CertificateType
    signature_kind: str | None = strawberry.field(description="サイン証明の種類 (e.g. 自販, 衛生).")
    destination_country: str = strawberry.field(description="ISO 3166-1 alpha-2.")
    goods_category: str
    invoice_number: str
    exporter_name: str
    consignee: str | None
    transport: str | None
    person_in_charge: str | None
    fee_payment: FeePayment
    fee: int | None = strawberry.field(description="Fixed at the first submission by the rules in force that Tokyo date.")
    fee_rule: str | None = strawberry.field(description="The rule table and version that fixed the fee.")
    submitted_at: dt.datetime | None
    approved_at: dt.datetime | None
    issued_at: dt.datetime | None
    hold_reason: str | None
    certificate_number: str | None
    access_code: str | None = strawberry.field(description="With the certificate number, lets anyone verify the certificate.")
    registration: TradeRegistration = strawberry.field(description="The applicant registration.")
    agent: TradeRegistration | None = strawberry.field(description="The agent (代行業者) whose sub-ID filed it, if any.")
    created_by: Account
    signer: Account = strawberry.field(description="The responsible signer (the creator, or the signer that generated the sub-ID).")
    _view: strawberry.Private[ApplicationView]

    @classmethod
    def from_view(cls, view: ApplicationView, shared: Shared | None = None) -> Application:
        """``shared``: the related objects already built for this page (20 applications of one
        applicant share one registration, creator and signer: built once, not 20 times)."""
        shared = shared or Shared()
        issued = view.state == ApplicationState.ISSUED.value
        return cls(
            id=to_global_id("Application", view.id), receipt_number=view.receipt_number, state=ApplicationState(view.state),
            type=CertificateType(view.type), signature_kind=view.signature_kind, destination_country=view.destination_country,
            goods_category=view.goods_category, invoice_number=view.invoice_number, exporter_name=view.exporter_name,
            consignee=view.consignee, transport=view.transport, person_in_charge=view.person_in_charge,
            fee_payment=FeePayment(view.fee_payment), fee=view.fee, fee_rule=view.fee_rules_version,
            submitted_at=view.submitted_at, approved_at=view.approved_at, issued_at=view.issued_at,
            hold_reason=view.hold_reason, certificate_number=view.certificate_number,
            access_code=certificates.format_access_code(view.access_code) if issued else None,
            registration=shared.registration(view.registration),
            agent=shared.registration(view.agent) if view.agent is not None else None,
            created_by=shared.account(view.created_by), signer=shared.account(view.signer), _view=view,
        )

    @strawberry.field(description="Once issued, during the print window (rules), for those who may view it.")
    def certificate_pdf_url(self, info: strawberry.Info[Context]) -> str | None:
        if self.state != ApplicationState.ISSUED or not certificates.printable(info.context, self._view):
            return None
        return f"{info.context.services.settings.public_url}/documents/applications/{self.id}/certificate.pdf"

    @strawberry.field(description="Last day the certificate may be printed.")
    def print_until(self, info: strawberry.Info[Context]) -> dt.date | None:
        if self.state != ApplicationState.ISSUED:
            return None
        return certificates.print_until(info.context.services, self._view)

    @strawberry.field(description="SHA-256 of the signed certificate content (also on the PDF and the verification page).")
    def content_hash(self) -> str | None:
        return self._view.content_hash if self.state == ApplicationState.ISSUED else None

    @strawberry.field
    def goods(self, info: strawberry.Info[Context]) -> list[GoodsLine]:
        # not preloaded (a page shows no goods): an awaitable, which graphql-core awaits
        return cast(list[GoodsLine], _goods(info.context, self._view.id))


async def _application_node(info: strawberry.Info[Context], pk: int) -> Application | None:
    view = await queries.visible_application(info.context, pk)
    return Application.from_view(view) if view else None


NODES: dict[str, NodeLoader] = {"Application": _application_node}  # wired into Node lookup by schema/__init__.py


@strawberry.type
class ApplicationEdge:
    cursor: str
    node: Application


@strawberry.type
class ApplicationConnection:
    edges: list[ApplicationEdge]
    page_info: PageInfo
    total_count: int


@strawberry.input(description="発給申請状況一覧の検索条件. Dates are Tokyo submission dates, inclusive.")
class ApplicationFilter:
    type: CertificateType | None = None
    state: ApplicationState | None = None
    submitted_from: dt.date | None = None
    submitted_to: dt.date | None = None
    receipt_number: str | None = None
    invoice_number: str | None = None
    person_in_charge: str | None = None


@strawberry.input
class GoodsLineInput:
    description: str
    quantity: str
    hs_code: str
    origin_country: str


@strawberry.input
class CreateApplicationInput:
    type: CertificateType
    destination_country: str
    goods_category: str
    invoice_number: str
    exporter_name: str
    fee_payment: FeePayment
    signature_kind: str | None = None
    consignee: str | None = None
    transport: str | None = None
    person_in_charge: str | None = None
    goods: list[GoodsLineInput] | None = None


@strawberry.input(description="Only the fields given change; DRAFT or ON_HOLD only.")
class UpdateApplicationInput:
    application_id: strawberry.ID
    type: CertificateType | None = None
    destination_country: str | None = None
    goods_category: str | None = None
    invoice_number: str | None = None
    exporter_name: str | None = None
    fee_payment: FeePayment | None = None
    signature_kind: str | None = None
    consignee: str | None = None
    transport: str | None = None
    person_in_charge: str | None = None
    goods: list[GoodsLineInput] | None = None


@strawberry.input
class CopyApplicationInput:
    application_id: strawberry.ID


@strawberry.input
class SubmitApplicationInput:
    application_id: strawberry.ID


@strawberry.input
class WithdrawApplicationInput:
    application_id: strawberry.ID


@strawberry.input
class HoldApplicationInput:
    application_id: strawberry.ID
    reason: str


@strawberry.input
class ApproveApplicationInput:
    application_id: strawberry.ID


@strawberry.type
class CreateApplicationPayload:
    application: Application | None
    errors: list[UserError]


@strawberry.type
class UpdateApplicationPayload:
    application: Application | None
    errors: list[UserError]


@strawberry.type
class CopyApplicationPayload:
    application: Application | None
    errors: list[UserError]


@strawberry.type
class SubmitApplicationPayload:
    application: Application | None
    errors: list[UserError]


@strawberry.type
class WithdrawApplicationPayload:
    application: Application | None
    errors: list[UserError]


@strawberry.type
class HoldApplicationPayload:
    application: Application | None
    errors: list[UserError]


@strawberry.type
class ApproveApplicationPayload:
    application: Application | None
    errors: list[UserError]


def _pk(value: str) -> int:
    decoded = from_global_id(value)
    return decoded[1] if decoded and decoded[0] == "Application" else -1


def _data(input: CreateApplicationInput | UpdateApplicationInput) -> applications.ApplicationData:
    at_most(input.goods, applications.MAX_GOODS, ["input", "goods"], application_words.GOODS)
    goods = None if input.goods is None else [
        applications.GoodsInput(g.description, g.quantity, g.hs_code, g.origin_country) for g in input.goods]
    return applications.ApplicationData(
        type=input.type.value if input.type else None, destination_country=input.destination_country,
        goods_category=input.goods_category, invoice_number=input.invoice_number, exporter_name=input.exporter_name,
        fee_payment=input.fee_payment.value if input.fee_payment else None, signature_kind=input.signature_kind,
        consignee=input.consignee, transport=input.transport, person_in_charge=input.person_in_charge, goods=goods)


P = TypeVar("P")


async def _run(info: strawberry.Info[Context], payload: Callable[..., P], call: Callable[[], Awaitable[int]]) -> P:
    """Run a use case returning an application's id; the payload reads it (with its relations)
    after the write (run_mutation: a read unit of its own)."""
    async def run() -> ApplicationView | None:
        done = await call()
        return await queries.application(info.context, done)

    return await run_mutation(
        info, run, ok=lambda view: payload(application=Application.from_view(view) if view else None, errors=[]),
        failed=lambda errors: payload(application=None, errors=errors))


@strawberry.type(description="The public answer about a certificate: validity and, when valid, no more than this.")
class CertificateVerification:
    valid: bool
    type: CertificateType | None = None
    issue_date: dt.date | None = None
    exporter_name: str | None = None
    chamber: Chamber | None = None
    content_hash: str | None = strawberry.field(default=None, description="SHA-256 of the signed content; compare with the PDF.")
    key_id: str | None = strawberry.field(default=None, description="The key in /.well-known/tradecert-keys.json that signed it.")


@strawberry.type
class ApplicationsQuery:
    @strawberry.field(description="Public: is this an issued certificate (number + access code)? Every call (alias) is an "
                                  "attempt, limited per client address and per number: over a limit, an error with "
                                  "extensions.code TOO_MANY_REQUESTS.")
    async def verify_certificate(self, info: strawberry.Info[Context], number: str, access_code: str) -> CertificateVerification:
        services = info.context.services
        client = ratelimit.client_address(info.context.request, services.settings)
        found = await certificates.verify(services, number, access_code, client)  # RateLimited: a top-level error
        app = found.application
        if not found.valid or app is None or app.issued_at is None or found.chamber is None:
            return CertificateVerification(valid=False)
        return CertificateVerification(
            valid=True, type=CertificateType(app.type), issue_date=tokyo_date(app.issued_at),
            exporter_name=app.exporter_name, chamber=Chamber(code=found.chamber.code, name=found.chamber.name), content_hash=app.content_hash,
            key_id=app.key_id)

    @strawberry.field(description="発給申請状況一覧: what the viewer may see, newest first, 20 per page by default.")
    async def applications(self, info: strawberry.Info[Context], filter: ApplicationFilter | None = None,
                           first: int | None = None, after: str | None = None) -> ApplicationConnection:
        size, before = page_window("Application", first, after)
        f = filter or ApplicationFilter()
        flt = queries.Filter(
            type=f.type.value if f.type else None, state=f.state.value if f.state else None,
            submitted_from=f.submitted_from, submitted_to=f.submitted_to, receipt_number=f.receipt_number,
            invoice_number=f.invoice_number, person_in_charge=f.person_in_charge)
        page = await queries.application_page(info.context, flt, size, before)
        shared = Shared()
        edges = [ApplicationEdge(cursor=encode_cursor("Application", view.id), node=Application.from_view(view, shared))
                 for view in page.applications]
        return ApplicationConnection(edges=edges, page_info=page_info(edges, page.has_more), total_count=page.total)


@strawberry.type
class ApplicationsMutation:
    @strawberry.mutation(description="Signer or sub-ID: a new draft.")
    async def create_application(self, info: strawberry.Info[Context], input: CreateApplicationInput) -> CreateApplicationPayload:
        return await _run(info, CreateApplicationPayload, lambda: applications.create_application(info.context, _data(input)))

    @strawberry.mutation(description="Change a DRAFT or ON_HOLD application (type and payment method are fixed once submitted).")
    async def update_application(self, info: strawberry.Info[Context], input: UpdateApplicationInput) -> UpdateApplicationPayload:
        return await _run(info, UpdateApplicationPayload, lambda: applications.update_application(info.context, _pk(input.application_id), _data(input)))

    @strawberry.mutation(description="複写: a new draft with the content of an application the viewer may see.")
    async def copy_application(self, info: strawberry.Info[Context], input: CopyApplicationInput) -> CopyApplicationPayload:
        return await _run(info, CopyApplicationPayload, lambda: applications.copy_application(info.context, _pk(input.application_id)))

    @strawberry.mutation(description="発給申請: fixes the fee (first time); a coupon application consumes one coupon.")
    async def submit_application(self, info: strawberry.Info[Context], input: SubmitApplicationInput) -> SubmitApplicationPayload:
        return await _run(info, SubmitApplicationPayload, lambda: applications.submit_application(info.context, _pk(input.application_id)))

    @strawberry.mutation(description="取下げ: a submitted application's coupon comes back.")
    async def withdraw_application(self, info: strawberry.Info[Context], input: WithdrawApplicationInput) -> WithdrawApplicationPayload:
        return await _run(info, WithdrawApplicationPayload, lambda: applications.withdraw_application(info.context, _pk(input.application_id)))

    @strawberry.mutation(description="Chamber staff: 保留 with a reason (the coupon comes back until resubmission).")
    async def hold_application(self, info: strawberry.Info[Context], input: HoldApplicationInput) -> HoldApplicationPayload:
        return await _run(info, HoldApplicationPayload, lambda: applications.hold_application(info.context, _pk(input.application_id), input.reason))

    @strawberry.mutation(description="Chamber staff: 承認 (coupon applications are issued at once).")
    async def approve_application(self, info: strawberry.Info[Context], input: ApproveApplicationInput) -> ApproveApplicationPayload:
        return await _run(info, ApproveApplicationPayload, lambda: applications.approve_application(info.context, _pk(input.application_id)))
