"""The read path over HTTP, on SQLite and PostgreSQL: one read unit per request, shared by
every field and closed when the request ends; a mutation's payload sees its own write and a
mutation never holds a read unit while it writes; a relation loaded on demand costs one
statement for the whole page."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import event

from tests.applications.test_applications import create
from tests.identity.test_subaccounts import as_user, create_sub


@dataclass
class Units:
    """What the server's engine did during a request: connections taken from the pool (one per
    unit of work), the most held at once, and the statements run (BEGIN/COMMIT/ROLLBACK left out)."""

    taken: int = 0
    held: int = 0
    most_held: int = 0
    statements: list[str] = field(default_factory=list)


@contextlib.contextmanager
def watching(live) -> Iterator[Units]:
    engine = live.services.db.engine.sync_engine
    units = Units()

    def checkout(*_args):
        units.taken += 1
        units.held += 1
        units.most_held = max(units.most_held, units.held)

    def checkin(*_args):
        units.held -= 1

    def statement(_conn, _cursor, text, *_args):
        if not text.startswith(("BEGIN", "ROLLBACK", "COMMIT", "PRAGMA")):
            words = text.replace("(", " ").split()
            tables = sorted({words[i + 1] for i, w in enumerate(words[:-1]) if w in ("FROM", "JOIN", "UPDATE", "INTO")})
            units.statements.append(f"{words[0]} {'+'.join(tables)}")

    hooks = [(engine, "checkout", checkout), (engine, "checkin", checkin), (engine, "before_cursor_execute", statement)]
    for target, name, fn in hooks:
        event.listen(target, name, fn)
    try:
        yield units
    finally:
        for target, name, fn in hooks:
            event.remove(target, name, fn)


def test_one_read_unit_serves_every_field_of_a_request_and_ends_with_it(live):
    signer = as_user(live, "signer-2701000002")
    for i in range(3):
        assert create(live, signer, invoiceNumber=f"R-{i}")["errors"] == []
    create_sub(live, signer)
    query = """{ me { username registration { number } } subAccounts { username }
      applications(first: 5) { totalCount edges { node { invoiceNumber createdBy { username } goods { description } } } } }"""
    with watching(live) as units:
        body = live.graphql(query, headers=signer).json()
    assert "errors" not in body, body
    assert body["data"]["applications"]["totalCount"] == 3 and len(body["data"]["subAccounts"]) == 1
    assert units.taken == 1  # the viewer, the sub-IDs, the page and its goods: one unit of work
    assert units.held == 0  # given back before the response went out
    assert not any(s.startswith(("UPDATE", "INSERT", "DELETE")) for s in units.statements)

    # a field that fails does not leave the unit open
    with watching(live) as units:
        body = live.graphql("{ me { username } auditLog { totalCount } }", headers=signer).json()
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN" and body["data"] is None
    assert units.taken == 1 and units.held == 0


def test_a_mutation_payload_sees_its_own_write_and_no_read_unit_is_held_while_writing(live):
    signer = as_user(live, "signer-2701000002")
    app_id = create(live, signer, invoiceNumber="W-0")["application"]["id"]
    twice = """mutation($id: ID!) {
      first: updateApplication(input: {applicationId: $id, invoiceNumber: "W-1"}) { application { invoiceNumber } errors { code } }
      second: updateApplication(input: {applicationId: $id, invoiceNumber: "W-2",
        goods: [{description: "Sencha", quantity: "10 kg", hsCode: "0902.10", originCountry: "JP"}]}) {
        application { invoiceNumber goods { description } createdBy { username registration { number } } } errors { code } } }"""
    with watching(live) as units:
        body = live.graphql(twice, {"id": app_id}, headers=signer).json()
    assert "errors" not in body, body
    assert body["data"]["first"]["application"]["invoiceNumber"] == "W-1"
    second = body["data"]["second"]["application"]
    assert second["invoiceNumber"] == "W-2"
    assert second["goods"] == [{"description": "Sencha"}]  # loaded on demand after the write: the new lines
    assert second["createdBy"] == {"username": "signer-2701000002", "registration": {"number": "2701000002"}}
    assert units.most_held == 1  # the viewer's read ended before the use case took its write unit
    assert units.held == 0
    listed = live.graphql("{ applications(first: 1) { edges { node { invoiceNumber } } } }", headers=signer).json()
    assert listed["data"]["applications"]["edges"][0]["node"]["invoiceNumber"] == "W-2"


def test_a_relation_loaded_on_demand_is_one_statement_for_the_whole_page(live):
    signer = as_user(live, "signer-2701000002")
    for i in range(12):
        goods = [{"description": f"Item {i}-{n}", "quantity": "1", "hsCode": "0902.10", "originCountry": "JP"}
                 for n in range(i % 3 + 1)]
        assert create(live, signer, invoiceNumber=f"G-{i:02d}", goods=goods)["errors"] == []
    page = """query($first: Int) { applications(first: $first) { edges { node { invoiceNumber goods { description } } } } }"""

    def run(first: int) -> list[str]:
        with watching(live) as units:
            body = live.graphql(page, {"first": first}, headers=signer).json()
        assert "errors" not in body, body
        for edge in body["data"]["applications"]["edges"]:
            i = int(edge["node"]["invoiceNumber"][2:])
            assert [g["description"] for g in edge["node"]["goods"]] == [f"Item {i}-{n}" for n in range(i % 3 + 1)]
        assert len(body["data"]["applications"]["edges"]) == first
        return sorted(units.statements)

    four, twelve = run(4), run(12)
    assert four == twelve
    assert twelve.count("SELECT application_goods") == 1  # every application's lines in one statement
    assert len(twelve) == 4  # the viewer, the page, its accounts, the goods
