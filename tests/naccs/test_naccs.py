"""NACCS support system over HTTP on SQLite and PostgreSQL: user-code additions with the
password viewing window on the business calendar, certificate reissues processed by the
job, clarification and withdrawal, field-by-field contact checks, the demo office."""

from __future__ import annotations

from sqlalchemy import func, select

from persistence.models import NaccsApplication, NaccsUserId, OutboxMail
from tests.conftest import tokyo
from tests.identity.test_identity_sessions import bearer, login

OFFICE = """{ naccsOffice { name userIds { userId userCode identificationNumber netNaccs industries }
  terminals { name area equipment issuedOn expiresOn renewableFrom } notices { category message }
  applications { receiptNumber kind state } } }"""
APP_FIELDS = """id receiptNumber kind state desiredDate startDate clarification passwordViewableUntil terminalNames
  idNotice { userId userCode identificationNumber industries password }"""
SUBMIT_CODES = f"""mutation($input: SubmitUserCodeApplicationInput!) {{ submitUserCodeApplication(input: $input) {{
  application {{ {APP_FIELDS} }} errors {{ code field message }} }} }}"""
SUBMIT_REISSUE = f"""mutation($input: SubmitCertificateReissueInput!) {{ submitCertificateReissue(input: $input) {{
  application {{ {APP_FIELDS} }} errors {{ code field message }} }} }}"""
APPROVE = f"""mutation($id: ID!, $d: Date!) {{ approveUserCodeApplication(input: {{applicationId: $id, startDate: $d}}) {{
  application {{ {APP_FIELDS} }} errors {{ code field }} }} }}"""
CLARIFY = """mutation($id: ID!, $m: String!) { requestClarification(input: {applicationId: $id, message: $m}) {
  application { state clarification } errors { code } } }"""
UPDATE = """mutation($id: ID!, $r: String) { updateNaccsApplication(input: {applicationId: $id, reason: $r}) {
  application { state reason } errors { code field } } }"""
WITHDRAW = """mutation($id: ID!) { withdrawNaccsApplication(input: {applicationId: $id}) { application { state } errors { code } } }"""
NODE = f"""query($id: ID!) {{ node(id: $id) {{ ... on NaccsApplication {{ {APP_FIELDS} }} }} }}"""

CONTACT = {"familyName": "通関", "givenName": "花子", "familyNameKana": "ツウカン", "givenNameKana": "ハナコ",
           "department": "業務部", "title": "課長", "phone": "0312345678", "fax": "0312345679",
           "email": "hanako@naccs-demo.example", "emailConfirmation": "hanako@naccs-demo.example"}
CODES = [{"category": "通関業務", "industries": ["通関業", "混載業"], "processingMethod": "netNACCS", "singleSignOn": False,
          "statisticsPaid": 1},
         {"category": "輸出入", "industries": ["輸出入者", "船会社"], "processingMethod": "netNACCS", "singleSignOn": True,
          "identificationCount": 1, "statisticsFree": 1}]


def office(live):
    return bearer(login(live, "naccs-demo", chamber=None)["token"])


def center(live):
    return bearer(login(live, "naccs-center", chamber=None)["token"])


def submit_codes(live, headers, desired="2026-12-08", codes=None, contact=None):
    variables = {"input": {"desiredStartDate": desired, "reason": "通関業務の拡大のため", "contact": contact or CONTACT,
                           "userCodes": codes if codes is not None else CODES}}
    return live.graphql(SUBMIT_CODES, variables, headers=headers).json()["data"]["submitUserCodeApplication"]


def reissue(live, headers, desired, terminals=("11110A",), contact=None):
    variables = {"input": {"contact": contact or CONTACT, "desiredDate": desired, "reason": "EXPIRED",
                           "terminalNames": list(terminals)}}
    return live.graphql(SUBMIT_REISSUE, variables, headers=headers).json()["data"]["submitCertificateReissue"]


def test_the_demo_office_is_seeded(live):
    data = live.graphql(OFFICE, headers=office(live)).json()["data"]["naccsOffice"]
    assert data["name"] == "―商事株式会社 ―事業所"
    assert data["userIds"] == [{"userId": "1ANACA0A", "userCode": "1ANAC", "identificationNumber": "A0A", "netNaccs": True,
                                "industries": ["通関業"]}]
    assert data["terminals"] == [
        {"name": "11110A", "area": "海上", "equipment": "netNACCS", "issuedOn": "2025-12-01", "expiresOn": "2026-11-30",
         "renewableFrom": "2026-11-02"},
        {"name": "11110B", "area": "海上", "equipment": "netNACCS", "issuedOn": "2025-12-01", "expiresOn": "2026-11-30",
         "renewableFrom": "2026-11-02"}]
    signer = bearer(login(live, "signer-2701000002")["token"])
    assert live.graphql(OFFICE, headers=signer).json()["data"]["naccsOffice"] is None


async def test_passwords_are_visible_through_the_second_business_day_after_the_start_and_then_destroyed(live, migrated):
    """The seed's example on 2026 dates: review ends Mon 11/30, start Tue 12/8 → visible
    through Thu 12/10, hidden from Fri 12/11."""
    _target, db = migrated
    live.clock.set(tokyo(2026, 11, 20, 10, 0))
    submitted = submit_codes(live, office(live))
    assert submitted["errors"] == [], submitted
    app = submitted["application"]
    assert (app["receiptNumber"], app["state"], app["idNotice"]) == ("1200001A", "SUBMITTED", [])
    async with db.read() as session:
        mails = (await session.scalars(select(OutboxMail.to_address).where(OutboxMail.kind.like("naccs.%")))).all()
    assert mails == ["hanako@naccs-demo.example"]  # contact and office manager are the same address here

    live.clock.set(tokyo(2026, 11, 30, 15, 0))  # Monday: the review ends
    approved = live.graphql(APPROVE, {"id": app["id"], "d": "2026-12-08"}, headers=center(live)).json()["data"]["approveUserCodeApplication"]
    assert approved["errors"] == [], approved
    result = approved["application"]
    assert (result["state"], result["startDate"], result["passwordViewableUntil"]) == ("APPROVED", "2026-12-08", "2026-12-10")
    notices = result["idNotice"]
    assert [(n["identificationNumber"], n["industries"]) for n in notices] == [
        ("A0A", ["通関業"]), ("A0B", ["混載業"]), ("A0A", ["輸出入者", "船会社"])]
    assert all(len(n["userCode"]) == 5 and n["userId"] == n["userCode"] + n["identificationNumber"] for n in notices)
    assert notices[0]["userCode"] == notices[1]["userCode"] != notices[2]["userCode"]
    passwords = [n["password"] for n in notices]
    assert all(p and len(p) == 12 for p in passwords)
    async with db.read() as session:
        stored = (await session.scalars(select(NaccsUserId.password_encrypted).where(NaccsUserId.application_id.is_not(None)))).all()
    assert all(p not in s for p in passwords for s in stored)  # encrypted at rest

    live.clock.set(tokyo(2026, 12, 10, 23, 59))
    assert [n["password"] for n in live.graphql(NODE, {"id": app["id"]}, headers=office(live)).json()["data"]["node"]["idNotice"]] == passwords
    live.clock.set(tokyo(2026, 12, 11, 0, 1))
    assert all(n["password"] is None for n in live.graphql(NODE, {"id": app["id"]}, headers=office(live)).json()["data"]["node"]["idNotice"])
    assert (await live.run_job("naccs-password-purge")).message == "3 password(s) destroyed"
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(NaccsUserId).where(NaccsUserId.password_encrypted.is_not(None))) == 0
    user_ids = live.graphql(OFFICE, headers=office(live)).json()["data"]["naccsOffice"]["userIds"]
    assert len(user_ids) == 4
    notices_shown = live.graphql(OFFICE, headers=office(live)).json()["data"]["naccsOffice"]["notices"]
    assert notices_shown[0]["category"] == "システム設定" and notices_shown[1]["category"] == "利用申込"


async def test_a_viewing_window_across_a_holiday_and_the_year_end(live):
    live.clock.set(tokyo(2026, 11, 18, 10, 0))
    app = submit_codes(live, office(live), desired="2026-11-20")["application"]
    approved = live.graphql(APPROVE, {"id": app["id"], "d": "2026-11-20"}, headers=center(live)).json()["data"]["approveUserCodeApplication"]
    assert approved["application"]["passwordViewableUntil"] == "2026-11-25"  # Mon 11/23 is 勤労感謝の日
    live.clock.set(tokyo(2026, 12, 21, 10, 0))
    app = submit_codes(live, office(live), desired="2026-12-25")["application"]
    approved = live.graphql(APPROVE, {"id": app["id"], "d": "2026-12-25"}, headers=center(live)).json()["data"]["approveUserCodeApplication"]
    assert approved["application"]["passwordViewableUntil"] == "2027-01-04"  # 12/29–1/3 closed
    weekend = live.graphql(APPROVE, {"id": app["id"], "d": "2026-12-26"}, headers=center(live)).json()["data"]["approveUserCodeApplication"]
    assert weekend["errors"][0]["code"] == "NOT_BUSINESS_DAY"


async def test_reissue_dates_are_business_days_from_the_next_business_day(live, migrated):
    _target, db = migrated
    live.clock.set(tokyo(2026, 11, 20, 10, 0))  # Friday
    headers = office(live)
    assert reissue(live, headers, "2026-11-21")["errors"] == [{"code": "NOT_BUSINESS_DAY", "field": ["input", "desiredDate"],
                                                               "message": reissue(live, headers, "2026-11-21")["errors"][0]["message"]}]
    assert reissue(live, headers, "2026-11-23")["errors"][0]["code"] == "NOT_BUSINESS_DAY"  # 勤労感謝の日
    assert reissue(live, headers, "2026-11-20")["errors"][0]["code"] == "DATE_TOO_EARLY"  # today
    assert reissue(live, headers, "2026-11-24", terminals=["11110Z"])["errors"][0]["field"] == ["input", "terminalNames", "0"]
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(NaccsApplication)) == 0
    ok = reissue(live, headers, "2026-11-24")
    assert ok["errors"] == [] and ok["application"]["terminalNames"] == ["11110A"]


async def test_the_job_renews_exactly_the_selected_terminals_on_the_desired_morning(live):
    live.clock.set(tokyo(2026, 11, 20, 10, 0))
    app = reissue(live, office(live), "2026-11-24")["application"]
    assert (await live.run_job("naccs-reissue")).message == "0 reissue(s) processed"
    live.clock.set(tokyo(2026, 11, 24, 7, 0))
    assert (await live.run_job("naccs-reissue")).message == "1 reissue(s) processed"
    assert (await live.run_job("naccs-reissue")).message == "0 reissue(s) processed"
    data = live.graphql(OFFICE, headers=office(live)).json()["data"]["naccsOffice"]
    terminals = {t["name"]: t for t in data["terminals"]}
    assert terminals["11110A"]["issuedOn"] == "2026-11-24" and terminals["11110A"]["expiresOn"] == "2027-11-23"
    assert terminals["11110A"]["renewableFrom"] == "2027-10-26"
    assert terminals["11110B"]["issuedOn"] == "2025-12-01"
    assert data["notices"][0]["category"] == "証明書発行" and "11110A" in data["notices"][0]["message"]
    assert live.graphql(NODE, {"id": app["id"]}, headers=office(live)).json()["data"]["node"]["state"] == "COMPLETED"
    assert (await live.run_job("mail-delivery")).status == "ok"
    subjects = [m["Subject"] for m in live.smtp.messages]
    assert any("受付完了" in s for s in subjects) and any("再発行完了" in s for s in subjects)


def test_clarification_correction_and_withdrawal(live):
    live.clock.set(tokyo(2026, 11, 20, 10, 0))
    headers, reviewer = office(live), center(live)
    app = submit_codes(live, headers)["application"]
    asked = live.graphql(CLARIFY, {"id": app["id"], "m": "業種の組合せを確認させてください"}, headers=reviewer).json()["data"]["requestClarification"]
    assert asked["application"] == {"state": "CLARIFICATION_REQUESTED", "clarification": "業種の組合せを確認させてください"}
    assert live.graphql(APPROVE, {"id": app["id"], "d": "2026-12-08"}, headers=reviewer).json()["data"]["approveUserCodeApplication"]["errors"][0]["code"] == "INVALID_STATE"
    fixed = live.graphql(UPDATE, {"id": app["id"], "r": "通関業務の拡大のため(修正)"}, headers=headers).json()["data"]["updateNaccsApplication"]
    assert fixed["application"] == {"state": "SUBMITTED", "reason": "通関業務の拡大のため(修正)"}
    assert live.graphql(UPDATE, {"id": app["id"], "r": "x"}, headers=headers).json()["data"]["updateNaccsApplication"]["errors"][0]["code"] == "INVALID_STATE"
    assert live.graphql(WITHDRAW, {"id": app["id"]}, headers=headers).json()["data"]["withdrawNaccsApplication"]["application"]["state"] == "WITHDRAWN"
    late = live.graphql(APPROVE, {"id": app["id"], "d": "2026-12-08"}, headers=reviewer).json()["data"]["approveUserCodeApplication"]
    assert late["errors"][0]["code"] == "INVALID_STATE"
    # only the center reviews; the office sees only its own
    forbidden = live.graphql(CLARIFY, {"id": app["id"], "m": "?"}, headers=headers).json()
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    staff = bearer(login(live, "staff-2701")["token"])
    assert live.graphql(APPROVE, {"id": app["id"], "d": "2026-12-08"}, headers=staff).json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert live.graphql(NODE, {"id": app["id"]}, headers=staff).json()["data"]["node"] is None


async def test_bad_contact_data_gets_one_error_per_field_and_writes_nothing(live, migrated):
    _target, db = migrated
    live.clock.set(tokyo(2026, 11, 20, 10, 0))
    bad = {"familyName": "Tsukan", "givenName": "ﾊﾅｺ", "familyNameKana": "つうかん", "givenNameKana": "ハナコ",
           "department": "Sales", "title": "課長", "phone": "03-1234-5678", "fax": "０３１２３４５６７８",
           "email": "hanako@naccs-demo.example", "emailConfirmation": "hanako@naccs-demo.exampl"}
    result = reissue(live, office(live), "2026-11-24", contact=bad)
    assert sorted(e["field"][-1] for e in result["errors"]) == [
        "department", "emailConfirmation", "familyName", "familyNameKana", "fax", "givenName", "phone"]
    assert all(e["code"] == "INVALID" for e in result["errors"])
    codes = submit_codes(live, office(live), codes=[
        {"category": "混載", "industries": ["混載業", "宇宙業"], "processingMethod": "netNACCS", "singleSignOn": False,
         "statisticsFree": 1}])
    assert sorted(tuple(e["field"]) for e in codes["errors"]) == [
        ("input", "userCodes", "0", "industries", "1"), ("input", "userCodes", "0", "statisticsFree")]
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(NaccsApplication)) == 0
        assert await session.scalar(select(func.count()).select_from(OutboxMail)) == 0


async def test_the_form_any_time_and_the_approval_notice_from_the_start_date(live, tmp_path):
    import httpx

    from tests.conftest import pdf_text

    live.clock.set(tokyo(2026, 11, 20, 10, 0))
    app = submit_codes(live, office(live))["application"]
    urls = """query($id: ID!) { node(id: $id) { ... on NaccsApplication { formPdfUrl approvalNoticePdfUrl
      idNotice { userId password } } } }"""
    node = live.graphql(urls, {"id": app["id"]}, headers=office(live)).json()["data"]["node"]
    assert node["approvalNoticePdfUrl"] is None
    form = httpx.get(node["formPdfUrl"], headers=office(live))
    assert form.status_code == 200 and "1200001A" in pdf_text(tmp_path, form.content, "form.pdf")
    assert httpx.get(node["formPdfUrl"], headers=bearer(login(live, "signer-2701000002")["token"])).status_code == 404
    live.graphql(APPROVE, {"id": app["id"], "d": "2026-12-08"}, headers=center(live))
    notice_url = node["formPdfUrl"].replace("form.pdf", "approval-notice.pdf")
    assert httpx.get(notice_url, headers=office(live)).status_code == 404  # before the start date
    live.clock.set(tokyo(2026, 12, 8, 9, 0))
    node = live.graphql(urls, {"id": app["id"]}, headers=office(live)).json()["data"]["node"]
    response = httpx.get(node["approvalNoticePdfUrl"], headers=office(live))
    assert response.status_code == 200
    text = pdf_text(tmp_path, response.content, "notice.pdf")
    assert "利用申込確認完了のお知らせ" in text and all(n["userId"] in text for n in node["idNotice"])
    assert not any(n["password"] in text for n in node["idNotice"])


QUEUE = """{ naccsReviewQueue { receiptNumber kind state } }"""


def test_reissues_need_no_approval_so_the_review_queue_shows_none(live):
    live.clock.set(tokyo(2026, 11, 20, 10, 0))
    headers, reviewer = office(live), center(live)
    codes = submit_codes(live, headers)["application"]
    again = reissue(live, headers, "2026-11-24")["application"]
    queue = live.graphql(QUEUE, headers=reviewer).json()["data"]["naccsReviewQueue"]
    assert queue == [{"receiptNumber": codes["receiptNumber"], "kind": "USER_CODE_ADDITION", "state": "SUBMITTED"}]
    # nor can the center hold one up with a question: the job completes it on the desired morning
    asked = live.graphql(CLARIFY, {"id": again["id"], "m": "?"}, headers=reviewer).json()["data"]["requestClarification"]
    assert asked["application"] is None and asked["errors"] == [{"code": "INVALID_STATE"}]
    assert live.graphql(NODE, {"id": again["id"]}, headers=headers).json()["data"]["node"]["state"] == "SUBMITTED"


TYPES = """query($name: String!) { __type(name: $name) { kind description enumValues { name } } }"""


def test_the_processing_method_is_an_enum_that_takes_what_clients_sent(live):
    method = live.graphql(TYPES, {"name": "NaccsProcessingMethod"}).json()["data"]["__type"]
    assert method["kind"] == "ENUM" and [v["name"] for v in method["enumValues"]] == ["netNACCS", "NACCS"]
    assert "処理方式" in method["description"]
    live.clock.set(tokyo(2026, 11, 20, 10, 0))
    sent = submit_codes(live, office(live), codes=[{**CODES[0], "processingMethod": "NACCS"}, CODES[1]])
    assert sent["errors"] == [], sent
    approved = live.graphql(APPROVE, {"id": sent["application"]["id"], "d": "2026-12-08"},
                            headers=center(live)).json()["data"]["approveUserCodeApplication"]["application"]
    numbers = {i["industries"][0]: i["identificationNumber"] for i in approved["idNotice"]}
    assert numbers["通関業"].isdigit() and not numbers["輸出入者"].isdigit()  # general NACCS numeric, netNACCS alphabetic
    unknown = live.graphql(SUBMIT_CODES, {"input": {
        "desiredStartDate": "2026-12-08", "reason": "r", "contact": CONTACT,
        "userCodes": [{**CODES[0], "processingMethod": "telex"}]}}, headers=office(live))
    assert unknown.status_code in (200, 400) and "NaccsProcessingMethod" in unknown.json()["errors"][0]["message"]


def test_the_user_code_input_documents_its_fields(live):
    fields = live.graphql("""{ __type(name: "UserCodeInput") { inputFields { name description } } }""").json()
    described = {f["name"]: f["description"] or "" for f in fields["data"]["__type"]["inputFields"]}
    assert "システム設定区分" in described["category"] and "処理方式" in described["processingMethod"]
