"""The HTTP surface: health, readiness, metrics, GraphiQL, GET refusal, CSRF, limits,
masked errors, production switches, and rule reloads while serving."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from resolvers.core.clock import FixedClock
from tests.conftest import settings_for, start_server, tokyo


async def test_health_readiness_and_metrics(sqlite_live):
    live = await asyncio.to_thread(sqlite_live)
    with live.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["database"] == "ok" and ready.json()["rulesVersion"] == live.services.rules.current.version
        client.post("/graphql", json={"query": "query FeesToday { feeSchedule { on } }", "operationName": "FeesToday"})
        metrics = client.get("/metrics").text
    assert 'tradecert_graphql_operations_total{operation="FeesToday",outcome="ok"}' in metrics
    assert 'tradecert_graphql_operation_seconds_bucket{le="0.005",operation="FeesToday"}' in metrics
    assert 'tradecert_http_requests_total{method="POST",route="/graphql",status="200"}' in metrics


async def test_readiness_fails_when_the_database_is_unreachable(sqlite_live):
    from persistence.db import Database

    live = await asyncio.to_thread(sqlite_live)
    live.services.db = Database("postgresql+asyncpg://nobody@127.0.0.1:9/none")  # nothing listens on port 9
    with live.client() as client:
        response = client.get("/readyz")
        health = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"].startswith("unreachable")
    assert health.status_code == 200  # liveness does not depend on the database


async def test_every_response_carries_a_request_id(sqlite_live):
    live = await asyncio.to_thread(sqlite_live)
    with live.client() as client:
        generated = client.get("/healthz").headers["x-request-id"]
        kept = client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
    assert len(generated) == 32 and kept == "abc-123"


async def test_queries_over_get_are_refused_and_browsers_get_graphiql(sqlite_live):
    live = await asyncio.to_thread(sqlite_live)
    with live.client() as client:
        refused = client.get("/graphql", params={"query": "{ feeSchedule { on } }"})
        ide = client.get("/graphql", headers={"Accept": "text/html"})
    assert refused.status_code in (400, 405) and "data" not in refused.text
    assert ide.status_code == 200 and "graphiql" in ide.text.lower()


async def test_production_switches_turn_off_graphiql_and_introspection(sqlite_live):
    live = await asyncio.to_thread(sqlite_live, graphiql=False, introspection=False)
    with live.client() as client:
        ide = client.get("/graphql", headers={"Accept": "text/html"})
        introspection = client.post("/graphql", json={"query": "{ __schema { queryType { name } } }"})
        fees = client.post("/graphql", json={"query": "{ feeSchedule { on } }"})
    assert "graphiql" not in ide.text.lower()
    assert introspection.json()["errors"] and not introspection.json().get("data")
    assert fees.json()["data"]["feeSchedule"]["on"] == "2026-04-01"


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("application/x-www-form-urlencoded", "query=%7B__typename%7D"),
        ("text/plain", '{"query": "{__typename}"}'),
        ("multipart/form-data; boundary=x", "--x--"),
    ],
)
async def test_cross_site_simple_posts_are_refused(sqlite_live, content_type, body):
    live = await asyncio.to_thread(sqlite_live)
    with live.client() as client:
        response = client.post("/graphql", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 415
    assert response.json()["errors"][0]["extensions"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


async def test_foreign_origins_are_refused_and_our_own_accepted(sqlite_live):
    live = await asyncio.to_thread(sqlite_live)
    query = {"query": "{ __typename }"}
    with live.client() as client:
        foreign = client.post("/graphql", json=query, headers={"Origin": "https://evil.example"})
        cross = client.post("/graphql", json=query, headers={"Sec-Fetch-Site": "cross-site"})
        own = client.post("/graphql", json=query, headers={"Origin": live.url})
    assert foreign.status_code == 403 and cross.status_code == 403
    assert own.status_code == 200 and own.json()["data"] == {"__typename": "Query"}


async def test_depth_alias_and_token_limits(sqlite_live):
    live = await asyncio.to_thread(sqlite_live, max_query_depth=2, max_aliases=5, max_query_tokens=200)
    deep = "{ feeSchedule { couponProducts(membership: MEMBER) { rule { file } } } }"
    aliases = "{ " + " ".join(f"a{i}: feeSchedule {{ on }}" for i in range(6)) + " }"
    tokens = "{ feeSchedule { " + " ".join("on" for _ in range(300)) + " } }"
    with live.client() as client:
        for query, words, japanese in ((deep, "depth", "入れ子が深すぎます(上限2段)"), (aliases, "alias", "別名(alias)が多すぎます(6個、上限5個)"),
                                       (tokens, "token", "クエリが長すぎます(トークン数の上限は200)")):
            body = client.post("/graphql", json={"query": query}, headers={"Accept-Language": "en"}).json()
            assert body.get("data") is None, body
            assert words in body["errors"][0]["message"].lower(), body
            body = client.post("/graphql", json={"query": query}, headers={"Accept-Language": "ja"}).json()
            assert japanese in body["errors"][0]["message"], body


async def test_an_unexpected_error_is_masked_and_logged_with_the_request_id(sqlite_live, caplog):
    live = await asyncio.to_thread(sqlite_live)

    class Broken:
        @property
        def current(self):
            raise RuntimeError("secret internal detail")

    live.services.rules = Broken()
    with caplog.at_level(logging.ERROR, logger="tradecert.graphql"), live.client() as client:
        response = client.post("/graphql", json={"query": "{ feeSchedule { on } }"}, headers={"X-Request-ID": "req-42"})
    assert response.status_code == 200
    error = response.json()["errors"][0]
    assert "secret internal detail" not in response.text
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "req-42"}
    record = next(r for r in caplog.records if r.name == "tradecert.graphql")
    assert record.request_id == "req-42" and "secret internal detail" in caplog.text


async def test_a_running_server_keeps_its_rules_when_the_edited_files_are_broken(tmp_path, rules_copy):
    from persistence import migrate
    from persistence.db import Database

    url = f"sqlite+aiosqlite:///{tmp_path / 'reload.db'}"
    db = Database(url)
    await migrate.upgrade(db.engine)
    await db.dispose()
    live = await asyncio.to_thread(
        # the day before the 2026-04-01 version takes effect: it may still be edited (rules history)
        start_server, settings_for(url, rules_copy).with_(rules_poll_seconds=0.1), FixedClock(tokyo(2026, 3, 31, 10))
    )
    query = '{ feeSchedule(on: "2026-04-01") { rulesVersion applicationFee(membership: MEMBER) } }'

    def fee() -> dict:
        return live.graphql(query).json()["data"]["feeSchedule"]

    def wait_for(predicate, seconds: float = 10.0) -> dict:
        deadline = time.monotonic() + seconds
        while True:
            current = fee()
            if predicate(current) or time.monotonic() > deadline:
                return current
            time.sleep(0.1)

    try:
        first = await asyncio.to_thread(fee)
        assert first["applicationFee"] == 1210
        path = rules_copy / "application_fees.yaml"
        original = path.read_text(encoding="utf-8")
        path.write_text(original.replace("amount: 1210", "amount: twelve-ten"), encoding="utf-8")
        await asyncio.sleep(1.0)  # ten polls
        assert await asyncio.to_thread(fee) == first
        path.write_text(original.replace("amount: 1210", "amount: 1250"), encoding="utf-8")
        changed = await asyncio.to_thread(wait_for, lambda f: f["applicationFee"] == 1250)
        assert changed["applicationFee"] == 1250 and changed["rulesVersion"] != first["rulesVersion"]
    finally:
        await asyncio.to_thread(live.stop)


async def test_a_password_in_a_malformed_input_never_reaches_the_log(sqlite_live, caplog):
    """graphql-core names the whole bad value in its message; the log keeps the variable
    and what was wrong, never the value (a login's password, an activation token)."""
    live = await asyncio.to_thread(sqlite_live)
    login = "mutation($i: LoginInput!) { login(input: $i) { token } }"
    literal = ('mutation { login(input: {chamberCode: "2701", username: "signer-2701000002", '
               'password: "S3cret-Leak-Me-123", bogus: 1}) { token } }')
    with caplog.at_level(logging.DEBUG), live.client() as client:
        by_variable = client.post("/graphql", json={"query": login, "variables": {"i": {
            "chamberCode": "2701", "username": "signer-2701000002", "password": "S3cret-Leak-Me-123", "bogus": 1}}})
        by_literal = client.post("/graphql", json={"query": literal})
        wrong_type = client.post("/graphql", json={"query": login, "variables": {"i": {
            "chamberCode": "2701", "username": "signer-2701000002", "password": ["S3cret-Leak-Me-123"]}}})
    for response in (by_variable, by_literal, wrong_type):
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", response.text
    assert "S3cret-Leak-Me-123" not in caplog.text
    assert "got invalid value" in caplog.text or "graphql error" in caplog.text  # the error is still logged
