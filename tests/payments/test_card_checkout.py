"""Card payment of approved applications, statements and certificates anyone can verify —
over HTTP with the sandbox gateway, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import threading

import httpx

from resolvers.applications.certificates import canonical, verify_signature
from tests.applications.test_applications import act, create
from tests.conftest import pdf_text, tokyo
from tests.identity.test_subaccounts import as_user
from tests.payments.test_card_payments import GOOD, pay

CART = """{ cardCart { total payable { id invoiceNumber } items { id invoiceNumber } lastCheckout { status failure amount } } }"""
ADD = """mutation($ids: [ID!]!) { addToCardCart(input: {applicationIds: $ids}) { cart { total items { id } } errors { code field } } }"""
CHECKOUT = """mutation($key: String) { startCardCheckout(input: {idempotencyKey: $key}) { paymentUrl expiresAt amount errors { code } } }"""
STATEMENTS = """query($m: String!) { cardStatements(month: $m) { statementNumber amount tax paidAt pdfUrl
  application { receiptNumber certificateNumber } } }"""
APP = """query($id: ID!) { node(id: $id) { ... on Application { state certificateNumber accessCode certificatePdfUrl
  printUntil contentHash } } }"""
VERIFY = """query($n: String!, $c: String!) { verifyCertificate(number: $n, accessCode: $c) { valid type issueDate
  exporterName chamber { code name } contentHash keyId } }"""


def approved_card_application(live, signer, staff, **changes):
    app = create(live, signer, feePayment="CARD", **changes)["application"]
    assert act(live, signer, "submitApplication", app["id"])["errors"] == []
    assert act(live, staff, "approveApplication", app["id"])["application"]["state"] == "APPROVED"
    return app["id"]


def cart(live, headers):
    return live.graphql(CART, headers=headers).json()["data"]["cardCart"]


def checkout(live, headers, key=None):
    return live.graphql(CHECKOUT, {"key": key}, headers=headers).json()["data"]["startCardCheckout"]


def node(live, headers, app_id):
    return live.graphql(APP, {"id": app_id}, headers=headers).json()["data"]["node"]


async def test_pay_approved_applications_by_card_then_statements_and_a_verifiable_certificate(live, tmp_path):
    signer, staff = as_user(live, "signer-2701000002"), as_user(live, "staff-2701")
    first = approved_card_application(live, signer, staff, invoiceNumber="CARD-1")
    second = approved_card_application(live, signer, staff, invoiceNumber="CARD-2", type="INVOICE", goods=None)
    assert sorted(a["invoiceNumber"] for a in cart(live, signer)["payable"]) == ["CARD-1", "CARD-2"]
    added = live.graphql(ADD, {"ids": [first, second]}, headers=signer).json()["data"]["addToCardCart"]
    assert added["errors"] == [] and added["cart"]["total"] == 2420
    started = checkout(live, signer, key="pay-2026-04-01")
    assert started["errors"] == [] and started["amount"] == 2420 and started["expiresAt"] == "2026-04-01T10:05:00+09:00"
    assert checkout(live, signer, key="pay-2026-04-01")["paymentUrl"] == started["paymentUrl"]  # idempotent
    after = cart(live, signer)
    assert after["payable"] == [] and after["items"] == [] and after["lastCheckout"]["status"] == "OPEN"
    page = httpx.get(started["paymentUrl"])
    assert "2申請分手数料" in page.text and "2,420円" in page.text
    assert pay(started["paymentUrl"], GOOD).status_code == 200

    issued = node(live, signer, first)
    assert issued["state"] == "ISSUED" and issued["printUntil"] == "2026-04-15"
    assert node(live, signer, second)["state"] == "ISSUED"

    # statements: one per application, only for the account that paid
    statements = live.graphql(STATEMENTS, {"m": "2026-04"}, headers=signer).json()["data"]["cardStatements"]
    assert sorted((s["amount"], s["tax"]) for s in statements) == [(1210, 110), (1210, 110)]
    assert live.graphql(STATEMENTS, {"m": "2026-04"}, headers=as_user(live, "signer2-2701000002")).json()["data"]["cardStatements"] == []
    assert live.graphql(STATEMENTS, {"m": "2026-05"}, headers=signer).json()["data"]["cardStatements"] == []
    url = next(s["pdfUrl"] for s in statements if s["application"]["certificateNumber"] == issued["certificateNumber"])
    assert httpx.get(url, headers=as_user(live, "signer2-2701000002")).status_code == 404
    text = pdf_text(tmp_path, httpx.get(url, headers=signer).content, "statement.pdf")
    for expected in ("利用明細", "日本商工会議所", "T5010005003975", "大阪商工会議所", "原産地証明書(日本産)",
                     issued["certificateNumber"], "CARD-1", "1,210円", "110円", "一括"):
        assert expected in text, expected

    # the certificate: PDF with the content, a QR code to the public page, and a signature anyone can check
    response = httpx.get(issued["certificatePdfUrl"], headers=signer)
    assert response.status_code == 200
    text = pdf_text(tmp_path, response.content, "certificate.pdf")
    for expected in ("CERTIFICATE OF ORIGIN", issued["certificateNumber"], "ACME Trading", "Green tea", "090210",
                     issued["contentHash"]):
        assert expected in text, expected
    verified = live.graphql(VERIFY, {"n": issued["certificateNumber"], "c": issued["accessCode"]}).json()["data"]["verifyCertificate"]
    assert verified["valid"] and verified["type"] == "ORIGIN_JAPANESE" and verified["issueDate"] == "2026-04-01"
    assert verified["exporterName"] == "加古川自然食品株式会社" and verified["chamber"] == {"code": "2701", "name": "大阪商工会議所"}
    assert verified["contentHash"] == issued["contentHash"]
    wrong = live.graphql(VERIFY, {"n": issued["certificateNumber"], "c": "00000000"}).json()["data"]["verifyCertificate"]
    assert wrong == {"valid": False, "type": None, "issueDate": None, "exporterName": None, "chamber": None,
                     "contentHash": None, "keyId": None}
    public_page = httpx.get(f"{live.url}/verify", params={"number": issued["certificateNumber"], "code": issued["accessCode"]})
    assert 'data-valid="true"' in public_page.text and "加古川自然食品株式会社" in public_page.text
    assert 'data-valid="false"' in httpx.get(f"{live.url}/verify", params={"number": "x", "code": "y"}).text

    # offline: the signed JSON in the PDF's metadata checks against the published key; a change does not
    keys = httpx.get(f"{live.url}/.well-known/tradecert-keys.json").json()["keys"]
    assert keys[0]["kid"] == verified["keyId"] and keys[0]["crv"] == "Ed25519"
    path = tmp_path / "certificate.pdf"
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True).stdout
    content = json.loads(info.split("Keywords:", 1)[1].split("\n", 1)[0].strip())
    signature = info.split("sig:", 1)[1].split()[0]
    assert verify_signature(keys[0]["x"], canonical(content), signature)
    content["goods"][0]["quantity"] = "9,999 tins"
    assert not verify_signature(keys[0]["x"], canonical(content), signature)

    # the print window from the rules: through 14 days after the day of issue
    live.clock.set(tokyo(2026, 4, 15, 23, 0))
    signer = as_user(live, "signer-2701000002")
    assert node(live, signer, first)["certificatePdfUrl"] is not None
    live.clock.set(tokyo(2026, 4, 16, 0, 1))
    signer = as_user(live, "signer-2701000002")
    assert node(live, signer, first)["certificatePdfUrl"] is None
    assert httpx.get(issued["certificatePdfUrl"], headers=signer).status_code == 404


async def test_a_six_minute_old_checkout_cannot_be_paid_and_the_applications_come_back(live):
    signer, staff = as_user(live, "signer-2701000002"), as_user(live, "staff-2701")
    app = approved_card_application(live, signer, staff)
    live.graphql(ADD, {"ids": [app]}, headers=signer)
    started = checkout(live, signer)
    live.clock.advance(dt.timedelta(minutes=6))
    late = pay(started["paymentUrl"], GOOD)
    assert late.status_code == 410 and 'data-code="SESSION_EXPIRED"' in late.text
    assert (await live.run_job("card-session-expiry")).message == "1 card session(s) expired"
    signer = as_user(live, "signer-2701000002")
    now = cart(live, signer)
    assert [a["id"] for a in now["payable"]] == [app] and now["lastCheckout"]["failure"] == "SESSION_EXPIRED"
    assert node(live, signer, app)["state"] == "APPROVED"


async def test_two_signers_racing_to_pay_the_same_application_hold_it_once(live):
    staff = as_user(live, "staff-2701")
    signers = [as_user(live, "signer-2701000002"), as_user(live, "signer2-2701000002")]
    app = approved_card_application(live, signers[0], staff)
    for headers in signers:
        assert live.graphql(ADD, {"ids": [app]}, headers=headers).json()["data"]["addToCardCart"]["errors"] == []
    barrier = threading.Barrier(2)
    results: list = []

    def go(headers):
        barrier.wait()
        results.append(checkout(live, headers))

    threads = [threading.Thread(target=go, args=(h,)) for h in signers]
    await asyncio.to_thread(lambda: ([t.start() for t in threads], [t.join() for t in threads]))
    assert sum(1 for r in results if r["errors"] == []) == 1
    assert all(r["errors"][0]["code"] in ("INVALID_STATE", "REQUIRED") for r in results if r["errors"])


def test_only_payable_applications_enter_the_cart(live):
    signer, staff, other = as_user(live, "signer-2701000002"), as_user(live, "staff-2701"), as_user(live, "signer-2701000003")
    draft = create(live, signer, feePayment="CARD")["application"]["id"]
    app = approved_card_application(live, signer, staff)
    bad = live.graphql(ADD, {"ids": [app, draft, "bm9wZQ=="]}, headers=signer).json()["data"]["addToCardCart"]
    assert [e["field"] for e in bad["errors"]] == [["input", "applicationIds", "1"], ["input", "applicationIds", "2"]]
    assert cart(live, signer)["items"] == []
    assert live.graphql(ADD, {"ids": [app]}, headers=other).json()["data"]["addToCardCart"]["errors"][0]["code"] == "NOT_FOUND"
    assert checkout(live, signer)["errors"][0]["code"] == "REQUIRED"


async def test_who_may_pay_is_what_permissions_yaml_says_for_the_cart_and_the_checkout_alike(live):
    """permissions.yaml alone decides who pays which application: a signer allowed to pay
    only the applications it created sees, chooses and checks out exactly those."""
    staff = as_user(live, "staff-2701")
    signer, colleague = as_user(live, "signer-2701000002"), as_user(live, "signer2-2701000002")
    mine = approved_card_application(live, signer, staff, invoiceNumber="MINE")
    theirs = approved_card_application(live, colleague, staff, invoiceNumber="THEIRS")

    path = live.rules_dir / "permissions.yaml"
    rule = "      - {action: application.pay, kind: SIGNER, registration: APPLICANT, relation: %s}"
    original = path.read_text(encoding="utf-8")
    assert rule % "own_registration" in original
    path.write_text(original.replace(rule % "own_registration", rule % "created_by_me"), encoding="utf-8")
    assert (await asyncio.to_thread(live.services.rules.reload)).changed

    assert [a["invoiceNumber"] for a in cart(live, signer)["payable"]] == ["MINE"]
    refused = live.graphql(ADD, {"ids": [theirs]}, headers=signer).json()["data"]["addToCardCart"]
    assert refused["errors"] == [{"code": "NOT_FOUND", "field": ["input", "applicationIds", "0"]}]
    assert live.graphql(ADD, {"ids": [mine]}, headers=signer).json()["data"]["addToCardCart"]["errors"] == []
    started = checkout(live, signer)
    assert started["errors"] == [] and started["amount"] == 1210
    admin = live.graphql(CHECKOUT, {"key": None}, headers=as_user(live, "admin-2701000002")).json()
    assert admin["errors"][0]["extensions"]["code"] == "FORBIDDEN"  # no relation lets an admin pay
