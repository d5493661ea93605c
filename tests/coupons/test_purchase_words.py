"""The words of a coupon order's mails live in rules/mail_templates.yaml; what the buyer reads
is the same text as before they moved there."""

from __future__ import annotations

import datetime as dt

from persistence.models import CouponPurchase, TradeRegistration, VirtualAccount
from resolvers.coupons import messages as words
from resolvers.coupons.names import CouponMail, DepositOutcome
from resolvers.coupons.purchases import LineInput, _order_mail
from rules import fees, mail
from rules.policy import load_policy
from tests.conftest import RULES_DIR


def test_the_order_mail_names_the_order_the_lines_and_the_account_to_pay_into() -> None:
    policy = load_policy(RULES_DIR)
    products = {p.code: p for p in fees.coupon_products(policy, dt.date(2026, 4, 1), "MEMBER")}
    purchase = CouponPurchase(order_number="20260401270100000200001", amount=71390)
    registration = TradeRegistration(name="加古川ツァイス株式会社")
    account = VirtualAccount(bank_name="サンドボックス銀行", bank_code="0310", branch_name="アジサイ", branch_code="502",
                             account_number="1234567", holder="ｼﾖｳｺｳｶｲｷﾞｼﾖ ｸ-ﾎﾟﾝ", valid_until=dt.date(2026, 4, 15))
    priced = [(LineInput("PACK30", 2), products["PACK30"]), (LineInput("SINGLE", 1), products["SINGLE"])]

    order = _order_mail(policy, dt.date(2026, 4, 1), purchase, registration, account, priced)
    assert order.subject == "【貿易関係証明発給システム】クーポン購入のお知らせ（お振込のご案内）"
    assert order.body == (
        "加古川ツァイス株式会社 様\n\nクーポンのご注文を承りました。下記口座へお振込みください。\n\n"
        "注文番号: 20260401270100000200001\n購入内容:\n"
        "  クーポン 30枚綴り 35,090円 × 2\n  クーポン 1枚 1,210円 × 1\nお振込金額: 71,390円\n\n"
        "振込先銀行: サンドボックス銀行 (0310)\n支店: アジサイ (502)\n"
        "口座種別: 普通\n口座番号: 1234567\n名義: ｼﾖｳｺｳｶｲｷﾞｼﾖ ｸ-ﾎﾟﾝ\n"
        "振込口座有効期限: 2026年04月15日\n\n"
        "※振込手数料はご購入者の負担となります。入金額が購入額と異なる場合の返金は、振込手数料等の諸経費を除いた金額となります。\n"
    )


def test_the_card_issue_mail_names_the_payment() -> None:
    values = {"order_number": "N1", "amount": "36,300", "payment_number": "P1", "coupons": 30}
    assert mail.render(load_policy(RULES_DIR), dt.date(2026, 4, 1), "coupon.issued_by_card", values).body == (
        "注文番号 N1 のクレジットカード決済 (36,300円, 決済番号 P1) を確認し、クーポン 30 枚を発行しました。\n")


def test_every_deposit_owed_back_has_a_reason_and_the_mails_keep_their_kinds() -> None:
    assert set(words.REFUND_REASONS) == {DepositOutcome.REFUNDED, DepositOutcome.SHORT, DepositOutcome.ISSUED_OVER}
    assert (CouponMail.ORDER, CouponMail.ISSUED) == ("coupon.order", "coupon.issued")
