"""The states and types of certificate applications (発給申請); schema/enums.py shows them."""

from __future__ import annotations

from enum import StrEnum


class ApplicationState(StrEnum):
    DRAFT = "DRAFT"  # 下書き
    SUBMITTED = "SUBMITTED"  # 発給申請
    ON_HOLD = "ON_HOLD"  # 保留 (sent back for defects)
    APPROVED = "APPROVED"  # 承認 (a card fee awaits payment)
    ISSUED = "ISSUED"  # 交付済 (printable)
    WITHDRAWN = "WITHDRAWN"  # 取下げ


# the applicant may still change these; a submitted one holds its coupon
EDITABLE_STATES = (ApplicationState.DRAFT, ApplicationState.ON_HOLD)
OPEN_STATES = (ApplicationState.DRAFT, ApplicationState.SUBMITTED, ApplicationState.ON_HOLD)
# 退会 withdraws these: the open ones and an approved one whose card fee was never paid
# (APPROVED is only ever a card application awaiting payment; paying it issues it)
ENDED_BY_WITHDRAWAL = (*OPEN_STATES, ApplicationState.APPROVED)


class CertificateType(StrEnum):
    ORIGIN_JAPANESE = "ORIGIN_JAPANESE"  # 原産地証明書(日本産)
    ORIGIN_FOREIGN = "ORIGIN_FOREIGN"  # 原産地証明書(外国産)
    INVOICE = "INVOICE"  # インボイス証明
    SIGNATURE = "SIGNATURE"  # サイン証明


# certificates of origin: goods lines, consignee and transport are part of the certificate
ORIGIN_TYPES = (CertificateType.ORIGIN_JAPANESE, CertificateType.ORIGIN_FOREIGN)


class FeePayment(StrEnum):
    """How the fee is paid; fixed at submission."""

    CARD = "CARD"  # クレジットカード
    COUPON = "COUPON"  # クーポン
