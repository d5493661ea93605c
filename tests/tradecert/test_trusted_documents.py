"""Trusted documents (TRADECERT_TRUSTED_DOCUMENTS): with a manifest built by
`tradecert schema trusted-documents`, its documents run by documentId and by their exact
text, anything else is refused before it runs; where GraphiQL serves developers,
introspection, login and chamber staff sessions still work, and in production none of that.
A bad manifest stops `serve` with one line. Over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from persistence.models import Account
from resolvers.core.clock import FixedClock
from schema import build_schema
from tests.conftest import _free_port, settings_for, start_server, tokyo
from tradecert.trusted_documents import ManifestInvalid, document_id, load_manifest

TRADECERT = str(Path(sys.executable).parent / "tradecert")
PASSWORD = "demo-pass-2701"

FEES = '# 料金表 (the fee schedule)\nquery Fees { feeSchedule(on: "2026-04-01") { applicationFee(membership: MEMBER) } }\n'
SESSION = """mutation Login($c: String, $u: String!, $p: String!) {
  login(input: {chamberCode: $c, username: $u, password: $p}) { token errors { code } }
}

query Me { me { username kind } }
"""
CREATE_SUB = """mutation CreateSub($input: CreateSubAccountInput!) {
  createSubAccount(input: $input) { account { username } errors { code } }
}
"""
SUB_INPUT = {"name": "山田 花子", "password": "hanako-pass-2026", "email": "hanako@kakogawa.example"}
INTROSPECTION = "query IntrospectionQuery { __schema { queryType { name } types { ...T } } } fragment T on __Type { name }"
UNLISTED = "{ me { username } }"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TRADECERT, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})


def operations(directory: Path) -> Path:
    """Three operation files, one in a subdirectory, one holding two operations."""
    (directory / "sub").mkdir(parents=True)
    (directory / "fees.graphql").write_text(FEES, encoding="utf-8")
    (directory / "session.graphql").write_text(SESSION, encoding="utf-8")
    (directory / "sub" / "create_sub.graphql").write_text(CREATE_SUB, encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def manifest_file(tmp_path_factory) -> Path:
    """The manifest as an operator makes it: `tradecert schema trusted-documents DIR > FILE`."""
    base = tmp_path_factory.mktemp("trusted")
    built = cli("schema", "trusted-documents", str(operations(base / "operations")))
    assert built.returncode == 0, built.stderr
    path = base / "manifest.json"
    path.write_text(built.stdout, encoding="utf-8")
    return path


@pytest.fixture
async def serve(migrated, rules_copy, manifest_file):
    """``start(**settings)``: a server with the manifest on the database of each kind."""
    target, db = migrated
    servers = []

    async def start(**changes):
        settings = settings_for(target.url, rules_copy, trusted_documents_file=manifest_file, **changes)
        server = await asyncio.to_thread(start_server, settings, FixedClock(tokyo(2026, 4, 1, 10)), target.schema)
        servers.append(server)
        return server

    start.db = db
    yield start
    for server in servers:
        await asyncio.to_thread(server.stop)


def post(live, body: dict, headers: dict | None = None) -> httpx.Response:
    with live.client() as client:
        return client.post("/graphql", json=body, headers=headers or {})


def login(live, username: str) -> dict[str, str]:
    answer = post(live, {"documentId": document_id(SESSION), "operationName": "Login",
                         "variables": {"c": "2701", "u": username, "p": PASSWORD}})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['data']['login']['token']}"}


def code_of(answer: httpx.Response) -> str:
    body = answer.json()
    assert "data" not in body, body  # refused before anything ran
    [error] = body["errors"]
    return str(error["extensions"]["code"])


async def accounts(db) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Account)))


async def test_the_manifests_documents_run_by_id_and_by_their_text(serve):
    live = await serve()
    signer = login(live, "signer-2701000002")
    me = post(live, {"documentId": document_id(SESSION), "operationName": "Me"}, signer)
    assert me.json() == {"data": {"me": {"username": "signer-2701000002", "kind": "SIGNER"}}}
    by_text = post(live, {"query": FEES})
    by_id = post(live, {"documentId": document_id(FEES)})
    apollo = post(live, {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": document_id(FEES)[7:]}}})
    assert by_text.json() == by_id.json() == apollo.json() == {"data": {"feeSchedule": {"applicationFee": 1210}}}
    both = post(live, {"documentId": document_id(FEES), "query": FEES})
    assert both.json() == by_id.json()  # the id with its own text: as the id alone
    other = post(live, {"documentId": document_id(FEES), "query": SESSION})
    assert other.status_code == 400 and code_of(other) == "BAD_REQUEST"


async def test_an_unlisted_document_is_refused_and_nothing_runs(serve):
    live = await serve()
    signer = login(live, "signer-2701000002")
    before = await accounts(serve.db)
    almost = post(live, {"query": CREATE_SUB + " ", "variables": {"input": SUB_INPUT}}, signer)  # not the exact text
    assert almost.status_code == 403 and code_of(almost) == "DOCUMENT_NOT_TRUSTED"
    assert "信頼済み文書" in almost.json()["errors"][0]["message"]  # Japanese unless English is preferred
    unlisted = post(live, {"query": UNLISTED}, {**signer, "Accept-Language": "en"})  # a signer is no chamber staff
    assert unlisted.status_code == 403 and code_of(unlisted) == "DOCUMENT_NOT_TRUSTED"
    assert unlisted.json()["errors"][0]["message"].startswith("This document is not trusted")
    unknown = post(live, {"documentId": document_id(CREATE_SUB + " "), "variables": {"input": SUB_INPUT}}, signer)
    assert unknown.status_code == 404 and code_of(unknown) == "PERSISTED_QUERY_NOT_FOUND"
    apollo = post(live, {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}},
                  {"Accept-Language": "en"})
    assert apollo.status_code == 404 and code_of(apollo) == "PERSISTED_QUERY_NOT_FOUND"
    assert apollo.json()["errors"][0]["message"].startswith("PersistedQueryNotFound")
    bad_id = post(live, {"documentId": 7})
    assert bad_id.status_code == 400 and code_of(bad_id) == "BAD_REQUEST"
    assert await accounts(serve.db) == before  # the refused mutation wrote nothing
    created = post(live, {"documentId": document_id(CREATE_SUB), "variables": {"input": SUB_INPUT}}, signer)
    assert created.json()["data"]["createSubAccount"]["errors"] == []  # the trusted text itself runs
    assert await accounts(serve.db) == before + 1


async def test_in_development_graphiql_introspection_and_staff_sessions_run(serve):
    live = await serve()  # development: GraphiQL on
    schema = post(live, {"query": INTROSPECTION, "operationName": "IntrospectionQuery"})
    assert schema.json()["data"]["__schema"]["queryType"] == {"name": "Query"}
    mixed = post(live, {"query": "{ __typename feeSchedule { on } }"})  # introspection and data
    assert mixed.status_code == 403 and code_of(mixed) == "DOCUMENT_NOT_TRUSTED"
    typed_login = post(live, {"query": 'mutation { login(input: {chamberCode: "2701", username: "staff-2701", '
                                       f'password: "{PASSWORD}"}}) {{ token }} }}'})
    staff = {"Authorization": f"Bearer {typed_login.json()['data']['login']['token']}"}  # GraphiQL's way in
    assert post(live, {"query": UNLISTED}, staff).json() == {"data": {"me": {"username": "staff-2701"}}}
    signer = login(live, "signer-2701000002")
    refused = post(live, {"query": UNLISTED}, signer)
    assert refused.status_code == 403 and code_of(refused) == "DOCUMENT_NOT_TRUSTED"
    anonymous = post(live, {"query": UNLISTED})
    assert anonymous.status_code == 403 and code_of(anonymous) == "DOCUMENT_NOT_TRUSTED"


@pytest.mark.parametrize("graphiql", [False, True])
async def test_in_production_only_the_manifest_runs(serve, graphiql):
    live = await serve(environment="production", graphiql=graphiql, introspection=False,
                       allow_sandbox_gateway_in_production=True)
    schema = post(live, {"query": INTROSPECTION})
    assert schema.status_code == 403 and code_of(schema) == "DOCUMENT_NOT_TRUSTED"
    typed_login = post(live, {"query": 'mutation { login(input: {chamberCode: "2701", username: "staff-2701", '
                                       f'password: "{PASSWORD}"}}) {{ token }} }}'})
    assert typed_login.status_code == 403 and code_of(typed_login) == "DOCUMENT_NOT_TRUSTED"
    staff = login(live, "staff-2701")  # the manifest's login
    refused = post(live, {"query": UNLISTED}, staff)
    assert refused.status_code == 403 and code_of(refused) == "DOCUMENT_NOT_TRUSTED"
    assert post(live, {"documentId": document_id(FEES)}).json() == {"data": {"feeSchedule": {"applicationFee": 1210}}}


async def test_without_the_setting_nothing_changes(live):
    assert live.services.trusted_documents is None
    assert live.graphql(UNLISTED).json() == {"data": {"me": None}}


# --------------------------------------------------------------------------- the manifest at start


def bad_manifests(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Manifests `serve` must refuse, each with the key its line names."""
    mismatch_key = document_id("{ me { username } }")
    invalid = "{ noSuchField }"
    made = {"mismatch": ({mismatch_key: FEES}, mismatch_key), "invalid": ({document_id(invalid): invalid}, document_id(invalid))}
    found = {}
    for name, (content, key) in made.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")
        found[name] = (path, key)
    return found


@pytest.mark.parametrize("kind, words", [("mismatch", "is not the SHA-256 of its document"),
                                         ("invalid", "does not validate against the schema: Cannot query field 'noSuchField'")])
def test_serve_refuses_to_start_on_a_bad_manifest_in_one_line(tmp_path, kind, words):
    path, key = bad_manifests(tmp_path)[kind]
    result = subprocess.run(
        [TRADECERT, "serve", "--port", str(_free_port())], capture_output=True, text=True, timeout=120,
        env={**os.environ, "TRADECERT_TRUSTED_DOCUMENTS": str(path), "COLUMNS": "400",
             "TRADECERT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"})
    assert result.returncode == 1
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    assert str(path) in line and key in line and words in line, line


def test_a_manifest_that_cannot_be_used_is_named_with_its_file(tmp_path):
    schema = build_schema()._schema
    cases = {"not-json.json": "{", "list.json": "[]", "empty.json": "{}", "key.json": json.dumps({"sha1:abc": FEES})}
    for name, text in cases.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        with pytest.raises(ManifestInvalid) as refused:
            load_manifest(tmp_path / name, schema)
        assert str(tmp_path / name) in str(refused.value) and "\n" not in str(refused.value)
    with pytest.raises(ManifestInvalid, match="cannot be read"):
        load_manifest(tmp_path / "absent.json", schema)


# --------------------------------------------------------------------------- the CLI


def test_the_cli_builds_a_stable_manifest_of_every_graphql_file(tmp_path):
    directory = operations(tmp_path / "operations")
    first, second = cli("schema", "trusted-documents", str(directory)), cli("schema", "trusted-documents", str(directory))
    assert first.returncode == 0 and first.stdout == second.stdout
    manifest = json.loads(first.stdout)
    assert manifest == {document_id(text): text for text in (FEES, SESSION, CREATE_SUB)}
    assert list(manifest) == sorted(manifest) and "料金表" in first.stdout  # keys sorted, UTF-8 as is


def test_the_cli_names_an_invalid_file_and_exits_1(tmp_path):
    directory = operations(tmp_path / "operations")
    (directory / "sub" / "broken.graphql").write_text("query { feeSchedule { nothing } }\n", encoding="utf-8")
    (directory / "unparsable.graphql").write_text("query {\n", encoding="utf-8")
    result = cli("schema", "trusted-documents", str(directory))
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{directory / 'sub' / 'broken.graphql'}: Cannot query field 'nothing'")
    assert lines[1].startswith(f"{directory / 'unparsable.graphql'}: Syntax Error")
