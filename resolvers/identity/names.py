"""The states and kinds of identity: accounts, registrations, membership, sessions.

StrEnums: a member equals its text, so database values (plain strings, CHECKed in
persistence/models.py) compare equal to members; schema/enums.py exposes the ones the API
shows, under the same names."""

from __future__ import annotations

from enum import StrEnum


class AccountKind(StrEnum):
    ADMIN = "ADMIN"  # 管理者ID
    SIGNER = "SIGNER"  # ユーザーID (署名者)
    SUB = "SUB"  # サブID (担当者)
    CHAMBER_STAFF = "CHAMBER_STAFF"  # 商工会議所
    NACCS_OFFICE = "NACCS_OFFICE"  # NACCS 利用者 (事業所)
    NACCS_CENTER = "NACCS_CENTER"  # NACCS センター (審査)


# who logs in with a chamber code (eCO), and who without (NACCS)
ECO_ACCOUNT_KINDS = (AccountKind.ADMIN, AccountKind.SIGNER, AccountKind.SUB, AccountKind.CHAMBER_STAFF)
NACCS_ACCOUNT_KINDS = (AccountKind.NACCS_OFFICE, AccountKind.NACCS_CENTER)


class AccountStatus(StrEnum):
    CREATED = "CREATED"  # 作成 (a sub-ID not yet notified)
    NOTIFIED = "NOTIFIED"  # 通知済
    ACTIVE = "ACTIVE"  # 有効
    DELETED = "DELETED"  # 削除


class RegistrationKind(StrEnum):
    APPLICANT = "APPLICANT"  # 申請者
    AGENT = "AGENT"  # 代行業者


class Membership(StrEnum):
    """The status at a moment decides prices (registration_memberships keeps the history)."""

    MEMBER = "MEMBER"  # 会員
    NON_MEMBER = "NON_MEMBER"  # 非会員


class SessionEnd(StrEnum):
    """Why a login session ended (sessions.end_reason)."""

    LOGOUT = "logout"
    ROTATED = "rotated"  # a new login from the same browser
    PASSWORD_CHANGED = "password_changed"  # by the account itself
    PASSWORD_RESET = "password_reset"  # by an admin or the generating signer
    DELETED = "deleted"  # the sub-ID was deleted
    WITHDRAWN = "withdrawn"  # the registration withdrew (退会)
