"""Hostile input at the HTTP and GraphQL edge (issue 10, items 12, 14, 15, 16), on SQLite and
PostgreSQL: NUL bytes and lone surrogates, undecodable or deeply nested bodies, ids and
cursors beyond the integer column, impossible months, unbounded lists and page sizes,
secrets in the access log, and field suggestions in production. Every answer is a UserError
or a 4xx JSON body with a code, never a 500 or INTERNAL_SERVER_ERROR, and nothing is written."""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
import pytest
from sqlalchemy import func, select

from persistence.models import Application as ApplicationRow
from persistence.models import NaccsApplication
from resolvers.core.clock import FixedClock
from tests.conftest import settings_for, start_server, tokyo
from tests.identity.test_identity_sessions import LOGIN, PASSWORD
from tests.identity.test_subaccounts import as_user
from tests.naccs.test_naccs import CODES, CONTACT, SUBMIT_CODES, SUBMIT_REISSUE, office

CREATE = """mutation($input: CreateApplicationInput!) { createApplication(input: $input) { application { id } errors { code field } } }"""
VERIFY = """query($n: String!, $c: String!) { verifyCertificate(number: $n, accessCode: $c) { valid } }"""
ORIGIN = {"type": "ORIGIN_JAPANESE", "destinationCountry": "US", "goodsCategory": "一般機械", "invoiceNumber": "INV-1",
          "exporterName": "加古川自然食品株式会社", "feePayment": "COUPON"}


def gid(type_name: str, pk) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("=")


def cursor(type_name: str, pk) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode()


def post_raw(live, body: bytes, headers: dict | None = None) -> httpx.Response:
    with live.client() as client:
        return client.post("/graphql", content=body, headers={"Content-Type": "application/json", **(headers or {})})


def refused(response: httpx.Response, code: str = "BAD_USER_INPUT") -> bool:
    """A 4xx answer with a JSON body whose first error carries ``code``."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json"), response.text[:300]
    return response.json()["errors"][0]["extensions"]["code"] == code


def top_level_code(body: dict) -> str:
    assert body.get("errors"), body
    return body["errors"][0]["extensions"]["code"]


# --------------------------------------------------------------------------- item 12: text


async def test_a_nul_byte_in_any_text_field_is_refused_and_nothing_is_written(live, migrated):
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    login = {"query": LOGIN, "variables": {"c": "2701", "u": "signer-2701000002\x00", "p": PASSWORD}}
    assert refused(post_raw(live, json.dumps(login).encode()))
    verify = {"query": VERIFY, "variables": {"n": "2701\x00", "c": "x"}}
    assert refused(post_raw(live, json.dumps(verify).encode()))
    create = {"query": CREATE, "variables": {"input": {**ORIGIN, "exporterName": "加古川\x00自然食品"}}}
    assert refused(post_raw(live, json.dumps(create).encode(), signer))
    # the same NUL written as a GraphQL escape in the document itself
    literal = r'mutation { login(input: {chamberCode: "2701", username: "signer\u0000", password: "x"}) { token } }'
    assert refused(post_raw(live, json.dumps({"query": literal}).encode()))
    braced = r'{ verifyCertificate(number: "\u{0}", accessCode: "x") { valid } }'
    assert refused(post_raw(live, json.dumps({"query": braced}).encode()))
    # and in a link's query string
    with live.client() as client:
        assert refused(client.get("/verify", params={"number": "270126000000001", "code": "ab\x00cd"}))
        assert refused(client.get("/activate?token=abc%00def"))
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(ApplicationRow)) == 0
    # an escaped backslash followed by "u0000" is plain text, not a NUL
    fine = r'{ verifyCertificate(number: "\\u0000", accessCode: "x") { valid } }'
    assert post_raw(live, json.dumps({"query": fine}).encode()).json() == {"data": {"verifyCertificate": {"valid": False}}}


async def test_a_lone_surrogate_is_refused_as_bad_user_input(live):
    body = json.dumps({"query": VERIFY, "variables": {"n": "\ud800", "c": "x"}}).encode()  # ensure_ascii: "\\ud800"
    assert refused(post_raw(live, body))
    create = json.dumps({"query": CREATE, "variables": {"input": {**ORIGIN, "exporterName": "\udfff"}}}).encode()
    assert refused(post_raw(live, create, as_user(live, "signer-2701000002")))
    # a surrogate *pair* is one character (😀) and welcome
    pair = json.dumps({"query": VERIFY, "variables": {"n": "😀", "c": "x"}}).encode()
    assert post_raw(live, pair).json() == {"data": {"verifyCertificate": {"valid": False}}}


@pytest.mark.parametrize("body", [
    pytest.param(b'{"query": "{ __typename }", "variables": {"a": "\xff\xfe"}}', id="invalid-utf8"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested-100000-array"),
    pytest.param(b'{"query": "{ __typename }", "variables": {"a": ' + b'{"b": ' * 100_000 + b"1" + b"}" * 100_001,
                 id="nested-100000-variables"),
    pytest.param(b'{"query": "{ __typename }", "variables": {"a": ' + b"9" * 5000 + b"}}", id="5000-digit-number"),
    pytest.param(b'{"query": "{ __typename }", "variables": {"a": ' + b"[" * 200 + b"]" * 200 + b"}}", id="nested-200"),
    pytest.param(b'{"query": ', id="truncated"),
    pytest.param(b'[{"query": "{ __typename }"}]', id="batch"),
    pytest.param(b'"just a string"', id="not-an-object"),
])
async def test_undecodable_or_deeply_nested_bodies_get_a_json_400(sqlite_server, body):
    response = post_raw(sqlite_server, body)
    assert refused(response, "BAD_REQUEST")
    assert "Traceback" not in response.text


# --------------------------------------------------------------------------- item 12: ids, cursors, months

HUGE = 10**30
NODE = "query($id: ID!) { node(id: $id) { id } }"
ACTIONS = {
    "submitApplication": ("applicationId", "Application"),
    "withdrawApplication": ("applicationId", "Application"),
    "copyApplication": ("applicationId", "Application"),
    "approveApplication": ("applicationId", "Application"),
    "cancelCouponPurchase": ("purchaseId", "CouponPurchase"),
    "checkPurchasePayment": ("purchaseId", "CouponPurchase"),
    "markRefundPaid": ("refundId", "Refund"),
    "deleteSubAccount": ("accountId", "Account"),
    "withdrawNaccsApplication": ("applicationId", "NaccsApplication"),
}


async def test_ids_and_cursors_beyond_the_integer_column_are_not_found_or_bad_input(live):
    signer, staff = as_user(live, "signer-2701000002"), as_user(live, "staff-2701")
    naccs = office(live)
    for pk in (HUGE, -1, 2**31, 2**63, 0):
        for type_name in ("Application", "Account", "TradeRegistration", "CouponPurchase", "Refund", "NaccsApplication"):
            body = live.graphql(NODE, {"id": gid(type_name, pk)}, headers=signer).json()
            assert body == {"data": {"node": None}}, (type_name, pk, body)
        for name, (field, type_name) in ACTIONS.items():
            headers = naccs if type_name == "NaccsApplication" else staff if name in (
                "approveApplication", "checkPurchasePayment", "markRefundPaid") else signer
            query = f"mutation($id: ID!) {{ {name}(input: {{{field}: $id}}) {{ errors {{ code field }} }} }}"
            body = live.graphql(query, {"id": gid(type_name, pk)}, headers=headers).json()
            assert body.get("data") and body["data"][name]["errors"][0]["code"] in ("NOT_FOUND", "FORBIDDEN"), (name, pk, body)
        cart = "mutation($ids: [ID!]!) { addToCardCart(input: {applicationIds: $ids}) { errors { code field } } }"
        body = live.graphql(cart, {"ids": [gid("Application", pk)]}, headers=signer).json()
        assert body["data"]["addToCardCart"]["errors"] == [{"code": "NOT_FOUND", "field": ["input", "applicationIds", "0"]}]
        update = "mutation($id: ID!) { updateApplication(input: {applicationId: $id, invoiceNumber: \"X\"}) { errors { code } } }"
        assert live.graphql(update, {"id": gid("Application", pk)}, headers=signer).json()["data"]["updateApplication"]["errors"][0]["code"] == "NOT_FOUND"
        with live.client(headers=signer) as client:
            for path in (f"/documents/purchases/{gid('CouponPurchase', pk)}/transfer-request.pdf",
                         f"/documents/applications/{gid('Application', pk)}/certificate.pdf",
                         f"/documents/naccs/{gid('NaccsApplication', pk)}/form.pdf"):
                response = client.get(path)
                assert response.status_code == 404 and refused(response, "NOT_FOUND"), (path, response.text[:200])
    pages = {
        "applications": ("{ applications(after: $after) { totalCount } }", "Application", signer),
        "history": ("{ couponAccount { history(after: $after) { totalCount } } }", "CouponEntry", signer),
        "purchases": ("{ couponAccount { purchases(after: $after) { totalCount } } }", "CouponPurchase", signer),
        "auditLog": ("{ auditLog(after: $after) { totalCount } }", "AuditEntry", staff),
    }
    for name, (selection, type_name, headers) in pages.items():
        query = "query($after: String) " + selection
        for after in (cursor(type_name, HUGE), cursor(type_name, -5), cursor(type_name, "x"), cursor("Other", 3), "%%%", "\u00e9"):
            body = live.graphql(query, {"after": after}, headers=headers).json()
            assert body.get("data") is None and top_level_code(body) == "BAD_USER_INPUT", (name, after, body)
            assert "after" in body["errors"][0]["message"]
        body = live.graphql(query, {"after": cursor(type_name, 2**31 - 1)}, headers=headers).json()
        assert "errors" not in body, (name, body)


async def test_an_impossible_month_is_a_bad_user_input(live):
    signer = as_user(live, "signer-2701000002")
    query = "query($m: String!) { cardStatements(month: $m) { amount } }"
    for month in ("9999-12", "0000-01", "2026-13", "2026-00", "2026-4", "２０２６-04", "2026-04-01", "", "x" * 10_000):
        body = live.graphql(query, {"m": month}, headers=signer).json()
        assert body.get("data") is None and top_level_code(body) == "BAD_USER_INPUT", (month, body)
        assert "YYYY-MM" in body["errors"][0]["message"]
    assert live.graphql(query, {"m": "2026-12"}, headers=signer).json() == {"data": {"cardStatements": []}}


async def test_graphql_validation_and_coercion_errors_say_what_is_wrong(live):
    signer = as_user(live, "signer-2701000002")
    huge_int = live.graphql("query($f: Int) { applications(first: $f) { totalCount } }", {"f": 10**30}, headers=signer).json()
    assert top_level_code(huge_int) == "BAD_USER_INPUT"
    syntax = live.graphql("{ applications(", headers=signer).json()
    assert top_level_code(syntax) == "GRAPHQL_PARSE_FAILED"
    unknown = live.graphql("{ nothingHere }", headers=signer).json()
    assert top_level_code(unknown) == "GRAPHQL_VALIDATION_FAILED"
    null = live.graphql("query($f: Int) { auditLog(first: $f) { totalCount } }", {"f": None}, headers=signer).json()
    assert top_level_code(null) == "BAD_USER_INPUT"


# --------------------------------------------------------------------------- item 15: bounds


async def test_first_outside_1_to_100_is_refused_with_the_range(live):
    signer, staff = as_user(live, "signer-2701000002"), as_user(live, "staff-2701")
    pages = [("{ applications(first: $first) { totalCount } }", signer),
             ("{ couponAccount { history(first: $first) { totalCount } } }", signer),
             ("{ couponAccount { purchases(first: $first) { totalCount } } }", signer),
             ("{ auditLog(first: $first) { totalCount } }", staff)]
    for selection, headers in pages:
        query = "query($first: Int) " + selection
        for first in (-1, 0, 101, 2**31 - 1):
            body = live.graphql(query, {"first": first}, headers=headers).json()
            assert body.get("data") is None and top_level_code(body) == "BAD_USER_INPUT", (selection, first, body)
            assert "1" in body["errors"][0]["message"] and "100" in body["errors"][0]["message"]
        for first in (1, 100, None) if "auditLog" not in selection else (1, 100):  # auditLog's first is Int! = 20
            assert "errors" not in live.graphql(query, {"first": first}, headers=headers).json(), (selection, first)


async def test_a_reissue_refuses_repeated_terminals_and_more_than_the_rules_allow(live, migrated):
    _target, db = migrated
    live.clock.set(tokyo(2026, 11, 20, 10, 0))
    headers = office(live)

    def reissue(terminals):
        variables = {"input": {"contact": CONTACT, "desiredDate": "2026-11-24", "reason": "EXPIRED", "terminalNames": terminals}}
        return live.graphql(SUBMIT_REISSUE, variables, headers=headers).json()["data"]["submitCertificateReissue"]

    many = reissue(["11110A"] * 1000)
    assert [(e["code"], e["field"]) for e in many["errors"]] == [("TOO_MANY_ITEMS", ["input", "terminalNames"])]
    assert "100" in many["errors"][0]["message"]
    twice = reissue(["11110A", "11110B", "11110A"])
    assert [(e["code"], e["field"]) for e in twice["errors"]] == [("INVALID", ["input", "terminalNames", "2"])]
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(NaccsApplication)) == 0
    assert reissue(["11110A", "11110B"])["errors"] == []


async def test_a_user_code_application_takes_at_most_the_rules_number_of_codes(live, migrated):
    _target, db = migrated
    headers = office(live)

    def submit(codes):
        variables = {"input": {"desiredStartDate": "2026-12-08", "reason": "通関業務の拡大のため", "contact": CONTACT,
                               "userCodes": codes}}
        return live.graphql(SUBMIT_CODES, variables, headers=headers).json()["data"]["submitUserCodeApplication"]

    for count in (1000, 21):
        body = submit([CODES[0]] * count)
        assert [(e["code"], e["field"]) for e in body["errors"]] == [("TOO_MANY_ITEMS", ["input", "userCodes"])], count
        assert "20" in body["errors"][0]["message"]
    industries = submit([{**CODES[0], "industries": ["通関業"] * 1000}])
    assert [(e["code"], e["field"]) for e in industries["errors"]] == [("TOO_MANY_ITEMS", ["input", "userCodes", "0", "industries"])]
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(NaccsApplication)) == 0
    assert submit([CODES[0]] * 20)["errors"] == []


async def test_every_other_list_input_is_bounded(live):
    signer, staff = as_user(live, "signer-2701000002"), as_user(live, "staff-2701")
    cart = "mutation($ids: [ID!]!) { addToCardCart(input: {applicationIds: $ids}) { errors { code field message } } }"
    body = live.graphql(cart, {"ids": [gid("Application", i) for i in range(1, 1002)]}, headers=signer).json()
    assert [(e["code"], e["field"]) for e in body["data"]["addToCardCart"]["errors"]] == [("TOO_MANY_ITEMS", ["input", "applicationIds"])]
    remove = cart.replace("addToCardCart", "removeFromCardCart")
    body = live.graphql(remove, {"ids": [gid("Application", i) for i in range(1, 1002)]}, headers=signer).json()
    assert body["data"]["removeFromCardCart"]["errors"][0]["code"] == "TOO_MANY_ITEMS"
    start = """mutation($lines: [CouponPurchaseLineInput!]!) { startCouponPurchase(input: {lines: $lines, method: BANK_TRANSFER}) {
      purchase { id } errors { code field } } }"""
    body = live.graphql(start, {"lines": [{"productCode": "SINGLE", "quantity": 1}] * 1000}, headers=signer).json()
    assert body["data"]["startCouponPurchase"] == {"purchase": None, "errors": [{"code": "TOO_MANY_ITEMS", "field": ["input", "lines"]}]}
    goods = [{"description": "tea", "quantity": "1", "hsCode": "090210", "originCountry": "JP"}] * 1000
    body = live.graphql(CREATE, {"input": {**ORIGIN, "goods": goods}}, headers=signer).json()
    assert body["data"]["createApplication"]["errors"] == [{"code": "TOO_MANY_ITEMS", "field": ["input", "goods"]}]
    register = """mutation($m: [PurchaseMethod!]!) { createTradeRegistration(input: {kind: APPLICANT, name: "株式会社テスト",
      membership: MEMBER, contactEmail: "a@test.example", purchaseMethods: $m, adminName: "山田 太郎",
      adminEmail: "a@test.example", adminPassword: "good-pass-2701"}) { registration { number } errors { code field } } }"""
    body = live.graphql(register, {"m": ["CARD"] * 1000}, headers=staff).json()
    assert body["data"]["createTradeRegistration"]["errors"] == [{"code": "TOO_MANY_ITEMS", "field": ["input", "purchaseMethods"]}]


# --------------------------------------------------------------------------- item 16 (transport only: SQLite)


@pytest.fixture
async def sqlite_server(tmp_path, rules_copy):
    from persistence import migrate
    from persistence.db import Database

    url = f"sqlite+aiosqlite:///{tmp_path / 'edge.db'}"
    db = Database(url)
    await migrate.upgrade(db.engine)
    await db.dispose()
    server = await asyncio.to_thread(start_server, settings_for(url, rules_copy), FixedClock(tokyo(2026, 4, 1, 10)))
    yield server
    await asyncio.to_thread(server.stop)


@pytest.fixture
async def production_server(tmp_path, rules_copy):
    from persistence import migrate
    from persistence.db import Database

    url = f"sqlite+aiosqlite:///{tmp_path / 'prod.db'}"
    db = Database(url)
    await migrate.upgrade(db.engine)
    await db.dispose()
    settings = settings_for(url, rules_copy, graphiql=False, introspection=False)
    server = await asyncio.to_thread(start_server, settings, FixedClock(tokyo(2026, 4, 1, 10)))
    yield server
    await asyncio.to_thread(server.stop)


MISSPELT = [
    ("{ aplications { totalCount } }", None),  # field
    ("{ applications(frist: 1) { totalCount } }", None),  # argument
    ("{ feeSchedule { applicationFee(membership: MEMBR) } }", None),  # enum literal
    ("query($m: Membership!) { feeSchedule { applicationFee(membership: $m) } }", {"m": "MEMBR"}),  # enum variable
    ("query($f: ApplicationFilter) { applications(filter: $f) { totalCount } }", {"f": {"sate": "DRAFT"}}),  # input field
    ("query($f: ApplicationFiltr) { applications(filter: $f) { totalCount } }", None),  # type
]


async def test_production_turns_off_field_suggestions_with_introspection(production_server, sqlite_server):
    for query, variables in MISSPELT:
        hidden = production_server.graphql(query, variables).json()
        shown = sqlite_server.graphql(query, variables).json()
        hidden_text, shown_text = json.dumps(hidden, ensure_ascii=False).lower(), json.dumps(shown, ensure_ascii=False).lower()
        assert hidden.get("errors") and "did you mean" not in hidden_text and "候補" not in hidden_text, (query, hidden)
        assert "did you mean" in shown_text or "候補" in shown_text, (query, shown)  # development keeps the help (ja: 候補)


# --------------------------------------------------------------------------- item 14 (the real serve process)


def test_the_access_log_never_holds_activation_tokens_or_access_codes(tmp_path):
    from tests.tradecert.test_serve_process import serve, stop

    process, base = serve(tmp_path)
    try:
        httpx.get(f"{base}/activate", params={"token": "SECRET-TOKEN-abc123"})
        httpx.get(f"{base}/verify", params={"number": "270126000000001", "code": "SECRETCODE9"})
        httpx.get(f"{base}/verify?number=1&Code=SECRETCODE8&access_code=SECRETCODE7")
    finally:
        output = stop(process)
    for secret in ("SECRET-TOKEN-abc123", "SECRETCODE9", "SECRETCODE8", "SECRETCODE7"):
        assert secret not in output, secret
    assert "/activate?token=[REDACTED]" in output and "/verify?number=270126000000001&code=[REDACTED]" in output


def test_the_access_log_never_holds_what_a_graphql_get_carries(tmp_path):
    """A query over GET is refused, but its URL is logged: the document's literals and the
    variables are input values (a login's password)."""
    from tests.tradecert.test_serve_process import serve, stop

    process, base = serve(tmp_path)
    try:
        refused = httpx.get(f"{base}/graphql", params={
            "query": 'mutation { login(input: {password: "GetSecretPW77"}) { token } }',
            "variables": '{"password": "GetVarSecret88"}', "extensions": '{"k": "GetExtSecret99"}'})
    finally:
        output = stop(process)
    assert refused.status_code == 400
    for secret in ("GetSecretPW77", "GetVarSecret88", "GetExtSecret99"):
        assert secret not in output, secret
    assert "/graphql?query=[REDACTED]&variables=[REDACTED]&extensions=[REDACTED] 400" in output, output[-2000:]


# --------------------------------------------------------------------------- item 12: the same rule below the edge


def test_text_checks_refuse_what_no_database_can_store():
    """The CLI and jobs call the use cases without the HTTP edge: their text checks refuse it too."""
    from resolvers.core.validation import person_name, text

    for bad in ("加古川\x00自然食品", "\ud800", "a\udfffb"):
        failure = text(bad, ["input", "exporterName"], 200, "輸出者名")
        assert (failure.code, failure.field) == ("INVALID", ["input", "exporterName"]), bad
    assert person_name("山田 花\x00子", ["input", "name"]).code == "INVALID"
    assert text("加古川 😀", ["input", "exporterName"], 200, "輸出者名") == "加古川 😀"


def test_a_body_over_the_limit_is_refused_with_413_json(live):
    """No request needs more than 1 MiB; a bigger one is refused before it is read whole."""
    import httpx

    big = b'{"query": "{ me { id } }", "variables": {"x": "' + b"a" * 1_100_000 + b'"}}'
    response = httpx.post(f"{live.url}/graphql", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"

    def chunks():
        yield b'{"query": "{ me { id } }", "variables": {"x": "'
        for _ in range(40):
            yield b"a" * 50_000
        yield b'"}}'

    chunked = httpx.post(f"{live.url}/graphql", content=chunks(), headers={"content-type": "application/json"})
    assert chunked.status_code == 413
    assert live.graphql("{ feeSchedule { rulesVersion } }").status_code == 200
