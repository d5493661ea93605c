"""NACCS support system (docs/api.md)."""

from __future__ import annotations

import datetime as dt
import json
from enum import Enum
from typing import Optional

import strawberry

from persistence import models
from resolvers.core.context import Context
from resolvers.naccs import use_cases as naccs
from schema.errors import UserError, run_mutation
from schema.identity import NODE_TYPES, Node, from_global_id, to_global_id


@strawberry.enum
class NaccsApplicationKind(Enum):
    USER_CODE_ADDITION = "USER_CODE_ADDITION"
    CERTIFICATE_REISSUE = "CERTIFICATE_REISSUE"


@strawberry.enum
class NaccsApplicationState(Enum):
    SUBMITTED = "SUBMITTED"
    CLARIFICATION_REQUESTED = "CLARIFICATION_REQUESTED"
    APPROVED = "APPROVED"
    COMPLETED = "COMPLETED"
    WITHDRAWN = "WITHDRAWN"


@strawberry.enum
class ReissueReason(Enum):
    EXPIRED = "EXPIRED"
    TERMINAL_REPLACEMENT = "TERMINAL_REPLACEMENT"
    OTHER = "OTHER"


@strawberry.type(description="利用者ID: user code (5) + identification number (3); alphabetic identification → netNACCS.")
class NaccsUserId:
    user_id: str
    user_code: str
    identification_number: str
    net_naccs: bool
    industries: list[str]

    @classmethod
    def of(cls, row: models.NaccsUserId) -> NaccsUserId:
        return cls(user_id=row.user_code + row.identification_number, user_code=row.user_code,
                   identification_number=row.identification_number, net_naccs=row.identification_number[0].isalpha(),
                   industries=json.loads(row.industries))


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
    password: str | None


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
    _row: strawberry.Private[models.NaccsApplication]

    @classmethod
    def of(cls, row: models.NaccsApplication) -> NaccsApplication:
        details = json.loads(row.details)
        return cls(id=to_global_id("NaccsApplication", row.id), receipt_number=row.receipt_number,
                   kind=NaccsApplicationKind(row.kind), state=NaccsApplicationState(row.state),
                   desired_date=row.desired_date, start_date=row.start_date, clarification=row.clarification,
                   reason=row.reason, password_viewable_until=row.password_viewable_until,
                   terminal_names=details.get("terminals", []), _row=row)

    @strawberry.field(description="The application form (PDF), any time.")
    def form_pdf_url(self, info: strawberry.Info[Context]) -> str:
        return f"{info.context.services.settings.public_url}/documents/naccs/{self.id}/form.pdf"

    @strawberry.field(description="利用申込確認完了のお知らせ (PDF), from the start date on.")
    def approval_notice_pdf_url(self, info: strawberry.Info[Context]) -> str | None:
        start = self._row.start_date
        if self._row.kind != "USER_CODE_ADDITION" or start is None or info.context.clock.today() < start:
            return None
        return f"{info.context.services.settings.public_url}/documents/naccs/{self.id}/approval-notice.pdf"

    @strawberry.field
    async def id_notice(self, info: strawberry.Info[Context]) -> list[NaccsIdNotice]:
        if self._row.kind != "USER_CODE_ADDITION" or self._row.approved_at is None:
            return []
        rows = await naccs.issued_ids(info.context, self._row.id)
        return [NaccsIdNotice(user_id=r.user_code + r.identification_number, user_code=r.user_code,
                              identification_number=r.identification_number, industries=json.loads(r.industries),
                              password=naccs.password_of(info.context.services, r, self._row)) for r in rows]


async def _naccs_node(info: strawberry.Info[Context], pk: int) -> NaccsApplication | None:
    row = await naccs.visible_application(info.context, pk)
    return NaccsApplication.of(row) if row else None


NODE_TYPES["NaccsApplication"] = _naccs_node


@strawberry.type
class NaccsOffice:
    name: str
    _pk: strawberry.Private[int]

    @strawberry.field
    async def user_ids(self, info: strawberry.Info[Context]) -> list[NaccsUserId]:
        user_ids, _t, _n, _a = await naccs.office_details(info.context, self._pk)
        return [NaccsUserId.of(r) for r in user_ids]

    @strawberry.field
    async def terminals(self, info: strawberry.Info[Context]) -> list[LogicalTerminal]:
        _u, terminals, _n, _a = await naccs.office_details(info.context, self._pk)
        result = []
        for t in terminals:
            expires, renewable = naccs.certificate_dates(info.context.services, t.issued_on)
            result.append(LogicalTerminal(name=t.name, area=t.area, equipment=t.equipment, issued_on=t.issued_on,
                                          expires_on=expires, renewable_from=renewable))
        return result

    @strawberry.field(description="The latest 10, newest first.")
    async def notices(self, info: strawberry.Info[Context]) -> list[Notice]:
        _u, _t, notices, _a = await naccs.office_details(info.context, self._pk)
        return [Notice(at=n.at, category=n.category, message=n.message) for n in notices]

    @strawberry.field
    async def applications(self, info: strawberry.Info[Context]) -> list[NaccsApplication]:
        _u, _t, _n, apps = await naccs.office_details(info.context, self._pk)
        return [NaccsApplication.of(a) for a in apps]


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


@strawberry.input
class UserCodeInput:
    category: str
    industries: list[str]
    processing_method: str
    single_sign_on: bool
    identification_count: int | None = None
    statistics_paid: int | None = None
    statistics_free: int | None = None


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


def _payload(name: str):
    return strawberry.type(type(name, (), {"__annotations__": {"application": Optional[NaccsApplication],
                                                                  "errors": list[UserError]}}))


SubmitUserCodeApplicationPayload = _payload("SubmitUserCodeApplicationPayload")
SubmitCertificateReissuePayload = _payload("SubmitCertificateReissuePayload")
UpdateNaccsApplicationPayload = _payload("UpdateNaccsApplicationPayload")
WithdrawNaccsApplicationPayload = _payload("WithdrawNaccsApplicationPayload")
RequestClarificationPayload = _payload("RequestClarificationPayload")
ApproveUserCodeApplicationPayload = _payload("ApproveUserCodeApplicationPayload")


def _contact(c: ContactInput) -> naccs.Contact:
    return naccs.Contact(c.family_name, c.given_name, c.family_name_kana, c.given_name_kana, c.department, c.title,
                         c.phone, c.fax, c.email, c.email_confirmation)


def _codes(codes: list[UserCodeInput]) -> list[naccs.UserCodeInput]:
    return [naccs.UserCodeInput(c.category, c.industries, c.processing_method, c.single_sign_on, c.identification_count,
                                c.statistics_paid, c.statistics_free) for c in codes]


def _pk(value: str) -> int:
    decoded = from_global_id(value)
    return decoded[1] if decoded and decoded[0] == "NaccsApplication" else -1


async def _run(info, payload, call):
    return await run_mutation(info, call, ok=lambda row: payload(application=NaccsApplication.of(row), errors=[]),
                              failed=lambda errors: payload(application=None, errors=errors))


@strawberry.type
class NaccsQuery:
    @strawberry.field(description="The viewer's office (NACCS_OFFICE accounts); null for others.")
    async def naccs_office(self, info: strawberry.Info[Context]) -> NaccsOffice | None:
        office = await naccs.viewer_office(info.context)
        return NaccsOffice(name=office.name, _pk=office.id) if office else None

    @strawberry.field(description="NACCS center: applications waiting for review.")
    async def naccs_review_queue(self, info: strawberry.Info[Context]) -> list[NaccsApplication]:
        return [NaccsApplication.of(a) for a in await naccs.center_queue(info.context)]


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
