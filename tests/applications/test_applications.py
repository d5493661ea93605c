"""Applications over HTTP on SQLite and PostgreSQL: the lifecycle with coupons, the fee fixed
at submission, races, visibility and rights, bad input, the SQL statements of a page."""

from __future__ import annotations

import asyncio
import threading

from sqlalchemy import event, func, select

from persistence.models import Application as ApplicationRow
from persistence.models import CouponEntry, OutboxMail
from schema.identity import from_global_id
from tests.conftest import tokyo
from tests.identity.test_identity_sessions import bearer, login
from tests.identity.test_subaccounts import ACTIVATE, SUB_PASSWORD, as_user, create_sub, mailed_token, notify

FIELDS = """id receiptNumber state type fee feePayment feeRule holdReason certificateNumber accessCode
  destinationCountry invoiceNumber registration { number } agent { number } createdBy { username } signer { username }
  goods { description quantity hsCode originCountry }"""
CREATE = f"""mutation($input: CreateApplicationInput!) {{ createApplication(input: $input) {{
  application {{ {FIELDS} }} errors {{ code field message }} }} }}"""
ACTION = """mutation($id: ID!) {{ {name}(input: {{applicationId: $id}}) {{ application {{ {fields} }} errors {{ code field }} }} }}"""
HOLD = f"""mutation($id: ID!, $r: String!) {{ holdApplication(input: {{applicationId: $id, reason: $r}}) {{
  application {{ {FIELDS} }} errors {{ code field }} }} }}"""
ADJUST = """mutation($n: String!, $c: Int!) { adjustCoupons(input: {registrationNumber: $n, coupons: $c, reason: "テスト用"}) { errors { code } } }"""
BALANCE = "{ couponAccount { balance } }"
LIST = """query($f: ApplicationFilter, $first: Int) { applications(filter: $f, first: $first) { totalCount
  edges { node { receiptNumber state invoiceNumber } } } }"""

ORIGIN = {
    "type": "ORIGIN_JAPANESE", "destinationCountry": "us", "goodsCategory": "一般機械", "invoiceNumber": "INV-2026-001",
    "exporterName": "加古川自然食品株式会社", "feePayment": "COUPON", "consignee": "ACME Trading Inc., Seattle",
    "transport": "By sea, from Kobe to Seattle", "personInCharge": "ツァイス",
    "goods": [{"description": "Green tea (matcha), 100 g tins", "quantity": "1,200 tins", "hsCode": "0902.10",
               "originCountry": "JP"}],
}


def create(live, headers, **changes):
    result = live.graphql(CREATE, {"input": {**ORIGIN, **changes}}, headers=headers).json()["data"]["createApplication"]
    return result


def act(live, headers, name, app_id):
    body = live.graphql(ACTION.format(name=name, fields=FIELDS), {"id": app_id}, headers=headers).json()
    return body["data"][name] if body.get("data") else body


def balance(live, headers) -> int:
    return live.graphql(BALANCE, headers=headers).json()["data"]["couponAccount"]["balance"]


def give_coupons(live, n, registration="2701000002"):
    staff = as_user(live, "staff-2701")
    assert live.graphql(ADJUST, {"n": registration, "c": n}, headers=staff).json()["data"]["adjustCoupons"]["errors"] == []


async def test_the_coupon_lifecycle_moves_the_balance_and_issues_on_approval(live, migrated):
    _target, db = migrated
    signer, staff = as_user(live, "signer-2701000002"), as_user(live, "staff-2701")
    give_coupons(live, 2)
    created = create(live, signer)
    assert created["errors"] == [], created
    app = created["application"]
    assert (app["state"], app["receiptNumber"], app["fee"], app["destinationCountry"]) == ("DRAFT", None, None, "US")
    assert app["goods"] == [{"description": "Green tea (matcha), 100 g tins", "quantity": "1,200 tins", "hsCode": "090210",
                             "originCountry": "JP"}]
    assert app["signer"]["username"] == "signer-2701000002" and app["agent"] is None

    submitted = act(live, signer, "submitApplication", app["id"])["application"]
    assert submitted["state"] == "SUBMITTED" and submitted["receiptNumber"] == "000000001"
    assert (submitted["fee"], submitted["feeRule"]) == (1210, "application_fees@2026-04-01")
    assert balance(live, signer) == 1
    held = live.graphql(HOLD, {"id": app["id"], "r": "インボイスと品名が一致しません"}, headers=staff).json()["data"]["holdApplication"]
    assert held["application"]["state"] == "ON_HOLD" and held["application"]["holdReason"] == "インボイスと品名が一致しません"
    assert balance(live, signer) == 2
    # the applicant corrects and resubmits: same receipt number, same fee, one coupon again
    update = """mutation($id: ID!) { updateApplication(input: {applicationId: $id, goods: [{description: "Green tea (matcha), 100 g tins, 12 cases",
      quantity: "1,200 tins", hsCode: "0902.10", originCountry: "JP"}]}) { application { state } errors { code } } }"""
    assert live.graphql(update, {"id": app["id"]}, headers=signer).json()["data"]["updateApplication"]["errors"] == []
    again = act(live, signer, "submitApplication", app["id"])["application"]
    assert (again["state"], again["receiptNumber"], again["fee"]) == ("SUBMITTED", "000000001", 1210)
    assert balance(live, signer) == 1
    issued = act(live, staff, "approveApplication", app["id"])["application"]
    assert issued["state"] == "ISSUED" and issued["certificateNumber"].startswith("270126") and len(issued["accessCode"]) == 19  # 16 + 3 hyphens
    assert balance(live, signer) == 1
    assert act(live, staff, "approveApplication", app["id"])["errors"][0]["code"] == "INVALID_STATE"
    assert act(live, signer, "withdrawApplication", app["id"])["errors"][0]["code"] == "INVALID_STATE"

    async with db.read() as session:
        kinds = [e.kind for e in (await session.scalars(select(CouponEntry).order_by(CouponEntry.id))).all()]
        mails = [m.kind for m in (await session.scalars(select(OutboxMail).order_by(OutboxMail.id))).all()]
    assert kinds == ["CHAMBER_OPERATION", "USE", "RETURN", "USE"]
    assert mails == ["application.hold", "application.issued"]
    assert (await live.run_job("mail-delivery")).status == "ok"
    hold_mail = [m for m in live.smtp.messages if "保留" in m["Subject"]][-1]
    assert hold_mail["To"] == "zeiss@kakogawa.example" and "インボイスと品名が一致しません" in hold_mail.get_content()


async def test_the_fee_is_fixed_by_the_rules_of_the_submission_date(live):
    signer, staff = as_user(live, "signer-2701000002"), as_user(live, "staff-2701")
    give_coupons(live, 3)
    app = create(live, signer)["application"]
    live.clock.set(tokyo(2026, 3, 31, 23, 59))
    assert act(live, signer, "submitApplication", app["id"])["application"]["fee"] == 1100
    live.clock.set(tokyo(2026, 4, 2, 9, 0))
    signer = as_user(live, "signer-2701000002")
    staff = as_user(live, "staff-2701")
    live.graphql(HOLD, {"id": app["id"], "r": "修正願います"}, headers=staff)
    assert act(live, signer, "submitApplication", app["id"])["application"]["fee"] == 1100
    approved = act(live, staff, "approveApplication", app["id"])["application"]
    assert (approved["state"], approved["fee"], approved["feeRule"]) == ("ISSUED", 1100, "application_fees@2022-04-01")
    later = create(live, signer)["application"]
    assert act(live, signer, "submitApplication", later["id"])["application"]["fee"] == 1210


async def test_without_coupons_a_submission_changes_nothing(live, migrated):
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    app = create(live, signer)["application"]
    failed = act(live, signer, "submitApplication", app["id"])
    assert failed == {"application": None, "errors": [{"code": "INSUFFICIENT_COUPONS", "field": ["input", "applicationId"]}]}
    async with db.read() as session:
        row = await session.get(ApplicationRow, from_global_id(app["id"])[1])
        assert (row.state, row.receipt_number, row.fee, row.coupon_uses) == ("DRAFT", None, None, 0)
        assert await session.scalar(select(func.count()).select_from(CouponEntry)) == 0
    give_coupons(live, 1)
    assert act(live, signer, "submitApplication", app["id"])["application"]["receiptNumber"] == "000000001"


async def test_twenty_concurrent_submissions_against_five_coupons(live, migrated):
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    give_coupons(live, 5)
    ids = [create(live, signer, invoiceNumber=f"INV-{i:03d}")["application"]["id"] for i in range(20)]
    barrier = threading.Barrier(20)
    results: list = []

    def submit(app_id):
        barrier.wait()
        results.append(act(live, signer, "submitApplication", app_id))

    threads = [threading.Thread(target=submit, args=(i,)) for i in ids]
    await asyncio.to_thread(lambda: ([t.start() for t in threads], [t.join() for t in threads]))
    ok = [r for r in results if r["errors"] == []]
    assert len(ok) == 5 and len(results) == 20
    assert all(r["errors"][0]["code"] == "INSUFFICIENT_COUPONS" for r in results if r["errors"])
    assert sorted(r["application"]["receiptNumber"] for r in ok) == [f"{i:09d}" for i in range(1, 6)]
    assert balance(live, signer) == 0
    async with db.read() as session:
        from resolvers.coupons.ledger import audit_ledger

        assert await audit_ledger(session) == []
        assert await session.scalar(select(func.count()).select_from(ApplicationRow).where(ApplicationRow.state == "SUBMITTED")) == 5


async def test_a_double_click_submits_and_consumes_once(live):
    signer = as_user(live, "signer-2701000002")
    give_coupons(live, 3)
    app_id = create(live, signer)["application"]["id"]
    barrier = threading.Barrier(6)
    results: list = []

    def submit():
        barrier.wait()
        results.append(act(live, signer, "submitApplication", app_id))

    threads = [threading.Thread(target=submit) for _ in range(6)]
    await asyncio.to_thread(lambda: ([t.start() for t in threads], [t.join() for t in threads]))
    assert sum(1 for r in results if r["errors"] == []) == 1
    assert all(r["errors"][0]["code"] == "INVALID_STATE" for r in results if r["errors"])
    assert balance(live, signer) == 2


async def test_withdrawal_returns_the_coupon_and_a_withdrawn_application_cannot_be_approved(live):
    signer, staff = as_user(live, "signer-2701000002"), as_user(live, "staff-2701")
    give_coupons(live, 1)
    app_id = create(live, signer)["application"]["id"]
    act(live, signer, "submitApplication", app_id)
    assert balance(live, signer) == 0
    assert act(live, signer, "withdrawApplication", app_id)["application"]["state"] == "WITHDRAWN"
    assert balance(live, signer) == 1
    assert act(live, staff, "approveApplication", app_id)["errors"][0]["code"] == "INVALID_STATE"
    assert act(live, signer, "submitApplication", app_id)["errors"][0]["code"] == "INVALID_STATE"


def test_card_applications_wait_for_payment_after_approval(live):
    signer, staff = as_user(live, "signer-2701000002"), as_user(live, "staff-2701")
    app_id = create(live, signer, feePayment="CARD")["application"]["id"]
    assert act(live, signer, "submitApplication", app_id)["application"]["fee"] == 1210
    approved = act(live, staff, "approveApplication", app_id)["application"]
    assert (approved["state"], approved["certificateNumber"], approved["accessCode"]) == ("APPROVED", None, None)
    change = """mutation($id: ID!) { updateApplication(input: {applicationId: $id, feePayment: COUPON}) { errors { code field } } }"""
    assert live.graphql(change, {"id": app_id}, headers=signer).json()["data"]["updateApplication"]["errors"][0]["code"] == "INVALID_STATE"


def test_bad_input_gets_one_error_per_field_and_writes_nothing(live):
    signer = as_user(live, "signer-2701000002")
    bad = create(live, signer, destinationCountry="XX", invoiceNumber="  ", goods=[
        {"description": "", "quantity": "1", "hsCode": "09-02", "originCountry": "ZZ"}])
    assert bad["application"] is None
    assert sorted(tuple(e["field"]) for e in bad["errors"]) == [
        ("input", "destinationCountry"), ("input", "goods", "0", "description"), ("input", "goods", "0", "hsCode"),
        ("input", "goods", "0", "originCountry"), ("input", "invoiceNumber")]
    assert live.graphql(LIST, headers=signer).json()["data"]["applications"]["totalCount"] == 0
    # completeness is checked at submission: a certificate of origin needs goods, consignee, transport
    incomplete = create(live, signer, goods=None, consignee=None)["application"]
    give_coupons(live, 1)
    failed = act(live, signer, "submitApplication", incomplete["id"])
    assert sorted(tuple(e["field"]) for e in failed["errors"]) == [("input", "consignee"), ("input", "goods")]
    assert balance(live, signer) == 1
    signature = create(live, signer, type="SIGNATURE", goods=None)["application"]
    assert act(live, signer, "submitApplication", signature["id"])["errors"][0]["field"] == ["input", "signatureKind"]


async def test_visibility_signers_sub_ids_agents_and_staff(live):
    signer, signer2 = as_user(live, "signer-2701000002"), as_user(live, "signer2-2701000002")
    other, staff, admin = as_user(live, "signer-2701000003"), as_user(live, "staff-2701"), as_user(live, "admin-2701000002")
    sub = create_sub(live, signer)
    notify(live, signer, sub["id"], target="2701000004", email="taro@osaka-fwd.example")
    token, _ = await mailed_token(live)
    live.graphql(ACTIVATE, {"t": token, "u": sub["username"], "p": SUB_PASSWORD})
    agent_sub = bearer(login(live, sub["username"], SUB_PASSWORD)["token"])

    mine = create(live, signer, invoiceNumber="BY-SIGNER")["application"]
    by_agent = create(live, agent_sub, invoiceNumber="BY-AGENT")["application"]
    assert by_agent["agent"]["number"] == "2701000004" and by_agent["registration"]["number"] == "2701000002"
    assert by_agent["signer"]["username"] == "signer-2701000002" and by_agent["createdBy"]["username"] == sub["username"]

    def seen(headers):
        edges = live.graphql(LIST, headers=headers).json()["data"]["applications"]["edges"]
        return sorted(e["node"]["invoiceNumber"] for e in edges)

    assert seen(signer) == seen(signer2) == ["BY-AGENT", "BY-SIGNER"]
    assert seen(agent_sub) == ["BY-AGENT"]
    assert seen(other) == []
    assert seen(staff) == ["BY-AGENT", "BY-SIGNER"]
    assert act(live, other, "submitApplication", mine["id"])["errors"][0]["code"] == "NOT_FOUND"
    assert act(live, agent_sub, "submitApplication", mine["id"])["errors"][0]["code"] == "NOT_FOUND"
    node = "query($id: ID!) { node(id: $id) { ... on Application { invoiceNumber } } }"
    assert live.graphql(node, {"id": mine["id"]}, headers=other).json()["data"]["node"] is None
    assert live.graphql(node, {"id": mine["id"]}, headers=signer2).json()["data"]["node"] == {"invoiceNumber": "BY-SIGNER"}
    # the applicant's admin does not file; staff review but do not file; a signer does not review
    assert live.graphql(CREATE, {"input": ORIGIN}, headers=admin).json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert live.graphql(CREATE, {"input": ORIGIN}, headers=staff).json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert act(live, signer, "approveApplication", mine["id"])["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_copy_makes_a_new_draft_with_the_same_content(live):
    signer = as_user(live, "signer-2701000002")
    give_coupons(live, 1)
    app = create(live, signer)["application"]
    act(live, signer, "submitApplication", app["id"])
    copy = act(live, signer, "copyApplication", app["id"])["application"]
    assert copy["id"] != app["id"] and (copy["state"], copy["receiptNumber"], copy["fee"]) == ("DRAFT", None, None)
    assert copy["goods"] == app["goods"] and copy["invoiceNumber"] == app["invoiceNumber"]


def test_filters(live):
    signer = as_user(live, "signer-2701000002")
    give_coupons(live, 2)
    first = create(live, signer, invoiceNumber="A-1", personInCharge="山田")["application"]
    create(live, signer, invoiceNumber="B-2", type="INVOICE", goods=None)
    act(live, signer, "submitApplication", first["id"])

    def invoices(f):
        body = live.graphql(LIST, {"f": f}, headers=signer).json()["data"]["applications"]
        return sorted(e["node"]["invoiceNumber"] for e in body["edges"])

    assert invoices({"type": "INVOICE"}) == ["B-2"]
    assert invoices({"state": "SUBMITTED"}) == ["A-1"]
    assert invoices({"receiptNumber": "000000001"}) == ["A-1"]
    assert invoices({"invoiceNumber": "B-2"}) == ["B-2"]
    assert invoices({"personInCharge": "山田"}) == ["A-1"]
    assert invoices({"submittedFrom": "2026-04-01", "submittedTo": "2026-04-01"}) == ["A-1"]
    assert invoices({"submittedFrom": "2026-04-02"}) == []


def test_a_page_of_twenty_costs_the_same_statements_as_a_page_of_five(live):
    """The connection resolver loads the page and every relation it shows — registration
    (membership, chamber), agent, createdBy (with its registration), signer — in a fixed
    number of set-based statements: the number does not grow with the page."""
    signer = as_user(live, "signer-2701000002")
    for i in range(20):
        create(live, signer, invoiceNumber=f"P-{i:02d}", goods=None)
    page = """query($first: Int) { applications(first: $first) { totalCount edges { node { receiptNumber
      registration { number name membership chamber { name } } agent { number } createdBy { username registration { number } }
      signer { name } } } } }"""
    engine = live.services.db.engine.sync_engine
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        if not statement.startswith(("BEGIN", "ROLLBACK", "COMMIT")):  # the unit of work's own
            words = statement.replace("(", " ").split()
            tables = sorted({words[i + 1] for i, word in enumerate(words[:-1]) if word in ("FROM", "JOIN")})
            statements.append(f"{words[0]} {'+'.join(tables)}")

    def run(first):
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            body = live.graphql(page, {"first": first}, headers=signer).json()
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert len(body["data"]["applications"]["edges"]) == first
        node = body["data"]["applications"]["edges"][0]["node"]
        assert node["registration"]["chamber"]["name"] and node["registration"]["membership"] == "MEMBER"
        assert node["createdBy"]["registration"]["number"] == node["registration"]["number"] == "2701000002"
        return len(statements)

    five, twenty = run(5), run(20)
    # the viewer (session, account, registration, chamber, membership); the page with its
    # total; the creators and signers with their registrations, chambers and memberships —
    # which are also the applicants' here, so none is read again
    assert sorted(statements) == sorted([
        "SELECT accounts+chambers+registration_memberships+sessions+trade_registrations",
        "SELECT applications",
        "SELECT accounts+chambers+registration_memberships+trade_registrations",
    ]), statements
    assert twenty == five == 3


