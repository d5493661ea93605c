"""GraphQL over HTTP at /graphql (issue 20, items 12, 13, 15 and 19): the
``application/graphql-response+json`` media type, GET and other methods refused with the
right status, the edge's refusals in the request's language, and PDF routes answering in the
documented error shape."""

from __future__ import annotations

import asyncio
import re

import httpx

from tests.coupons.test_purchases import ORDER, START
from tests.identity.test_subaccounts import as_user
from tests.tradecert.test_hostile_input import gid

GRAPHQL_RESPONSE = {"Accept": "application/graphql-response+json", "Content-Type": "application/json"}


def codes(response: httpx.Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json()["errors"]]


# --------------------------------------------------------------------------- item 12: the media types


async def test_graphql_response_json_is_answered_with_that_media_type(sqlite_live):
    live = await asyncio.to_thread(sqlite_live)
    with live.client() as client:
        answer = client.post("/graphql", json={"query": "{ __typename }"}, headers=GRAPHQL_RESPONSE)
        json_answer = client.post("/graphql", json={"query": "{ __typename }"}, headers={"Accept": "application/json"})
        anything = client.post("/graphql", json={"query": "{ __typename }"}, headers={"Accept": "*/*"})
        preferred = client.post("/graphql", json={"query": "{ __typename }"},
                                headers={"Accept": "application/json;q=0.9, application/graphql-response+json"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/graphql-response+json")
    assert answer.json() == {"data": {"__typename": "Query"}}
    assert json_answer.headers["content-type"].startswith("application/json")
    assert anything.headers["content-type"].startswith("application/json")
    assert preferred.headers["content-type"].startswith("application/graphql-response+json")


async def test_request_errors_are_400_without_data_under_graphql_response_json(sqlite_live):
    live = await asyncio.to_thread(sqlite_live)
    broken = {
        "GRAPHQL_PARSE_FAILED": {"query": "{"},
        "GRAPHQL_VALIDATION_FAILED": {"query": "{ noSuchField }"},
        "BAD_USER_INPUT": {"query": "query($on: Date) { feeSchedule(on: $on) { on } }", "variables": {"on": "2026-02-30"}},
    }
    with live.client() as client:
        for code, body in broken.items():
            answer = client.post("/graphql", json=body, headers=GRAPHQL_RESPONSE)
            assert answer.status_code == 400, (code, answer.text)
            assert answer.headers["content-type"].startswith("application/graphql-response+json")
            assert "data" not in answer.json() and codes(answer) == [code], answer.text
            # application/json keeps what its clients read: 200 with "data": null
            plain = client.post("/graphql", json=body)
            assert plain.status_code == 200 and plain.json()["data"] is None and codes(plain) == [code], plain.text
        # a field's error is not a request error: data is there, so 200
        refused = client.post("/graphql", json={"query": "{ me { username } auditLog { totalCount } }"},
                              headers=GRAPHQL_RESPONSE)
    assert refused.status_code == 200 and "data" in refused.json(), refused.text


# --------------------------------------------------------------------------- item 13: methods


async def test_a_query_over_get_is_400_even_when_it_does_not_parse(sqlite_live):
    live = await asyncio.to_thread(sqlite_live)
    with live.client() as client:
        for query in ("{ feeSchedule { on } }", "{", "mutation { logout }", ""):
            answer = client.get("/graphql", params={"query": query})
            assert answer.status_code == 400, (query, answer.text)
            assert codes(answer) == ["BAD_REQUEST"] and "data" not in answer.json(), answer.text
            assert "POST" in client.get("/graphql", params={"query": query}, headers={"Accept-Language": "en"}
                                        ).json()["errors"][0]["message"]


async def test_other_methods_are_405_with_allow_naming_post(sqlite_live):
    live = await asyncio.to_thread(sqlite_live)
    production = await asyncio.to_thread(sqlite_live, graphiql=False, introspection=False)
    for server, allow in ((live, {"GET", "POST"}), (production, {"POST"})):
        with server.client() as client:
            for method in ("PUT", "DELETE", "PATCH"):
                answer = client.request(method, "/graphql", json={"query": "{ __typename }"},
                                        headers={"Accept-Language": "en"})
                assert answer.status_code == 405, answer.text
                assert {m.strip() for m in answer.headers["allow"].split(",")} == allow
                assert codes(answer) == ["METHOD_NOT_ALLOWED"]
                message = answer.json()["errors"][0]["message"]
                assert "POST" in message and "supports GET" not in message, message


# --------------------------------------------------------------------------- item 15: the edge's words


async def test_the_edge_refuses_in_the_request_language(sqlite_live):
    live = await asyncio.to_thread(sqlite_live)
    ja = {"Accept-Language": "ja"}
    with live.client() as client:
        cross = client.post("/graphql", json={"query": "{ __typename }"}, headers={**ja, "Origin": "https://evil.example"})
        form = client.post("/graphql", content="query=x", headers={**ja, "Content-Type": "text/plain"})
        over_get = client.get("/graphql", params={"query": "{ __typename }"}, headers=ja)
        not_json = client.post("/graphql", content=b"{nope", headers={**ja, "Content-Type": "application/json"})
        no_query = client.post("/graphql", json={"notquery": "{ __typename }"}, headers=ja)
        bad_variables = client.post("/graphql", json={"query": "{ __typename }", "variables": "x"}, headers=ja)
        put = client.put("/graphql", json={"query": "{ __typename }"}, headers=ja)
        english = client.post("/graphql", json={"query": "{ __typename }"},
                              headers={"Accept-Language": "en", "Origin": "https://evil.example"})
    for answer, code in ((cross, "CSRF"), (form, "UNSUPPORTED_MEDIA_TYPE"), (over_get, "BAD_REQUEST"),
                         (not_json, "BAD_REQUEST"), (no_query, "BAD_REQUEST"), (bad_variables, "BAD_REQUEST"),
                         (put, "METHOD_NOT_ALLOWED")):
        message = answer.json()["errors"][0]["message"]
        assert codes(answer) == [code] and re.search("[ぁ-んァ-ン一-龥]", message), (code, message)
        assert not re.search(r"\b(refused|POST a|not allowed|must be|No GraphQL|not valid)\b", message), message
    assert english.json()["errors"][0]["message"].startswith("Cross-site request refused")


async def test_several_operations_without_an_operation_name_run_none(sqlite_live):
    """GraphQL spec, GetOperation: with several operations and no operationName the request is
    an error; strawberry ran the first one (a document's second mutation silently not)."""
    live = await asyncio.to_thread(sqlite_live)
    document = "query A { a: __typename } query B { b: __typename }"
    with live.client() as client:
        loose = client.post("/graphql", json={"query": document}, headers={"Accept-Language": "ja"})
        strict = client.post("/graphql", json={"query": document}, headers={"Accept": "application/graphql-response+json",
                                                                           "Accept-Language": "en"})
        named = client.post("/graphql", json={"query": document, "operationName": "B"})
    assert loose.status_code == 200 and loose.json()["data"] is None, loose.text
    assert loose.json()["errors"][0]["message"] == "クエリが正しくありません: 複数の操作があるときはoperationNameを指定してください。"
    assert codes(loose) == ["GRAPHQL_VALIDATION_FAILED"]
    assert strict.status_code == 400 and "data" not in strict.json()
    assert strict.json()["errors"][0]["message"] == "Must provide operation name if query contains multiple operations."
    assert named.json() == {"data": {"b": "Query"}}


async def test_a_nul_and_an_unknown_address_are_refused_in_one_language(sqlite_live):
    """The NUL refusal spoke both languages at once; an unknown address or a route's other
    method was Starlette's plain-text "Not Found" / "Method Not Allowed"."""
    live = await asyncio.to_thread(sqlite_live)
    with live.client() as client:
        nul = [client.post("/graphql", json={"query": "{ __typename }", "variables": {"a": "\u0000"}},
                           headers={"Accept-Language": language}) for language in ("ja", "en")]
        nowhere = [client.get("/nowhere", headers={"Accept-Language": language}) for language in ("ja", "en")]
        post_healthz = client.post("/healthz", headers={"Accept-Language": "ja"})
    assert nul[0].json()["errors"][0]["message"] == "入力にNUL文字または不正な文字(対になっていないサロゲート)が含まれています。"
    assert nul[1].json()["errors"][0]["message"] == "Text must not contain NUL (U+0000) or unpaired surrogates."
    assert [answer.status_code for answer in nowhere] == [404, 404]
    assert [answer.json()["errors"][0]["message"] for answer in nowhere] == ["このアドレスでは提供していません。", "Not found."]
    assert codes(nowhere[0]) == ["NOT_FOUND"]
    assert post_healthz.status_code == 405 and codes(post_healthz) == ["METHOD_NOT_ALLOWED"]
    assert "GET" in post_healthz.headers["allow"] and re.search("[ぁ-んァ-ン一-龥]", post_healthz.json()["errors"][0]["message"])


async def test_a_media_type_in_capitals_is_json_and_a_wrong_operation_name_is_worded(sqlite_live):
    """Media types are case-insensitive (RFC 9110, 8.3.1): the CSRF guard let APPLICATION/JSON
    through and strawberry then refused it as "Unsupported content type", in a generic 400."""
    live = await asyncio.to_thread(sqlite_live)
    ja = {"Accept-Language": "ja"}
    with live.client() as client:
        capitals = client.post("/graphql", content=b'{"query": "{ __typename }"}',
                               headers={**ja, "Content-Type": "Application/JSON; Charset=UTF-8"})
        name = client.post("/graphql", json={"query": "{ __typename }", "operationName": 5}, headers=ja)
        unknown = client.post("/graphql", json={"query": "{ __typename }", "operationName": "Nope"}, headers=ja)
    assert capitals.status_code == 200 and capitals.json() == {"data": {"__typename": "Query"}}, capitals.text
    assert name.status_code == 400 and codes(name) == ["BAD_REQUEST"]
    assert name.json()["errors"][0]["message"] == "operationNameは文字列で指定してください(省略またはnullも可)。"
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["message"] == "Nopeという操作はこのクエリにありません。"


# --------------------------------------------------------------------------- item 19: PDF routes


async def test_a_pdf_of_an_unknown_or_unreachable_id_is_404_not_found_in_the_error_shape(live):
    signer, other = as_user(live, "signer-2701000002"), as_user(live, "signer-2701000003")
    purchase = live.graphql(START.replace("orderNumber status", "orderNumber status transferRequestPdfUrl"),
                            {"lines": ORDER, "method": "BANK_TRANSFER"}, headers=signer).json()["data"]["startCouponPurchase"]["purchase"]
    url = purchase["transferRequestPdfUrl"]
    assert httpx.get(url, headers=signer).status_code == 200
    unknown = [f"{live.url}/documents/purchases/{gid('CouponPurchase', 999_999)}/transfer-request.pdf",
               f"{live.url}/documents/applications/{gid('Application', 999_999)}/certificate.pdf",
               f"{live.url}/documents/purchases/{gid('Application', 1)}/card-statement.pdf",  # an id of another type
               f"{live.url}/documents/applications/not-an-id/certificate.pdf"]
    answers = [httpx.get(address, headers=signer) for address in unknown] + [httpx.get(url, headers=other)]
    for answer in answers:  # someone else's order reads exactly as an order that does not exist
        assert answer.status_code == 404, answer.text
        assert answer.json() == answers[0].json()
        assert codes(answer) == ["NOT_FOUND"] and "IDを確認" in answer.json()["errors"][0]["message"]
    english = httpx.get(unknown[0], headers={**signer, "Accept-Language": "en"})
    assert english.json()["errors"][0]["message"].startswith("Not found")
    anonymous = httpx.get(url)
    assert anonymous.status_code == 401 and codes(anonymous) == ["UNAUTHENTICATED"]
