"""Domain failures, raised by use cases and mapped to GraphQL once, at the edge.

* ``UserFailure`` — bad input or a business rule: becomes a ``UserError`` in the payload
  (HTTP 200, nothing written). Its ``code`` is an ``ErrorCode``.
* ``Unauthenticated`` / ``Forbidden`` — top-level GraphQL errors with
  ``extensions.code`` UNAUTHENTICATED / FORBIDDEN.
"""

from __future__ import annotations

from enum import StrEnum

from graphql import GraphQLError

from resolvers.core.messages import Words, in_language
from rules.limits import LimitOutOfRange


class ErrorCode(StrEnum):
    """Why a mutation did nothing (docs/api.md lists them; schema/errors.py exposes this
    class to GraphQL as ``ErrorCode``). Each member carries its message in Japanese and
    English, beside it; ``{placeholders}`` are filled from ``UserFailure.params``."""

    ja: str
    en: str

    def __new__(cls, code: str, ja: str, en: str) -> ErrorCode:
        member = str.__new__(cls, code)
        member._value_ = code
        member.ja = ja
        member.en = en
        return member

    INVALID = "INVALID", "{label}の値が正しくありません。", "{label}: the value is not valid."
    REQUIRED = "REQUIRED", "{label}を入力してください。", "{label} is required; enter a value."
    NOT_FOUND = (
        "NOT_FOUND",
        "対象が見つかりません。IDを確認してください(削除されたか、参照する権限がない可能性があります)。",
        "Not found: check the ID (it may have been deleted, or you may not be allowed to see it).",
    )
    INVALID_STATE = (
        "INVALID_STATE",
        "現在の状態({state})ではこの操作はできません。最新の内容を確認してください。",
        "Not possible in the current state ({state}); reload it and check.",
    )
    INSUFFICIENT_COUPONS = (
        "INSUFFICIENT_COUPONS",
        "クーポン残数が不足しています。クーポンを購入するか、クレジットカード払いにしてください。",
        "Not enough coupons; buy coupons or pay by card.",
    )
    PURCHASE_IN_PROGRESS = (
        "PURCHASE_IN_PROGRESS",
        "手続中のクーポン購入があります。入金確認または取消の後に購入してください。",
        "Another coupon purchase of this registration is in progress; wait for it to be paid or cancel it.",
    )
    PRODUCT_NOT_OFFERED = (
        "PRODUCT_NOT_OFFERED",
        "この商品は現在の会員区分では購入できません。料金表(feeSchedule)の商品から選んでください。",
        "This product is not offered for the registration's membership; choose one listed in feeSchedule.",
    )
    METHOD_NOT_ALLOWED = (
        "METHOD_NOT_ALLOWED",
        "この決済方法はこの貿易登録では利用できません。別の決済方法を選んでください。",
        "This payment method is not available for the registration; choose another method.",
    )
    EMAIL_DOMAIN_MISMATCH = (
        "EMAIL_DOMAIN_MISMATCH",
        "送信先メールアドレスは、署名者または通知先の連絡担当者のメールアドレスと同じドメインにしてください。",
        "The address must be in the domain of the signer's or the target's contact person's e-mail.",
    )
    EMAIL_LOCKED = (
        "EMAIL_LOCKED",
        "通知後はメールアドレスを変更できません。通知済みのアドレスのままにしてください。",
        "The e-mail address cannot be changed after notification; keep the notified address.",
    )
    TARGET_NOT_ELIGIBLE = (
        "TARGET_NOT_ELIGIBLE",
        "通知先は自社、または同じ商工会議所に登録された代行業者の貿易登録番号にしてください。",
        "The target must be your own registration or an agent registered with the same chamber.",
    )
    TOKEN_EXPIRED = (
        "TOKEN_EXPIRED",
        "有効化URLの有効期限(72時間)が切れています。署名者に再通知を依頼してください。",
        "This activation link has expired (72 hours). Ask the signer to notify you again.",
    )
    TOKEN_INVALID = (
        "TOKEN_INVALID",
        "有効化URLが正しくないか、既に使用されています。最新の通知メールのURLを使ってください。",
        "This activation link is not valid or was already used; use the link in the latest notice mail.",
    )
    INVALID_CREDENTIALS = (
        "INVALID_CREDENTIALS",
        "商工会議所コード、IDまたはパスワードが正しくありません。",
        "The chamber code, ID or password is not correct.",
    )
    SIGNER_LIMIT = (
        "SIGNER_LIMIT",
        "署名者は1つの貿易登録につき{limit}名までです。超える場合は理由を入力してください。",
        "A registration has at most {limit} signers; give a reason to register more.",
    )
    SESSION_EXPIRED = (
        "SESSION_EXPIRED",
        "決済の有効期限が切れました。もう一度決済してください。",
        "The payment session expired; start the payment again.",
    )
    NOT_BUSINESS_DAY = (
        "NOT_BUSINESS_DAY",
        "{date}は営業日ではありません({reason})。{next}以降の営業日を指定してください。",
        "{date} is not a business day ({reason}); choose {next} or a later business day.",
    )
    DATE_TOO_EARLY = (
        "DATE_TOO_EARLY",
        "{date}は指定できません。{earliest}以降の営業日を指定してください。",
        "{date} is too early; choose {earliest} or a later business day.",
    )
    PASSWORD_TOO_WEAK = (
        "PASSWORD_TOO_WEAK",
        "パスワードは半角英数記号{min}〜{max}文字で、英字と数字を含み、IDを含まないものにしてください。",
        "Passwords must be {min}–{max} half-width characters with letters and digits, and must not contain the ID.",
    )
    TOO_MANY_ATTEMPTS = (
        "TOO_MANY_ATTEMPTS",
        "ログインの失敗が続いたため、しばらくログインできません。{minutes}分後に再度お試しください。",
        "Too many failed logins. Try again in {minutes} minutes.",
    )
    PAYMENT_DECLINED = (
        "PAYMENT_DECLINED",
        "カード決済が承認されませんでした。別のカードでお試しください。",
        "The card payment was declined; try another card.",
    )
    IDEMPOTENCY_KEY_REUSED = (
        "IDEMPOTENCY_KEY_REUSED",
        "この冪等キーは別の内容の依頼で使用済みです。新しいキーを指定してください。",
        "This idempotency key was already used with a different request; use a new key.",
    )
    TOO_MANY_REQUESTS = (
        "TOO_MANY_REQUESTS",
        "試行回数が多すぎます。{seconds}秒後に再度お試しください。",
        "Too many attempts. Try again in {seconds} seconds.",
    )
    TOO_MANY_ITEMS = (
        "TOO_MANY_ITEMS",
        "{label}は{limit}件までです。件数を減らしてください。",
        "{label}: at most {limit} items; send fewer.",
    )
    TOO_LONG = (
        "TOO_LONG",
        "{label}は{limit}文字以内で入力してください。",
        "{label} must be at most {limit} characters; shorten it.",
    )
    RULES_OUT_OF_RANGE = (
        "RULES_OUT_OF_RANGE",
        "規則({file} 第{version}版 {row}行目の{limit})の値が上限を超えているため、この操作はできません。商工会議所が規則を訂正するまでお待ちください。",
        "The rules in force hold a value outside its bound ({file} version {version} row {row}, {limit}); "
        "this is not possible until the chamber corrects them.",
    )

    def message(self, language: str, params: dict[str, object] | None = None) -> str:
        """The message in ``language`` ("en", else Japanese), its placeholders filled from
        ``params`` (a ``Words`` parameter in the same language: labels, state names); a
        template whose placeholder is not given stays as written."""
        template = self.en if language == "en" else self.ja
        try:
            return template.format(**in_language(params or {}, language))
        except (KeyError, IndexError):
            return template


class UserFailure(Exception):
    """A domain failure for the input at ``field`` (a path such as ``["input", "email"]``);
    ``params`` fill the message's placeholders (``label``, ``limit``, ``state``, …); a label
    or a state is a ``resolvers.core.messages.Words``, so each language reads its own."""

    def __init__(self, code: ErrorCode, field: list[str] | None = None, **params: object) -> None:
        # the code's plain text names the same member (callers not yet on the enum pass one)
        self.code = code if isinstance(code, ErrorCode) else ErrorCode[code]
        self.field = field
        self.params = params
        self.words: Words | None = None  # a use case's own wording for the code (see ``worded``)
        super().__init__(f"{self.code} at {'.'.join(field or [])}")

    @classmethod
    def worded(cls, code: ErrorCode, field: list[str] | None, words: Words) -> UserFailure:
        """``code`` (what clients match) with a message of the use case's own, where the
        code's shared one would not fit (activateSubAccount's form has no chamber code)."""
        failure = cls(code, field)
        failure.words = words
        return failure

    def message(self, language: str) -> str:
        if self.words is not None:
            return self.words.in_(language)
        return self.code.message(language, self.params)


class UserFailures(Exception):
    """Several field failures at once (one UserError per bad field)."""

    def __init__(self, failures: list[UserFailure]) -> None:
        self.failures = failures
        super().__init__("; ".join(str(f) for f in failures))


class Unauthenticated(GraphQLError):
    """Raised as both languages; the schema answers in the request's (`localised`)."""

    words = Words("ログインしてください(セッションが切れた場合は、もう一度ログインしてください)。",
                  "Not logged in (or the session has ended): log in, then send the token.")

    def __init__(self) -> None:
        super().__init__(f"{self.words.ja} / {self.words.en}", extensions={"code": "UNAUTHENTICATED"})


class Forbidden(GraphQLError):
    """Raised as both languages; the schema answers in the request's (`localised`).
    ``words``: a reason more precise than the kind of ID (e.g. "an API key cannot …")."""

    words = Words("この操作の権限がありません(ご利用のIDの種類では行えない操作です)。",
                  "Not allowed: this kind of ID may not do this (see docs/api.md, who may do what).")

    def __init__(self, words: Words | None = None) -> None:
        if words is not None:
            self.words = words
        super().__init__(f"{self.words.ja} / {self.words.en}", extensions={"code": "FORBIDDEN"})


class TooManyRequests(GraphQLError):
    """A limit on the credential itself (an API key's requests per minute): a top-level error
    whatever the operation, since the request as a whole is refused, with the seconds to wait
    in the message and in ``extensions.retryAfter``."""

    def __init__(self, retry_after: int) -> None:
        code = ErrorCode.TOO_MANY_REQUESTS
        self.words = Words(code.message("ja", {"seconds": retry_after}), code.message("en", {"seconds": retry_after}))
        self.retry_after = retry_after
        super().__init__(f"{self.words.ja} / {self.words.en}",
                         extensions={"code": code.value, "retryAfter": retry_after})


def localised(error: Unauthenticated | Forbidden | TooManyRequests, language: str) -> str:
    return error.words.in_(language)


def rules_out_of_range(bad: LimitOutOfRange) -> UserFailure:
    """A limit in force that breaks its bound (rules/limits.py checks at use): the request is
    refused naming the row, not answered with an internal error."""
    return UserFailure(ErrorCode.RULES_OUT_OF_RANGE, None, file=bad.row.file, version=bad.row.version,
                       row=bad.row.row, limit=bad.name)


def domain_failure(exc: BaseException | None) -> UserFailure | UserFailures | None:
    """``exc`` as the domain failure the edge answers with, or None when it is none."""
    if isinstance(exc, (UserFailure, UserFailures)):
        return exc
    if isinstance(exc, LimitOutOfRange):
        return rules_out_of_range(exc)
    return None
