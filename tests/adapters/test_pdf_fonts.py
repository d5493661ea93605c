"""Every PDF the project serves carries its fonts: each font subset-embedded, so a machine
without Japanese fonts shows the certificate, the 振込依頼書, the 利用明細 and the NACCS
documents as written — fetched over HTTP on SQLite and PostgreSQL, read by poppler."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import pdf_text, tokyo
from tests.coupons.test_purchases import ORDER, START
from tests.identity.test_subaccounts import as_user
from tests.naccs.test_naccs import APPROVE, center, office, reissue, submit_codes
from tests.payments.test_card_checkout import ADD, APP, STATEMENTS, approved_card_application, checkout
from tests.payments.test_card_payments import GOOD, PURCHASE, card_start, pay

NACCS_URLS = """query($id: ID!) { node(id: $id) { ... on NaccsApplication { formPdfUrl approvalNoticePdfUrl } } }"""


def fonts_of(path: Path) -> list[dict[str, str]]:
    """The rows of `pdffonts`: name, type, emb and sub of every font the PDF uses."""
    if not shutil.which("pdffonts"):
        if os.environ.get("CI"):
            pytest.fail("pdffonts (poppler-utils) is not installed; .ci/run installs it")
        pytest.skip("pdffonts (poppler-utils) is not installed: apt-get install poppler-utils")
    out = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines()[2:]:  # a header line and a rule
        *name_and_type, _encoding, emb, sub, _uni, _object, _generation = line.split()
        rows.append({"name": name_and_type[0], "type": " ".join(name_and_type[1:]), "emb": emb, "sub": sub})
    return rows


def documents(live) -> dict[str, tuple[bytes, tuple[str, ...]]]:
    """Each kind of PDF, fetched as its reader would, with words it must show."""
    signer, staff = as_user(live, "signer-2701000002"), as_user(live, "staff-2701")
    got: dict[str, tuple[bytes, tuple[str, ...]]] = {}

    def fetch(url: str, headers: dict[str, str]) -> bytes:
        response = httpx.get(url, headers=headers)
        assert response.status_code == 200 and response.headers["content-type"] == "application/pdf", url
        return response.content

    # 利用明細 of a card coupon order
    purchase = card_start(live, signer)
    payment_url = live.graphql(PURCHASE, {"id": purchase["id"]}, headers=signer).json()["data"]["node"]["paymentUrl"]
    assert pay(payment_url, GOOD).status_code == 200
    node = live.graphql(PURCHASE, {"id": purchase["id"]}, headers=signer).json()["data"]["node"]
    got["coupon-card-statement"] = (fetch(node["cardStatementPdfUrl"], signer),
                                    ("クレジットカード決済 利用明細", "クーポン購入", "大阪商工会議所"))

    # 振込依頼書 of a bank-transfer coupon order (after the card order: one open order at a time)
    transfer = live.graphql(START.replace("orderNumber status", "orderNumber status transferRequestPdfUrl"),
                            {"lines": ORDER, "method": "BANK_TRANSFER"}, headers=signer).json()["data"]["startCouponPurchase"]
    got["transfer-request"] = (fetch(transfer["purchase"]["transferRequestPdfUrl"], signer),
                               ("振込依頼書", "振込先銀行名", "日本商工会議所", transfer["purchase"]["orderNumber"]))

    # a card-paid application: its 利用明細 and its certificate
    app_id = approved_card_application(live, signer, staff, invoiceNumber="FONT-1")
    assert live.graphql(ADD, {"ids": [app_id]}, headers=signer).json()["data"]["addToCardCart"]["errors"] == []
    assert pay(checkout(live, signer)["paymentUrl"], GOOD).status_code == 200
    issued = live.graphql(APP, {"id": app_id}, headers=signer).json()["data"]["node"]
    assert issued["state"] == "ISSUED", issued
    statements = live.graphql(STATEMENTS, {"m": "2026-04"}, headers=signer).json()["data"]["cardStatements"]
    url = next(s["pdfUrl"] for s in statements if s["application"]["certificateNumber"] == issued["certificateNumber"])
    got["application-card-statement"] = (fetch(url, signer), ("利用明細", "原産地証明書(日本産)", "証明書番号"))
    got["certificate"] = (fetch(issued["certificatePdfUrl"], signer),
                          ("CERTIFICATE OF ORIGIN", "原産地証明書", "輸出者", "荷受人", "大阪商工会議所",
                           issued["certificateNumber"]))

    # NACCS: the form of each kind, and the approval notice from the start date on
    live.clock.set(tokyo(2026, 11, 20, 10, 0))
    naccs = submit_codes(live, office(live))["application"]
    live.graphql(APPROVE, {"id": naccs["id"], "d": "2026-12-08"}, headers=center(live))
    again = reissue(live, office(live), "2026-11-24")
    assert again["errors"] == [], again
    urls = live.graphql(NACCS_URLS, {"id": again["application"]["id"]}, headers=office(live)).json()["data"]["node"]
    got["naccs-reissue-form"] = (fetch(urls["formPdfUrl"], office(live)), ("NACCS 申込書", "対象論理端末", "再発行理由"))
    live.clock.set(tokyo(2026, 12, 8, 9, 0))
    urls = live.graphql(NACCS_URLS, {"id": naccs["id"]}, headers=office(live)).json()["data"]["node"]
    got["naccs-form"] = (fetch(urls["formPdfUrl"], office(live)), ("NACCS 申込書", "申込種別", "通関業務の拡大のため"))
    got["naccs-approval-notice"] = (fetch(urls["approvalNoticePdfUrl"], office(live)),
                                    ("利用申込確認完了のお知らせ", "利用開始日", "パスワード"))
    return got


def test_every_pdf_embeds_a_subset_of_each_font_it_uses_and_keeps_its_text(live, tmp_path):
    problems = []
    for kind, (content, words) in documents(live).items():
        text = pdf_text(tmp_path, content, f"{kind}.pdf")
        fonts = fonts_of(tmp_path / f"{kind}.pdf")
        assert fonts, kind
        # emb: the glyphs travel with the document (no standard-14 Helvetica, no CID font the viewer must have);
        # sub: only the glyphs the document uses
        problems += [(kind, font) for font in fonts if (font["emb"], font["sub"]) != ("yes", "yes")]
        problems += [(kind, word) for word in words if word not in text]
    assert problems == []
