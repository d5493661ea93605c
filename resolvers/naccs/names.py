"""The kinds and states of NACCS applications, reissue reasons and notice categories."""

from __future__ import annotations

from enum import StrEnum


class NaccsApplicationKind(StrEnum):
    USER_CODE_ADDITION = "USER_CODE_ADDITION"  # 利用申込(変更申込): 利用者コードの追加
    CERTIFICATE_REISSUE = "CERTIFICATE_REISSUE"  # 電子証明書の再発行申込


class NaccsApplicationState(StrEnum):
    SUBMITTED = "SUBMITTED"  # 受付
    CLARIFICATION_REQUESTED = "CLARIFICATION_REQUESTED"  # 確認依頼中
    APPROVED = "APPROVED"  # 確認完了
    COMPLETED = "COMPLETED"  # 完了 (a reissue done by the job)
    WITHDRAWN = "WITHDRAWN"  # 取下げ


# waiting for the NACCS center (its queue), and what the office may still withdraw
IN_REVIEW_STATES = (NaccsApplicationState.SUBMITTED, NaccsApplicationState.CLARIFICATION_REQUESTED)


class ReissueReason(StrEnum):
    EXPIRED = "EXPIRED"  # 有効期限切れ
    TERMINAL_REPLACEMENT = "TERMINAL_REPLACEMENT"  # 端末の入替
    OTHER = "OTHER"  # その他


class ProcessingMethod(StrEnum):
    """処理方式 of a user code; a netNACCS user ID has an alphabetic identification number."""

    NET_NACCS = "netNACCS"
    NACCS = "NACCS"


class NoticeCategory(StrEnum):
    """The categories of an office's 新着情報 (stored as shown)."""

    APPLICATION = "利用申込"
    SYSTEM_SETTINGS = "システム設定"
    FEES = "利用料金"
    CERTIFICATE = "証明書発行"
