"""Identity: accounts, registrations, login and sessions (API.md "Identity")."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from enum import Enum
from typing import Annotated, Optional, Union

import strawberry

from persistence import models
from resolvers import identity
from resolvers.context import Context
from resolvers.errors import UserFailure, UserFailures
from schema.errors import UserError, user_errors
from schema.fees import Membership, RegistrationKind


@strawberry.enum(description="管理者ID ADMIN · ユーザーID(署名者) SIGNER · サブID SUB · 商工会議所 CHAMBER_STAFF · NACCS 事業所/センター.")
class AccountKind(Enum):
    ADMIN = "ADMIN"  # 管理者ID
    SIGNER = "SIGNER"  # ユーザーID (署名者)
    SUB = "SUB"  # サブID (担当者)
    CHAMBER_STAFF = "CHAMBER_STAFF"  # 商工会議所
    NACCS_OFFICE = "NACCS_OFFICE"  # NACCS 利用者 (事業所)
    NACCS_CENTER = "NACCS_CENTER"  # NACCS センター (審査)


@strawberry.enum(description="CREATED 作成 · NOTIFIED 通知済 · ACTIVE 有効 · DELETED 削除.")
class AccountStatus(Enum):
    CREATED = "CREATED"
    NOTIFIED = "NOTIFIED"
    ACTIVE = "ACTIVE"
    DELETED = "DELETED"


# --------------------------------------------------------------------------- global ids


def to_global_id(type_name: str, pk: int) -> strawberry.ID:
    return strawberry.ID(base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("="))


def from_global_id(value: str) -> tuple[str, int] | None:
    try:
        padded = value + "=" * (-len(value) % 4)
        type_name, _, pk = base64.urlsafe_b64decode(padded.encode()).decode().partition(":")
        return type_name, int(pk)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


@strawberry.interface(description="Relay: an object with an opaque global id, fetchable by Query.node.")
class Node:
    id: strawberry.ID


# --------------------------------------------------------------------------- types


@strawberry.type(description="商工会議所: a chamber of commerce.")
class Chamber:
    code: str
    name: str

    @classmethod
    def of(cls, row: models.Chamber) -> "Chamber":
        return cls(code=row.code, name=row.name)


@strawberry.type(description="貿易登録: an applicant or agent registered with one chamber.")
class TradeRegistration(Node):
    number: str
    kind: RegistrationKind
    name: str
    _pk: strawberry.Private[int]
    _chamber_id: strawberry.Private[int]

    @classmethod
    def of(cls, row: models.TradeRegistration) -> "TradeRegistration":
        return cls(
            id=to_global_id("TradeRegistration", row.id), number=row.number, kind=RegistrationKind(row.kind),
            name=row.name, _pk=row.id, _chamber_id=row.chamber_id,
        )

    @strawberry.field(description="The membership in force now (its history decides prices).")
    async def membership(self, info: strawberry.Info[Context]) -> Membership:
        return Membership(await identity.membership_now(info.context, self._pk))

    @strawberry.field
    async def chamber(self, info: strawberry.Info[Context]) -> Chamber:
        return Chamber.of(await identity.chamber_of(info.context, self._chamber_id))


@strawberry.type(description="A login: admin, signer or sub-ID of a registration, chamber staff, or a NACCS account.")
class Account(Node):
    kind: AccountKind
    username: str
    name: str
    email: Optional[str]
    phone: Optional[str]
    status: AccountStatus
    notified_at: Optional[dt.datetime] = None
    activation_expires_at: Optional[dt.datetime] = None
    _registration_id: strawberry.Private[Optional[int]] = None
    _generated_by_id: strawberry.Private[Optional[int]] = None

    @classmethod
    def of(cls, row: models.Account) -> "Account":
        return cls(
            id=to_global_id("Account", row.id), kind=AccountKind(row.kind), username=row.username, name=row.name,
            email=row.email, phone=row.phone, status=AccountStatus(row.status),
            _registration_id=row.registration_id, _generated_by_id=row.generated_by_id,
        )

    @strawberry.field
    async def registration(self, info: strawberry.Info[Context]) -> Optional[TradeRegistration]:
        if self._registration_id is None:
            return None
        row = await identity.registration_of(info.context, self._registration_id)
        return TradeRegistration.of(row) if row else None

    @strawberry.field(description="For a sub-ID: the signer that generated it (and is responsible for it).")
    async def generated_by(self, info: strawberry.Info[Context]) -> Optional["Account"]:
        if self._generated_by_id is None:
            return None
        row = await identity.account_by_id(info.context, self._generated_by_id)
        return Account.of(row) if row else None


# --------------------------------------------------------------------------- inputs / payloads


@strawberry.input
class LoginInput:
    chamber_code: Optional[str] = strawberry.field(default=None, description="Required for eCO IDs; omitted for NACCS accounts.")
    username: str
    password: str


@strawberry.type
class LoginPayload:
    token: Optional[str] = strawberry.field(description="Send as `Authorization: Bearer <token>`; browsers also get an HttpOnly cookie.")
    account: Optional[Account]
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
    token: Optional[str] = strawberry.field(default=None, description="Every session ended; this is the new one's token.")


# --------------------------------------------------------------------------- root fields


async def _node(info: strawberry.Info[Context], id: strawberry.ID) -> Optional[Node]:
    decoded = from_global_id(id)
    who = await identity.viewer(info.context)
    if decoded is None or who is None:
        return None
    type_name, pk = decoded
    if type_name == "Account" and pk == who.account.id:  # more visibility arrives with sub-IDs
        return Account.of(who.account)
    if type_name == "TradeRegistration" and pk == who.account.registration_id:
        row = await identity.registration_of(info.context, pk)
        return TradeRegistration.of(row) if row else None
    return None


@strawberry.type
class IdentityQuery:
    @strawberry.field(description="The logged-in account; null when not logged in.")
    async def me(self, info: strawberry.Info[Context]) -> Optional[Account]:
        who = await identity.viewer(info.context)
        return Account.of(who.account) if who else None

    @strawberry.field(description="Relay: any object by its global id, when the viewer may see it.")
    async def node(self, info: strawberry.Info[Context], id: strawberry.ID) -> Optional[Node]:
        return await _node(info, id)


@strawberry.type
class IdentityMutation:
    @strawberry.mutation(description="Chamber code + ID + password → a session token.")
    async def login(self, info: strawberry.Info[Context], input: LoginInput) -> LoginPayload:
        try:
            result = await identity.login(info.context, input.chamber_code, input.username, input.password)
        except (UserFailure, UserFailures) as failure:
            return LoginPayload(token=None, account=None, errors=user_errors(failure, info.context.language))
        return LoginPayload(token=result.token, account=Account.of(result.account), errors=[])

    @strawberry.mutation(description="End this session (or every session of the account).")
    async def logout(self, info: strawberry.Info[Context], input: LogoutInput) -> LogoutPayload:
        await identity.logout(info.context, all_sessions=input.all_sessions)
        return LogoutPayload(errors=[])

    @strawberry.mutation(description="Change the viewer's own password; all sessions end, a new one begins.")
    async def change_password(self, info: strawberry.Info[Context], input: ChangePasswordInput) -> ChangePasswordPayload:
        try:
            token = await identity.change_password(info.context, input.current_password, input.new_password)
        except (UserFailure, UserFailures) as failure:
            return ChangePasswordPayload(errors=user_errors(failure, info.context.language))
        return ChangePasswordPayload(errors=[], token=token)


IDENTITY_TYPES = [Account, TradeRegistration]
