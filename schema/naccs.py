"""NACCS support system (docs/api.md)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import TypeVar

import strawberry

from resolvers.core.context import Context
from resolvers.naccs import queries
from resolvers.naccs import use_cases as naccs
from schema.enums import NaccsApplicationKind, NaccsApplicationState, ProcessingMethod, ReissueReason
from schema.errors import UserError, run_mutation
from schema.identity import Node, NodeLoader, from_global_id, to_global_id


@strawberry.type(description="利用者ID: user code (5) + identification number (3); alphabetic identification → netNACCS.")
class NaccsUserId:
    user_id: str
    user_code: str
    identification_number: str
    net_naccs: bool
    industries: list[str]

    @classmethod
    def from_view(cls, view: queries.UserIdView) -> NaccsUserId:
        return cls(user_id=view.user_id, user_code=view.user_code, identification_number=view.identification_number,
                   net_naccs=view.net_naccs, industries=list(view.industries))


@strawberry.type(description="論理端末 and its digital certificate.")
class LogicalTerminal:
    name: str
    area: str
    equipment: str
    issued_on: dt.date
    expires_on: dt.date
    renewable_from: dt.date


@strawberry.type(description="新着情報.")
class Notice:
    at: dt.datetime
    category: str
    message: str


@strawberry.type(description="ID通知: the password only inside its viewing window, else null.")
class NaccsIdNotice:
    user_id: str
    user_code: str
    identification_number: str
    industries: list[str]
    _sealed_password: strawberry.Private[str | None]

    @strawberry.field
    def password(self, info: strawberry.Info[Context]) -> str | None:
        # opened only when asked for: a plain password exists in memory for the response alone
        return queries.reveal_password(info.context.services, self._sealed_password) if self._sealed_password else None


@strawberry.type
class NaccsApplication(Node):
    receipt_number: str
    kind: NaccsApplicationKind
    state: NaccsApplicationState
    desired_date: dt.date
    start_date: dt.date | None
    clarification: str | None
    reason: str
    password_viewable_until: dt.date | None
    terminal_names: list[str] = strawberry.field(description="Certificate reissues: the selected terminals.")
    form_pdf_url: str = strawberry.field(description="The application form (PDF), any time.")
    approval_notice_pdf_url: str | None = strawberry.field(description="利用申込確認完了のお知らせ (PDF), from the start date on.")
    id_notice: list[NaccsIdNotice]

    @classmethod
    def from_view(cls, view: queries.ApplicationView, ctx: Context) -> NaccsApplication:
        gid = to_global_id("NaccsApplication", view.id)
        documents = f"{ctx.services.settings.public_url}/documents/naccs/{gid}"
        started = (view.kind == NaccsApplicationKind.USER_CODE_ADDITION and view.start_date is not None
                   and ctx.clock.today() >= view.start_date)
        return cls(id=gid, receipt_number=view.receipt_number, kind=NaccsApplicationKind(view.kind),
                   state=NaccsApplicationState(view.state), desired_date=view.desired_date, start_date=view.start_date,
                   clarification=view.clarification, reason=view.reason,
                   password_viewable_until=view.password_viewable_until, terminal_names=list(view.terminal_names),
                   form_pdf_url=f"{documents}/form.pdf",
                   approval_notice_pdf_url=f"{documents}/approval-notice.pdf" if started else None,
                   id_notice=[NaccsIdNotice(user_id=i.user_id, user_code=i.user_code,
                                            identification_number=i.identification_number,
                                            industries=list(i.industries), _sealed_password=i.sealed_password)
                              for i in view.issued_ids])


async def _naccs_node(info: strawberry.Info[Context], pk: int) -> NaccsApplication | None:
    view = await queries.visible_application(info.context, pk)
    return NaccsApplication.from_view(view, info.context) if view else None


NODES: dict[str, NodeLoader] = {"NaccsApplication": _naccs_node}  # wired into Node lookup by schema/__init__.py


@strawberry.type
class NaccsOffice:
    name: str
    user_ids: list[NaccsUserId]
    terminals: list[LogicalTerminal]
    notices: list[Notice] = strawberry.field(description="The latest 10, newest first.")
    applications: list[NaccsApplication]

    @classmethod
    def from_view(cls, view: queries.OfficeView, ctx: Context) -> NaccsOffice:
        return cls(
            name=view.name, user_ids=[NaccsUserId.from_view(u) for u in view.user_ids],
            terminals=[LogicalTerminal(name=t.name, area=t.area, equipment=t.equipment, issued_on=t.issued_on,
                                       expires_on=t.expires_on, renewable_from=t.renewable_from) for t in view.terminals],
            notices=[Notice(at=n.at, category=n.category, message=n.message) for n in view.notices],
            applications=[NaccsApplication.from_view(a, ctx) for a in view.applications],
        )


@strawberry.input
class ContactInput:
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    department: str
    title: str
    phone: str
    email: str
    email_confirmation: str
    fax: str | None = None


@strawberry.input(description="One new 利用者コード (user code) of a 変更申込, with its identification numbers.")
class UserCodeInput:
    category: str = strawberry.field(description=(
        "システム設定区分: the name the office gives the user code's system settings (e.g. 通関業務), "
        "up to 60 characters; printed on the application form."))
    industries: list[str] = strawberry.field(description="業種 (the rules' NACCS industries, e.g. 通関業, 混載業), each once.")
    processing_method: ProcessingMethod = strawberry.field(description="処理方式.")
    single_sign_on: bool = strawberry.field(description=(
        "シングルサインオン: one identification number covers all its industries (else one per industry)."))
    identification_count: int | None = strawberry.field(default=None, description=(
        "識別番号数 with single sign-on, 1 to 20; default 1."))
    statistics_paid: int | None = strawberry.field(default=None, description="管理統計資料 有料分 (0 to 100).")
    statistics_free: int | None = strawberry.field(default=None, description=(
        "管理統計資料 無料分 (0 to 100; only for industries naccs_industries.yaml marks free_statistics)."))


@strawberry.input
class SubmitUserCodeApplicationInput:
    desired_start_date: dt.date
    reason: str
    contact: ContactInput
    user_codes: list[UserCodeInput]


@strawberry.input
class SubmitCertificateReissueInput:
    contact: ContactInput
    desired_date: dt.date
    reason: ReissueReason
    terminal_names: list[str]


@strawberry.input(description="While CLARIFICATION_REQUESTED: the fields given replace the old ones; back to SUBMITTED.")
class UpdateNaccsApplicationInput:
    application_id: strawberry.ID
    desired_date: dt.date | None = None
    reason: str | None = None
    contact: ContactInput | None = None
    user_codes: list[UserCodeInput] | None = None


@strawberry.input
class WithdrawNaccsApplicationInput:
    application_id: strawberry.ID


@strawberry.input
class RequestClarificationInput:
    application_id: strawberry.ID
    message: str


@strawberry.input
class ApproveUserCodeApplicationInput:
    application_id: strawberry.ID
    start_date: dt.date


@strawberry.type
class SubmitUserCodeApplicationPayload:
    application: NaccsApplication | None
    errors: list[UserError]


@strawberry.type
class SubmitCertificateReissuePayload:
    application: NaccsApplication | None
    errors: list[UserError]


@strawberry.type
class UpdateNaccsApplicationPayload:
    application: NaccsApplication | None
    errors: list[UserError]


@strawberry.type
class WithdrawNaccsApplicationPayload:
    application: NaccsApplication | None
    errors: list[UserError]


@strawberry.type
class RequestClarificationPayload:
    application: NaccsApplication | None
    errors: list[UserError]


@strawberry.type
class ApproveUserCodeApplicationPayload:
    application: NaccsApplication | None
    errors: list[UserError]


P = TypeVar("P")  # one of the payloads above: (application, errors)


def _contact(c: ContactInput) -> naccs.Contact:
    return naccs.Contact(c.family_name, c.given_name, c.family_name_kana, c.given_name_kana, c.department, c.title,
                         c.phone, c.fax, c.email, c.email_confirmation)


def _codes(codes: list[UserCodeInput]) -> list[naccs.UserCodeInput]:
    return [naccs.UserCodeInput(c.category, c.industries, c.processing_method.value, c.single_sign_on, c.identification_count,
                                c.statistics_paid, c.statistics_free) for c in codes]


def _pk(value: str) -> int:
    decoded = from_global_id(value)
    return decoded[1] if decoded and decoded[0] == "NaccsApplication" else -1


async def _run(info: strawberry.Info[Context], payload: Callable[..., P], call: Callable[[], Awaitable[int]]) -> P:
    """Run a use case, then map the application it changed, read again by id (a plain view)."""
    async def changed() -> queries.ApplicationView | None:
        done = await call()  # inside run_mutation: the read that follows sees what it wrote
        return await queries.application(info.context, done)
    return await run_mutation(
        info, changed,
        ok=lambda view: payload(application=NaccsApplication.from_view(view, info.context) if view else None, errors=[]),
        failed=lambda errors: payload(application=None, errors=errors))


@strawberry.type
class NaccsQuery:
    @strawberry.field(description="The viewer's office (NACCS_OFFICE accounts); null for others.")
    async def naccs_office(self, info: strawberry.Info[Context]) -> NaccsOffice | None:
        office = await queries.viewer_office(info.context)
        return NaccsOffice.from_view(office, info.context) if office else None

    @strawberry.field(description="NACCS center: applications waiting for review.")
    async def naccs_review_queue(self, info: strawberry.Info[Context]) -> list[NaccsApplication]:
        return [NaccsApplication.from_view(a, info.context) for a in await queries.review_queue(info.context)]


@strawberry.type
class NaccsMutation:
    @strawberry.mutation(description="変更申込: add user codes.")
    async def submit_user_code_application(self, info: strawberry.Info[Context],
                                           input: SubmitUserCodeApplicationInput) -> SubmitUserCodeApplicationPayload:
        return await _run(info, SubmitUserCodeApplicationPayload, lambda: naccs.submit_user_codes(
            info.context, input.desired_start_date, input.reason, _contact(input.contact), _codes(input.user_codes)))

    @strawberry.mutation(description="電子証明書の再発行申込.")
    async def submit_certificate_reissue(self, info: strawberry.Info[Context],
                                         input: SubmitCertificateReissueInput) -> SubmitCertificateReissuePayload:
        return await _run(info, SubmitCertificateReissuePayload, lambda: naccs.submit_reissue(
            info.context, _contact(input.contact), input.desired_date, input.reason.value, input.terminal_names))

    @strawberry.mutation(description="The office corrects an application the center asked about.")
    async def update_naccs_application(self, info: strawberry.Info[Context],
                                       input: UpdateNaccsApplicationInput) -> UpdateNaccsApplicationPayload:
        return await _run(info, UpdateNaccsApplicationPayload, lambda: naccs.update_application(
            info.context, _pk(input.application_id), input.desired_date, input.reason,
            _contact(input.contact) if input.contact else None, _codes(input.user_codes) if input.user_codes is not None else None))

    @strawberry.mutation
    async def withdraw_naccs_application(self, info: strawberry.Info[Context],
                                         input: WithdrawNaccsApplicationInput) -> WithdrawNaccsApplicationPayload:
        return await _run(info, WithdrawNaccsApplicationPayload, lambda: naccs.withdraw(info.context, _pk(input.application_id)))

    @strawberry.mutation(description="NACCS center: ask the office a question (it corrects or withdraws).")
    async def request_clarification(self, info: strawberry.Info[Context], input: RequestClarificationInput) -> RequestClarificationPayload:
        return await _run(info, RequestClarificationPayload, lambda: naccs.request_clarification(
            info.context, _pk(input.application_id), input.message))

    @strawberry.mutation(description="NACCS center: approve with the fixed start date; user IDs and passwords are issued.")
    async def approve_user_code_application(self, info: strawberry.Info[Context],
                                            input: ApproveUserCodeApplicationInput) -> ApproveUserCodeApplicationPayload:
        return await _run(info, ApproveUserCodeApplicationPayload, lambda: naccs.approve_user_codes(
            info.context, _pk(input.application_id), input.start_date))
