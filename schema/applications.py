"""Applications (docs/api.md): types, the filtered connection, the lifecycle mutations."""

from __future__ import annotations

import datetime as dt
from enum import Enum

import strawberry

from persistence import models
from resolvers.applications import certificates
from resolvers.applications import use_cases as applications
from resolvers.core import loaders, ratelimit
from resolvers.core.clock import tokyo_date
from resolvers.core.context import Context
from schema.errors import UserError, run_mutation
from schema.identity import NODE_TYPES, Account, Chamber, Node, TradeRegistration, from_global_id, to_global_id
from schema.inputs import at_most
from schema.paging import PageInfo, encode_cursor, page_info, page_window


@strawberry.enum(description="原産地証明書(日本産/外国産), インボイス証明, サイン証明.")
class CertificateType(Enum):
    ORIGIN_JAPANESE = "ORIGIN_JAPANESE"
    ORIGIN_FOREIGN = "ORIGIN_FOREIGN"
    INVOICE = "INVOICE"
    SIGNATURE = "SIGNATURE"


@strawberry.enum
class ApplicationState(Enum):
    DRAFT = "DRAFT"
    SUBMITTED = "SUBMITTED"
    ON_HOLD = "ON_HOLD"
    APPROVED = "APPROVED"
    ISSUED = "ISSUED"
    WITHDRAWN = "WITHDRAWN"


@strawberry.enum(description="How the fee is paid; fixed at submission.")
class FeePayment(Enum):
    CARD = "CARD"
    COUPON = "COUPON"


@strawberry.type(description="A goods line of a certificate of origin.")
class GoodsLine:
    description: str
    quantity: str
    hs_code: str
    origin_country: str = strawberry.field(description="ISO 3166-1 alpha-2.")


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
    _pk: strawberry.Private[int]
    _registration_id: strawberry.Private[int]
    _agent_id: strawberry.Private[int | None]
    _created_by_id: strawberry.Private[int]
    _signer_id: strawberry.Private[int]
    _issued_row: strawberry.Private[models.Application | None] = None

    @classmethod
    def of(cls, row: models.Application) -> Application:
        return cls(
            id=to_global_id("Application", row.id), receipt_number=row.receipt_number, state=ApplicationState(row.state),
            type=CertificateType(row.type), signature_kind=row.signature_kind, destination_country=row.destination_country,
            goods_category=row.goods_category, invoice_number=row.invoice_number, exporter_name=row.exporter_name,
            consignee=row.consignee, transport=row.transport, person_in_charge=row.person_in_charge,
            fee_payment=FeePayment(row.fee_payment), fee=row.fee, fee_rule=row.fee_rules_version,
            submitted_at=row.submitted_at, approved_at=row.approved_at, issued_at=row.issued_at,
            hold_reason=row.hold_reason, certificate_number=row.certificate_number,
            access_code=certificates.format_access_code(row.access_code) if row.state == "ISSUED" else None,
            _pk=row.id, _registration_id=row.registration_id, _agent_id=row.agent_registration_id,
            _created_by_id=row.created_by_id, _signer_id=row.signer_id,
            _issued_row=row if row.state == "ISSUED" else None,
        )

    @strawberry.field(description="The applicant registration.")
    async def registration(self, info: strawberry.Info[Context]) -> TradeRegistration:
        return TradeRegistration.of(await loaders.registration(info.context, self._registration_id))

    @strawberry.field(description="The agent (代行業者) whose sub-ID filed it, if any.")
    async def agent(self, info: strawberry.Info[Context]) -> TradeRegistration | None:
        if self._agent_id is None:
            return None
        return TradeRegistration.of(await loaders.registration(info.context, self._agent_id))

    @strawberry.field
    async def created_by(self, info: strawberry.Info[Context]) -> Account:
        return Account.of(await loaders.account(info.context, self._created_by_id))

    @strawberry.field(description="The responsible signer (the creator, or the signer that generated the sub-ID).")
    async def signer(self, info: strawberry.Info[Context]) -> Account:
        return Account.of(await loaders.account(info.context, self._signer_id))

    @strawberry.field(description="Once issued, during the print window (rules), for those who may view it.")
    async def certificate_pdf_url(self, info: strawberry.Info[Context]) -> str | None:
        if self.state != ApplicationState.ISSUED or self._issued_row is None:
            return None
        if not certificates.printable(info.context, self._issued_row):
            return None
        return f"{info.context.services.settings.public_url}/documents/applications/{self.id}/certificate.pdf"

    @strawberry.field(description="Last day the certificate may be printed.")
    def print_until(self, info: strawberry.Info[Context]) -> dt.date | None:
        return certificates.print_until(info.context.services, self._issued_row) if self._issued_row else None

    @strawberry.field(description="SHA-256 of the signed certificate content (also on the PDF and the verification page).")
    def content_hash(self) -> str | None:
        return self._issued_row.content_hash if self._issued_row else None

    @strawberry.field
    async def goods(self, info: strawberry.Info[Context]) -> list[GoodsLine]:
        found = await applications.goods_of(info.context, [self._pk])
        return [GoodsLine(description=g.description, quantity=g.quantity, hs_code=g.hs_code, origin_country=g.origin_country)
                for g in found[self._pk]]


async def _application_node(info: strawberry.Info[Context], pk: int) -> Application | None:
    row = await applications.visible(info.context, pk)
    return Application.of(row) if row else None


NODE_TYPES["Application"] = _application_node


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


def _data(input) -> applications.ApplicationData:
    at_most(input.goods, applications.MAX_GOODS, ["input", "goods"], "品目")
    goods = None if input.goods is None else [
        applications.GoodsInput(g.description, g.quantity, g.hs_code, g.origin_country) for g in input.goods]
    return applications.ApplicationData(
        type=input.type.value if input.type else None, destination_country=input.destination_country,
        goods_category=input.goods_category, invoice_number=input.invoice_number, exporter_name=input.exporter_name,
        fee_payment=input.fee_payment.value if input.fee_payment else None, signature_kind=input.signature_kind,
        consignee=input.consignee, transport=input.transport, person_in_charge=input.person_in_charge, goods=goods)


async def _run(info, payload, call):
    return await run_mutation(info, call, ok=lambda row: payload(application=Application.of(row), errors=[]),
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
        if not found.valid:
            return CertificateVerification(valid=False)
        app = found.application
        return CertificateVerification(
            valid=True, type=CertificateType(app.type), issue_date=tokyo_date(app.issued_at),
            exporter_name=app.exporter_name, chamber=Chamber.of(found.chamber), content_hash=app.content_hash,
            key_id=app.key_id)

    @strawberry.field(description="発給申請状況一覧: what the viewer may see, newest first, 20 per page by default.")
    async def applications(self, info: strawberry.Info[Context], filter: ApplicationFilter | None = None,
                           first: int | None = None, after: str | None = None) -> ApplicationConnection:
        size, before = page_window("Application", first, after)
        f = filter or ApplicationFilter()
        flt = applications.Filter(
            type=f.type.value if f.type else None, state=f.state.value if f.state else None,
            submitted_from=f.submitted_from, submitted_to=f.submitted_to, receipt_number=f.receipt_number,
            invoice_number=f.invoice_number, person_in_charge=f.person_in_charge)
        rows, total, more = await applications.list_applications(info.context, flt, size, before)
        edges = [ApplicationEdge(cursor=encode_cursor("Application", r.id), node=Application.of(r)) for r in rows]
        return ApplicationConnection(edges=edges, page_info=page_info(edges, more), total_count=total)


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
