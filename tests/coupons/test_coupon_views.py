"""Coupon pages read set-based: the history, the orders and their relations cost a fixed
number of statements whatever the page size (no statement per row), on SQLite and PostgreSQL."""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event

from tests.coupons.test_purchases import CHECK, deposit, start
from tests.identity.test_subaccounts import as_user

ADJUST = """mutation($c: Int!) { adjustCoupons(input: {registrationNumber: "2701000002", coupons: $c, reason: "お詫び"}) {
  errors { code } } }"""
CANCEL = "mutation($id: ID!) { cancelCouponPurchase(input: {purchaseId: $id}) { purchase { status } errors { code } } }"
PAGES = """query($first: Int) { couponAccount { balance registration { number membership chamber { name } }
  history(first: $first) { totalCount edges { node { kind coupons actor { username registration { number } } } } }
  purchases(first: $first) { totalCount edges { node { orderNumber status transferRequestPdfUrl paymentUrl
    lines { productCode amount } virtualAccount { accountNumber } buyer { username } } } } } }"""
HISTORY = """query($first: Int) { couponAccount { history(first: $first) { edges { node { kind
  purchase { orderNumber status lines { amount } buyer { username } } } } } } }"""


@contextmanager
def statements_of(live):
    """The statements the server runs meanwhile, as "SELECT table+table" (BEGIN/COMMIT left out)."""
    engine = live.services.db.engine.sync_engine
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        if not statement.startswith(("BEGIN", "ROLLBACK", "COMMIT")):
            words = statement.replace("(", " ").split()
            tables = sorted({words[i + 1] for i, word in enumerate(words[:-1]) if word in ("FROM", "JOIN")})
            seen.append(f"{words[0]} {'+'.join(tables)}")

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_a_page_of_twenty_entries_and_orders_costs_the_statements_of_a_page_of_five(live):
    staff, signer = as_user(live, "staff-2701"), as_user(live, "signer-2701000002")
    for _ in range(21):
        assert live.graphql(ADJUST, {"c": 1}, headers=staff).json()["data"]["adjustCoupons"]["errors"] == []
        order = start(live, signer, lines=[{"productCode": "SINGLE", "quantity": 1}])["purchase"]
        assert live.graphql(CANCEL, {"id": order["id"]}, headers=signer).json()["data"]["cancelCouponPurchase"]["errors"] == []

    def page(first):
        with statements_of(live) as seen:
            account = live.graphql(PAGES, {"first": first}, headers=signer).json()["data"]["couponAccount"]
        assert len(account["history"]["edges"]) == len(account["purchases"]["edges"]) == first
        assert all(e["node"]["actor"]["username"] == "staff-2701" for e in account["history"]["edges"])
        assert all(e["node"]["buyer"]["username"] == "signer-2701000002" and e["node"]["lines"] and e["node"]["virtualAccount"]
                   for e in account["purchases"]["edges"])
        return sorted(seen)

    five, twenty = page(5), page(20)
    assert five == twenty, (five, twenty)
    # the page and its total per list, one statement per relation (lines, virtual accounts, buyers, actors)
    assert sum(s.startswith("SELECT coupon_purchase_lines") for s in twenty) == 1
    assert sum(s.startswith("SELECT coupon_entries") for s in twenty) == 2


def test_the_orders_of_history_entries_load_in_one_batch(live):
    staff, signer = as_user(live, "staff-2701"), as_user(live, "signer-2701000002")
    assert live.graphql(ADJUST, {"c": 1}, headers=staff).json()["data"]["adjustCoupons"]["errors"] == []
    orders = []
    for i in range(3):
        order = start(live, signer, lines=[{"productCode": "SINGLE", "quantity": 1}])["purchase"]
        deposit(live, staff, order["virtualAccount"]["accountNumber"], 1210, f"INQ-{i}")
        checked = live.graphql(CHECK, {"id": order["id"]}, headers=staff).json()["data"]["checkPurchasePayment"]
        assert checked["purchase"]["status"] == "ISSUED", checked
        orders.append(order["orderNumber"])

    def history(first):
        with statements_of(live) as seen:
            edges = live.graphql(HISTORY, {"first": first}, headers=signer).json()["data"]["couponAccount"]["history"]["edges"]
        return [(e["node"]["purchase"] or {}).get("orderNumber") for e in edges], sorted(seen)

    (one, one_statements), (four, four_statements) = history(1), history(4)
    assert one == orders[-1:] and four == [*orders[::-1], None]  # the oldest entry is the chamber's addition
    assert one_statements == four_statements, (one_statements, four_statements)
