"""What one request may cost (issue 20, item 5): the estimated size of its answer, checked on
the validated document before anything runs; the size of the answer sent; the time a query
may take. Each refusal is a top-level error with its code, in the request's language."""

from __future__ import annotations

import asyncio

from graphql import GraphQLInterfaceType, GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLUnionType

from schema import build_schema

GRAPHQL_RESPONSE = {"Accept": "application/graphql-response+json"}


def _named(type_):
    while isinstance(type_, (GraphQLNonNull, GraphQLList)):
        type_ = type_.of_type
    return type_


def every_relation(type_name: str, depth: int) -> str:
    """Every field of ``type_name`` that needs no argument, relations ``depth`` levels down."""
    schema = build_schema()._schema
    parts = []
    for name, field in schema.get_type(type_name).fields.items():
        if any(isinstance(a.type, GraphQLNonNull) and a.default_value is None for a in field.args.values()):
            continue
        target = _named(field.type)
        if isinstance(target, GraphQLUnionType):
            continue
        if isinstance(target, (GraphQLObjectType, GraphQLInterfaceType)):
            if depth > 0 and not target.name.endswith("Connection"):
                parts.append(f"{name} {{ {every_relation(target.name, depth - 1)} }}")
        else:
            parts.append(name)
    return " ".join(parts)


def applications_page(first: str = "100") -> str:
    return f"applications(first: {first}) {{ totalCount edges {{ node {{ {every_relation('Application', 2)} }} }} }}"


async def test_thirty_full_pages_of_applications_are_refused_before_they_run(sqlite_live):
    live = await asyncio.to_thread(sqlite_live)
    # within the token (2,000), alias (30) and depth (12) limits: one fragment, spread 30 times
    pages = " ".join(f"a{i}: applications(first: 100) {{ totalCount edges {{ node {{ ...All }} }} }}" for i in range(30))
    flood = f"{{ {pages} }} fragment All on Application {{ {every_relation('Application', 2)} }}"
    with live.client() as client:
        refused = client.post("/graphql", json={"query": flood}, headers={"Accept-Language": "en"})
        strict = client.post("/graphql", json={"query": flood}, headers=GRAPHQL_RESPONSE)
        japanese = client.post("/graphql", json={"query": flood}, headers={"Accept-Language": "ja"})
    assert refused.status_code == 200 and refused.json()["data"] is None
    [error] = refused.json()["errors"]
    assert error["extensions"] == {"code": "QUERY_TOO_COSTLY", "limit": 20_000}
    assert "20,000" in error["message"] and "first" in error["message"]
    assert strict.status_code == 400 and "data" not in strict.json()
    assert japanese.json()["errors"][0]["message"].startswith("このクエリの結果は大きすぎます")


async def test_one_full_page_and_every_query_of_ours_fit_the_cost_limit(sqlite_live):
    live = await asyncio.to_thread(sqlite_live)
    with live.client() as client:
        one = client.post("/graphql", json={"query": "{ " + applications_page() + " }"})
    assert [e["extensions"]["code"] for e in one.json()["errors"]] == ["UNAUTHENTICATED"], one.text  # it ran


async def test_a_variable_page_size_counts_as_the_largest_page(sqlite_live):
    live = await asyncio.to_thread(sqlite_live, max_query_cost=5_000)
    query = "query($n: Int) { a: " + applications_page("$n") + " b: " + applications_page("$n") + " }"
    literal = "{ a: " + applications_page("5") + " b: " + applications_page("5") + " }"
    with live.client() as client:
        variable = client.post("/graphql", json={"query": query, "variables": {"n": 5}}).json()
        small = client.post("/graphql", json={"query": literal}).json()
    assert variable["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert all(e["extensions"]["code"] != "QUERY_TOO_COSTLY" for e in small.get("errors", [])), small


async def test_an_answer_over_the_response_cap_is_refused(sqlite_live):
    live = await asyncio.to_thread(sqlite_live, max_response_bytes=150)
    query = "{ feeSchedule { couponProducts(membership: MEMBER) { code name price coupons } } }"
    with live.client() as client:
        fits = client.post("/graphql", json={"query": "{ __typename }"})
        refused = client.post("/graphql", json={"query": query}, headers={"Accept-Language": "en"})
        strict = client.post("/graphql", json={"query": query}, headers=GRAPHQL_RESPONSE)
    assert fits.json() == {"data": {"__typename": "Query"}}
    assert refused.status_code == 200 and refused.json()["data"] is None
    [error] = refused.json()["errors"]
    assert error["extensions"] == {"code": "RESPONSE_TOO_LARGE", "limit": 150} and "150 bytes" in error["message"]
    assert strict.status_code == 400 and "data" not in strict.json()


async def test_a_query_over_its_time_budget_is_cut_short(sqlite_live):
    live = await asyncio.to_thread(sqlite_live, query_seconds=0.000001)
    query = "{ a: verifyCertificate(number: \"123456789012345\", accessCode: \"x\") { valid } }"
    with live.client() as client:
        refused = client.post("/graphql", json={"query": query}, headers={"Accept-Language": "ja"})
        strict = client.post("/graphql", json={"query": query}, headers=GRAPHQL_RESPONSE)
        mutation = client.post("/graphql", json={"query": 'mutation { login(input: {chamberCode: "2701", '
                                                             'username: "nobody", password: "x"}) { token } }'})
    assert refused.status_code == 200 and refused.json()["data"] is None
    [error] = refused.json()["errors"]
    assert error["extensions"] == {"code": "QUERY_TIMEOUT"} and "制限時間" in error["message"]
    assert strict.status_code == 503 and "data" not in strict.json()
    assert mutation.json()["data"]["login"]["token"] is None  # a mutation runs to its end


async def test_queries_cut_short_leave_the_database_connections_usable(migrated, rules_copy):
    """On both databases: a query cancelled mid-read gives its connection back; the server goes on."""
    from resolvers.core.clock import FixedClock
    from tests.conftest import settings_for, start_server, tokyo

    target, _db = migrated
    settings = settings_for(target.url, rules_copy, query_seconds=0.000001)
    live = await asyncio.to_thread(start_server, settings, FixedClock(tokyo(2026, 4, 1, 10)), target.schema)
    query = "{ verifyCertificate(number: \"123456789012345\", accessCode: \"x\") { valid } }"
    try:
        with live.client() as client:
            for _ in range(15):  # more than the pool holds
                answer = client.post("/graphql", json={"query": query}).json()
                assert answer["errors"][0]["extensions"]["code"] == "QUERY_TIMEOUT", answer
            ready = client.get("/readyz")
            login = client.post("/graphql", json={"query": 'mutation { login(input: {chamberCode: "2701", '
                                                           'username: "signer-2701000002", password: "x"}) { token } }'})
    finally:
        await asyncio.to_thread(live.stop)
    assert ready.status_code == 200 and ready.json()["database"] == "ok"
    assert login.json()["data"]["login"]["token"] is None  # a mutation still reads and writes


async def test_fragments_spread_again_and_again_are_refused_without_walking_them_for_minutes(sqlite_live):
    """``first: 0`` counts nothing, so what is spread inside it cost nothing while its expansion
    grew 30 × 30 × 27,000 selections; and strawberry's depth and alias limiters walk every
    spread of a fragment again. Either took minutes on the event loop, before any time budget
    (tokens, depth and aliases all within their limits). Counting now stops where the limit does."""
    import time

    live = await asyncio.to_thread(sqlite_live)
    fragments = "fragment F0 on Application { id }\n" + "".join(
        f"fragment F{k} on Application {{ {' '.join([f'...F{k - 1}'] * 30)} }}\n" for k in (1, 2, 3))
    fragments += "fragment Z on Query { applications(first: 0) { edges { node { ...F3 } } } }\n"
    fragments += "fragment Z2 on Query { " + " ".join(["...Z"] * 30) + " }\n"
    flood = "{ " + " ".join(["...Z2"] * 30) + " }\n" + fragments
    # 30^5 selections: strawberry's depth and alias limiters walked each of them
    nested = "{ couponAccount { ...G5 } }\nfragment G0 on CouponAccount { balance }\n" + "".join(
        f"fragment G{k} on CouponAccount {{ {' '.join([f'...G{k - 1}'] * 30)} }}\n" for k in range(1, 6))
    with live.client() as client:
        started = time.perf_counter()
        refused = client.post("/graphql", json={"query": flood}, headers={"Accept-Language": "en"})
        deep = client.post("/graphql", json={"query": nested}, headers={"Accept-Language": "en"})
        elapsed = time.perf_counter() - started
    assert [e["extensions"]["code"] for e in refused.json()["errors"]] == ["QUERY_TOO_COSTLY"], refused.text
    assert [e["extensions"]["code"] for e in deep.json()["errors"]] == ["QUERY_TOO_COSTLY"], deep.text
    assert elapsed < 5, elapsed
