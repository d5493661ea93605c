"""Bulk filing over HTTP on SQLite and PostgreSQL: createApplications all or none with every
bad row named, submitApplications one outcome per id with coupons consumed exactly for those
that went through, idempotency keys (replay, reuse, a replay after a crash), two server
processes submitting overlapping ids (PostgreSQL), and the CSV import."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from persistence.db import Database
from persistence.models import Account, BulkRequest, BulkRequestItem, CouponEntry
from persistence.models import Application as ApplicationRow
from resolvers.applications import bulk, import_csv
from schema.identity import from_global_id
from tests.applications.test_applications import ORIGIN, act, balance, give_coupons
from tests.conftest import PG_BASE, RULES_DIR, _free_port, create_pg_schema, drop_pg_schema, require_postgres, tokyo
from tests.identity.test_subaccounts import as_user

CREATE_MANY = """mutation($rows: [CreateApplicationInput!]!, $key: String) {
  createApplications(input: {applications: $rows, idempotencyKey: $key}) {
    applications { id state invoiceNumber destinationCountry goods { hsCode } } errors { code field message } } }"""
SUBMIT_MANY = """mutation($ids: [ID!]!, $key: String) { submitApplications(input: {applicationIds: $ids, idempotencyKey: $key}) {
  results { applicationId application { id state receiptNumber } errors { code field message } } errors { code field message } } }"""


def rows(n: int, **changes) -> list[dict]:
    return [{**ORIGIN, "invoiceNumber": f"BULK-{i:03d}", **changes} for i in range(n)]


def create_many(live, headers, data, key=None):
    body = live.graphql(CREATE_MANY, {"rows": data, "key": key}, headers=headers).json()
    assert "errors" not in body, body
    return body["data"]["createApplications"]


def submit_many(live, headers, ids, key=None):
    body = live.graphql(SUBMIT_MANY, {"ids": ids, "key": key}, headers=headers).json()
    assert "errors" not in body, body
    return body["data"]["submitApplications"]


async def count(db, model=ApplicationRow, *where) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def uses(db) -> int:
    return await count(db, CouponEntry, CouponEntry.kind == "USE")


# --------------------------------------------------------------------------- createApplications


async def test_a_hundred_applications_in_one_call_and_a_hundred_and_one_refused(live, migrated):
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    made = create_many(live, signer, rows(100))
    assert made["errors"] == []
    apps = made["applications"]
    assert [a["invoiceNumber"] for a in apps] == [f"BULK-{i:03d}" for i in range(100)]  # in the order of the rows
    assert {a["state"] for a in apps} == {"DRAFT"} and apps[0]["goods"] == [{"hsCode": "090210"}]
    assert await count(db) == 100
    too_many = create_many(live, signer, rows(101))
    assert too_many["applications"] is None
    assert [(e["code"], e["field"]) for e in too_many["errors"]] == [("TOO_MANY_ITEMS", ["input", "applications"])]
    assert "100" in too_many["errors"][0]["message"]
    assert await count(db) == 100


async def test_every_bad_row_is_named_and_nothing_is_written(live, migrated):
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    data = rows(100)
    data[57]["destinationCountry"] = "ZZ"
    data[3]["invoiceNumber"] = " "
    data[99]["goods"] = [{**ORIGIN["goods"][0], "hsCode": "12"}]
    refused = create_many(live, signer, data)
    assert refused["applications"] is None
    assert sorted((e["code"], e["field"]) for e in refused["errors"]) == [
        ("INVALID", ["input", "applications", "57", "destinationCountry"]),
        ("INVALID", ["input", "applications", "99", "goods", "0", "hsCode"]),
        ("REQUIRED", ["input", "applications", "3", "invoiceNumber"]),
    ]
    assert await count(db) == 0


async def test_only_who_may_create_may_create_many(live):
    staff = as_user(live, "staff-2701")
    body = live.graphql(CREATE_MANY, {"rows": rows(2)}, headers=staff).json()
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert live.graphql(CREATE_MANY, {"rows": rows(1)}).json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


# --------------------------------------------------------------------------- submitApplications


async def test_seven_ids_and_five_coupons_submit_exactly_five(live, migrated):
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    ids = [a["id"] for a in create_many(live, signer, rows(7))["applications"]]
    give_coupons(live, 5)
    answer = submit_many(live, signer, ids)
    assert answer["errors"] == []
    results = answer["results"]
    assert [r["applicationId"] for r in results] == ids
    done = [r for r in results if not r["errors"]]
    assert len(done) == 5 and all(r["application"]["state"] == "SUBMITTED" for r in done)
    refused = [r for r in results if r["errors"]]
    assert [(r["application"], [(e["code"], e["field"]) for e in r["errors"]]) for r in refused] == [
        (None, [("INSUFFICIENT_COUPONS", ["input", "applicationIds", "5"])]),
        (None, [("INSUFFICIENT_COUPONS", ["input", "applicationIds", "6"])]),
    ]
    assert balance(live, signer) == 0
    assert await uses(db) == 5
    assert await count(db, ApplicationRow, ApplicationRow.state == "SUBMITTED") == 5


async def test_each_id_has_its_own_outcome(live, migrated):
    signer, other = as_user(live, "signer-2701000002"), as_user(live, "signer-2701000003")
    give_coupons(live, 3)
    mine = [a["id"] for a in create_many(live, signer, rows(2))["applications"]]
    theirs = create_many(live, other, rows(1))["applications"][0]["id"]
    act(live, signer, "submitApplication", mine[0])
    incomplete = create_many(live, signer, [{**ORIGIN, "goods": None}])["applications"][0]["id"]
    results = submit_many(live, signer, [mine[0], theirs, "bm90LWFuLWlk", incomplete, mine[1]])["results"]
    assert [[(e["code"], e["field"]) for e in r["errors"]] for r in results] == [
        [("INVALID_STATE", ["input", "applicationIds", "0"])],
        [("NOT_FOUND", ["input", "applicationIds", "1"])],  # another registration's: not even its existence
        [("NOT_FOUND", ["input", "applicationIds", "2"])],
        [("REQUIRED", ["input", "applicationIds", "3", "goods"])],
        [],
    ]
    assert "申請中" in results[0]["errors"][0]["message"]
    assert results[4]["application"]["state"] == "SUBMITTED"
    assert balance(live, signer) == 1


async def test_the_list_is_refused_whole_when_an_id_repeats_or_it_is_too_long(live, migrated):
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    give_coupons(live, 3)
    ids = [a["id"] for a in create_many(live, signer, rows(2))["applications"]]
    repeated = submit_many(live, signer, [ids[0], ids[1], ids[0]])
    assert repeated["results"] == [] and [(e["code"], e["field"]) for e in repeated["errors"]] == [
        ("INVALID", ["input", "applicationIds", "2"])]
    too_many = submit_many(live, signer, [f"id-{i}" for i in range(101)])
    assert [(e["code"], e["field"]) for e in too_many["errors"]] == [("TOO_MANY_ITEMS", ["input", "applicationIds"])]
    assert await uses(db) == 0
    staff = as_user(live, "staff-2701")
    assert live.graphql(SUBMIT_MANY, {"ids": ids}, headers=staff).json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_one_application_named_three_ways_is_a_repeated_id(live, migrated):
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    give_coupons(live, 3)
    app_id = create_many(live, signer, rows(1))["applications"][0]["id"]
    decoded = from_global_id(app_id)
    assert decoded is not None
    padded = base64.urlsafe_b64encode(f"Application:{decoded[1]:04d}".encode()).decode()  # leading zeros, "=" kept
    answer = submit_many(live, signer, [app_id, app_id + "=", padded])
    assert answer["results"] == [] and [(e["code"], e["field"]) for e in answer["errors"]] == [
        ("INVALID", ["input", "applicationIds", "1"]), ("INVALID", ["input", "applicationIds", "2"])]
    assert await uses(db) == 0
    # ids that name nothing are not repeats of each other: each keeps its own NOT_FOUND
    junk = submit_many(live, signer, ["bm90LWFuLWlk", "not an id", app_id])
    assert [[(e["code"], e["field"]) for e in r["errors"]] for r in junk["results"]] == [
        [("NOT_FOUND", ["input", "applicationIds", "0"])], [("NOT_FOUND", ["input", "applicationIds", "1"])], []]
    assert await uses(db) == 1


# --------------------------------------------------------------------------- idempotency keys


async def test_a_replay_answers_the_same_and_consumes_nothing_more(live, migrated):
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    first = create_many(live, signer, rows(7), key="erp-batch-1")
    again = create_many(live, signer, rows(7), key="erp-batch-1")
    assert again == first and await count(db) == 7
    reused = create_many(live, signer, rows(6), key="erp-batch-1")
    assert [(e["code"], e["field"]) for e in reused["errors"]] == [("IDEMPOTENCY_KEY_REUSED", ["input", "idempotencyKey"])]
    assert await count(db) == 7

    ids = [a["id"] for a in first["applications"]]
    give_coupons(live, 5)
    submitted = submit_many(live, signer, ids, key="erp-submit-1")
    assert sum(1 for r in submitted["results"] if not r["errors"]) == 5
    give_coupons(live, 2)  # more coupons now: a replay still answers what was recorded
    replayed = submit_many(live, signer, ids, key="erp-submit-1")
    assert replayed == submitted
    assert await uses(db) == 5 and balance(live, signer) == 2
    other = submit_many(live, signer, ids[:6], key="erp-submit-1")
    assert other["results"] == [] and other["errors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert submit_many(live, signer, ids, key="")["errors"][0]["code"] == "INVALID"
    # a key is the account's own: another signer's same key is another request
    assert create_many(live, as_user(live, "signer2-2701000002"), rows(1), key="erp-batch-1")["errors"] == []


async def test_a_replay_after_a_crash_answers_what_was_recorded_and_does_the_rest(live, migrated):
    """A run that died after its first id: the request and that id's outcome are there (written
    in that id's own transaction), the rest not; the replay submits only the rest."""
    _target, db = migrated
    signer = as_user(live, "signer-2701000002")
    ids = [a["id"] for a in create_many(live, signer, rows(3))["applications"]]
    give_coupons(live, 3)
    act(live, signer, "submitApplication", ids[0])
    async with db.write() as tx:
        account_id = await tx.scalar(select(Account.id).where(Account.username == "signer-2701000002"))
        request = BulkRequest(account_id=account_id, kind="SUBMIT", key="crashed", created_at=tokyo(2026, 4, 1, 10, 0),
                              fingerprint=bulk._fingerprint(ids))
        tx.add(request)
        await tx.flush()
        tx.add(BulkRequestItem(request_id=request.id, position=0, application_id=from_global_id(ids[0])[1],
                               recorded_at=tokyo(2026, 4, 1, 10, 0)))
    results = submit_many(live, signer, ids, key="crashed")["results"]
    assert [r["errors"] for r in results] == [[], [], []]
    assert [r["application"]["state"] for r in results] == ["SUBMITTED"] * 3
    assert await uses(db) == 3 and balance(live, signer) == 0
    assert await count(db, BulkRequestItem) == 3


# --------------------------------------------------------------------------- two processes (PostgreSQL)

TRADECERT = str(Path(sys.executable).parent / "tradecert")


class Server:
    """``tradecert serve`` on a PostgreSQL schema shared with the other process."""

    def __init__(self, workdir: Path, schema: str, rules: Path, demo: bool) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("TRADECERT_")}
        env = {**inherited, "TRADECERT_DATABASE_URL": PG_BASE, "TRADECERT_DATABASE_SCHEMA": schema,
               "TRADECERT_RULES_DIR": str(rules), "TRADECERT_RULES_POLL_SECONDS": "0", "TRADECERT_RUN_JOBS": "0",
               "TRADECERT_SIGNING_KEY_FILE": str(workdir / "signing-key.pem"),
               "TRADECERT_NACCS_KEY_FILE": str(workdir / "naccs-fernet.key"), "TRADECERT_LOG_LEVEL": "WARNING"}
        self.log = open(workdir / f"serve-{self.port}.log", "w", encoding="utf-8")
        self.process = subprocess.Popen([TRADECERT, "serve", *(["--demo"] if demo else []), "--port", str(self.port)],
                                        env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while True:
            assert self.process.poll() is None, (workdir / f"serve-{self.port}.log").read_text()
            try:
                if httpx.post(f"{self.base}/graphql", json={"query": "{ feeSchedule { on } }"}, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve did not answer in 120 s"
            time.sleep(0.3)

    def graphql(self, query: str, variables: dict, headers: dict | None = None) -> dict:
        response = httpx.post(f"{self.base}/graphql", json={"query": query, "variables": variables}, headers=headers or {},
                              timeout=120)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


LOGIN = """mutation($u: String!) { login(input: {chamberCode: "2701", username: $u, password: "demo-pass-2701"}) { token } }"""
ADJUST = """mutation($c: Int!) { adjustCoupons(input: {registrationNumber: "2701000002", coupons: $c, reason: "並行試験"}) {
  errors { code } } }"""


@pytest.mark.postgres
async def test_two_processes_submitting_overlapping_ids_consume_exactly_the_balance(tmp_path):
    require_postgres()
    schema = await create_pg_schema()
    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    servers: list[Server] = []
    try:
        servers.append(await asyncio.to_thread(Server, tmp_path, schema, rules, True))  # migrates and seeds
        servers.append(await asyncio.to_thread(Server, tmp_path, schema, rules, False))
        first, second = servers

        def bearer(username: str) -> dict:
            return {"Authorization": f"Bearer {first.graphql(LOGIN, {'u': username})['login']['token']}"}

        signer, staff = bearer("signer-2701000002"), bearer("staff-2701")
        for round_ in range(3):
            made = first.graphql(CREATE_MANY, {"rows": rows(12)}, signer)["createApplications"]
            ids = [a["id"] for a in made["applications"]]
            assert first.graphql(ADJUST, {"c": 7}, staff)["adjustCoupons"]["errors"] == []
            # the first process takes ids 0–8, the second 3–11, at the same time: 6 ids in both
            with ThreadPoolExecutor(max_workers=2) as pool:
                calls = [pool.submit(first.graphql, SUBMIT_MANY, {"ids": ids[:9]}, signer),
                         pool.submit(second.graphql, SUBMIT_MANY, {"ids": ids[3:]}, signer)]
                answers = [c.result()["submitApplications"] for c in calls]
            outcomes = [r for a in answers for r in a["results"]]
            codes = {e["code"] for r in outcomes for e in r["errors"]}
            assert codes <= {"INSUFFICIENT_COUPONS", "INVALID_STATE"}, (round_, answers)
            submitted = [r["applicationId"] for r in outcomes if not r["errors"]]
            assert len(submitted) == len(set(submitted)) == 7, (round_, answers)
        db = Database(PG_BASE, schema=schema)
        try:
            async with db.read() as session:
                use_entries = (await session.execute(select(CouponEntry.external_key, CouponEntry.coupons)
                                                     .where(CouponEntry.kind == "USE"))).all()
                states = (await session.execute(select(ApplicationRow.state, ApplicationRow.coupon_uses))).all()
        finally:
            await db.dispose()
        assert len(use_entries) == 21 and all(coupons == -1 for _key, coupons in use_entries)
        assert all(key.endswith(":1") for key, _ in use_entries)  # each application used one coupon, once
        assert sorted(uses_ for state, uses_ in states if state == "SUBMITTED") == [1] * 21
        assert all(uses_ == 0 for state, uses_ in states if state == "DRAFT")
        balance_now = first.graphql("{ couponAccount { balance } }", {}, signer)["couponAccount"]["balance"]
        assert balance_now == 0
    finally:
        for server in servers:
            await asyncio.to_thread(server.stop)
        await drop_pg_schema(schema)



# --------------------------------------------------------------------------- tradecert applications import

HEADER = ("type,destinationCountry,goodsCategory,invoiceNumber,exporterName,feePayment,consignee,transport,personInCharge,"
          "goods1Description,goods1Quantity,goods1HsCode,goods1OriginCountry,goods2Description,goods2Quantity,goods2HsCode,"
          "goods2OriginCountry\n")
GOOD = HEADER + (
    'ORIGIN_JAPANESE,US,食品,CSV-001,加古川自然食品株式会社,COUPON,"ACME Trading Inc., Seattle",By sea,ツァイス,'
    '"緑茶(抹茶), 100 g 缶","1,200 tins",0902.10,JP,ほうじ茶,300 kg,090230,jp\n'
    "インボイス証明,DE,一般機械,CSV-002,加古川自然食品株式会社,カード,,,,,,,,,,,\n"
    ",,,,,,,,,,,,,,,,\n"  # an emptied row, as Excel writes it
    "SIGNATURE,SG,食品,CSV-003,加古川自然食品株式会社,CARD,,,,,,,,,,,\n")


def run_import(target, path: Path, *args: str) -> subprocess.CompletedProcess:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("TRADECERT_")}
    env = {**inherited, "TRADECERT_DATABASE_URL": target.url, "TRADECERT_RULES_DIR": str(RULES_DIR),
           "COLUMNS": "80", **({"TRADECERT_DATABASE_SCHEMA": target.schema} if target.schema else {})}
    return subprocess.run([TRADECERT, "applications", "import", str(path), *args], env=env, capture_output=True,
                          text=True, timeout=120)


async def invoices(db) -> list[str]:
    async with db.read() as session:
        return list((await session.scalars(select(ApplicationRow.invoice_number).order_by(ApplicationRow.id))).all())


async def test_a_csv_file_with_a_bom_is_filed_in_one_go_and_once(migrated, tmp_path):
    target, db = migrated
    path = tmp_path / "orders.csv"
    path.write_bytes(GOOD.encode("utf-8-sig"))  # Excel's "CSV UTF-8"
    done = await asyncio.to_thread(run_import, target, path, "--as", "signer-2701000002")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "orders.csv (utf-8): 3 application(s) filed as signer-2701000002"
    assert [line.split(":")[0] for line in lines[1:]] == ["line 2", "line 3", "line 5"]
    assert all(len(line) <= 80 for line in lines)
    assert await invoices(db) == ["CSV-001", "CSV-002", "CSV-003"]
    async with db.read() as session:
        first = await session.scalar(select(ApplicationRow).where(ApplicationRow.invoice_number == "CSV-001"))
        assert first is not None and (first.type, first.fee_payment, first.consignee) == (
            "ORIGIN_JAPANESE", "COUPON", "ACME Trading Inc., Seattle")
        second = await session.scalar(select(ApplicationRow).where(ApplicationRow.invoice_number == "CSV-002"))
        assert second is not None and (second.type, second.fee_payment) == ("INVOICE", "CARD")
    again = await asyncio.to_thread(run_import, target, path, "--as", "signer-2701000002")
    assert again.returncode == 0 and again.stdout == done.stdout  # the same file again: the same applications
    assert len(await invoices(db)) == 3


async def test_a_shift_jis_file_from_japanese_excel_is_read(migrated, tmp_path):
    target, db = migrated
    path = tmp_path / "sjis.csv"
    path.write_bytes(GOOD.replace("CSV-", "SJIS-").encode("cp932"))
    as_utf8 = await asyncio.to_thread(run_import, target, path, "--as", "signer-2701000002", "--encoding", "utf-8",
                                      "--language", "en")
    assert as_utf8.returncode == 1 and as_utf8.stderr.startswith("sjis.csv: not utf-8 (byte "), as_utf8.stderr
    done = await asyncio.to_thread(run_import, target, path, "--as", "signer-2701000002")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("sjis.csv (cp932): 3 application(s)")
    async with db.read() as session:
        names = (await session.scalars(select(ApplicationRow.goods_category).order_by(ApplicationRow.id))).all()
    assert list(names) == ["食品", "一般機械", "食品"]


async def test_a_file_with_problems_names_each_line_and_column_and_files_nothing(migrated, tmp_path):
    target, db = migrated
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + (
        "ORIGIN_JAPANESE,ZZ,食品,BAD-001,加古川自然食品株式会社,COUPON,ACME,By sea,,Green tea,100 kg,09,JP,,,,\n"
        "INVOICE,US,,BAD-002,加古川自然食品株式会社,CASH,,,,,,,,,,,\n"
        "INVOICE,US,機械,BAD-003,加古川自然食品株式会社,CARD,,,,,,,,,,,\n"), encoding="utf-8")
    refused = await asyncio.to_thread(run_import, target, path, "--as", "signer-2701000002", "--language", "en")
    assert refused.returncode == 1 and refused.stdout == ""
    text = refused.stderr.replace("\n", " ")
    for expected in ("line 2, column B (destinationCountry): Destination country",
                     "line 2, column L (goods1HsCode): HS code", "line 3, column C (goodsCategory): Main goods category is required",
                     "line 3, column F (feePayment): Payment method", "4 problem(s); nothing was filed"):
        assert expected in text, refused.stderr
    assert "line 4" not in text
    assert all(len(line) <= 80 for line in refused.stderr.splitlines())
    assert await invoices(db) == []
    path.write_text("type,destination,invoiceNumber\nINVOICE,US,X\n", encoding="utf-8")
    header = await asyncio.to_thread(run_import, target, path, "--as", "signer-2701000002", "--language", "en")
    assert header.returncode == 1 and "line 1, column B (destination): unknown column" in header.stderr.replace("\n", " ")
    nobody = await asyncio.to_thread(run_import, target, path, "--as", "nobody-here")
    assert nobody.returncode == 1 and "no account with the login name 'nobody-here'" in nobody.stderr
    path.write_text(HEADER + "INVOICE,US,機械,X-1,加古川自然食品株式会社,CARD,,,,,,,,,,,\n", encoding="utf-8")
    for who in ("admin-2701000002", "staff-2701"):  # IDs that file nothing: one line, no traceback
        refused = await asyncio.to_thread(run_import, target, path, "--as", who, "--language", "en")
        assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
        assert refused.stderr.strip() == f"Error: {who}: Not allowed: this kind of ID may not do this (see docs/api.md, who may do what)."
    assert await invoices(db) == []


async def test_import_with_submit_prints_the_receipt_numbers(migrated, tmp_path):
    target, db = migrated
    path = tmp_path / "cards.csv"
    path.write_text(HEADER + "".join(f"INVOICE,US,機械,CARD-{i},加古川自然食品株式会社,CARD,,,,,,,,,,,\n" for i in range(2))
                    + "INVOICE,US,機械,COUPON-1,加古川自然食品株式会社,COUPON,,,,,,,,,,,\n", encoding="utf-8")
    done = await asyncio.to_thread(run_import, target, path, "--as", "signer-2701000002", "--submit", "--language", "en")
    assert done.returncode == 3, done.stderr  # the coupon one: no coupons
    assert "line 2: CARD-0 submitted, receipt 000000001" in done.stdout
    assert "line 3: CARD-1 submitted, receipt 000000002" in done.stdout
    assert "line 4: COUPON-1 not submitted: Not enough coupons" in done.stderr.replace("\n", " ")
    async with db.read() as session:
        states = (await session.scalars(select(ApplicationRow.state).order_by(ApplicationRow.id))).all()
    assert list(states) == ["SUBMITTED", "SUBMITTED", "DRAFT"]


# --------------------------------------------------------------------------- what a broken file prints (no database)

ROW = "INVOICE,US,machines,X-{n},Kakogawa Foods,CARD,,,,,,,,,,,\n"


def problems_of(data: bytes, encoding: str = "auto") -> list[str]:
    """The problems the import reports for ``data`` before any database is asked, in English."""
    with pytest.raises(import_csv.CsvRefused) as caught:
        import_csv.parse(import_csv.decode(data, encoding)[0])
    return [p.text("en") for p in caught.value.problems]


def test_a_cell_over_the_csv_field_limit_is_one_line_naming_it():
    data = HEADER + ROW.format(n=1) + "INVOICE,US,machines,X-2," + "x" * 5_000_000 + ",CARD,,,,,,,,,,,\n"
    assert problems_of(data.encode()) == ["line 3: a cell is longer than 131,072 characters"]


def test_an_unterminated_quote_is_named_where_it_opens():
    data = HEADER + ROW.format(n=1) + 'INVOICE,US,"machines,X-2,Kakogawa Foods,CARD,,,,,,,,,,,\n' + ROW.format(n=3)
    assert problems_of(data.encode()) == ["line 3: a quote opened here is never closed"]
    after = HEADER + ROW.format(n=1) + ROW.format(n=2) + 'INVOICE,US,"machines" x,X-3,Kakogawa Foods,CARD,,,,,,,,,,,\n'
    assert problems_of(after.encode()) == ["line 4: a quoted cell goes on after its closing quote"]


def test_a_header_wider_than_the_layout_is_refused_at_once():
    data = ",".join(f"c{i}" for i in range(200_000)) + "\n" + ROW.format(n=1)
    assert problems_of(data.encode()) == ["line 1: 200,000 columns; the layout has at most 406"]
    long_name = HEADER.replace("personInCharge", "p" * 5000)
    [problem] = problems_of((long_name + ROW.format(n=1)).encode())
    assert problem.startswith("line 1, column I (" + "p" * 40 + "…): unknown column")  # an echoed cell is cut short


def test_auto_reads_shift_jis_only_when_it_holds_a_double_byte_character():
    stray = (HEADER + ROW.format(n=1)).encode().replace(b"Kakogawa Foods", b"Kakogawa\xff\xa0Foods")
    at = stray.index(b"\xff") + 1
    assert problems_of(stray) == [f"not UTF-8 (byte {at}); if the file is Shift_JIS, use --encoding cp932"]
    assert import_csv.decode(stray, "cp932")[1] == "cp932"  # named, it is read as named
    for named in ("auto", "utf-8"):  # a BOM says UTF-8; the byte is counted in the file, its BOM too
        assert problems_of(b"\xef\xbb\xbf" + stray, named) == [f"not utf-8 (byte {at + 3})"]
    assert import_csv.decode(GOOD.encode("cp932"))[1] == "cp932"  # Japanese Excel's file: kanji and kana
    half_width = (HEADER + ROW.format(n=1).replace("Kakogawa Foods", "ｶｺｶﾞﾜｼｮｸﾋﾝ")).encode("cp932")
    assert problems_of(half_width)[0].startswith("not UTF-8 (byte ")  # one-byte katakana alone: name the encoding
    assert "ｶｺｶﾞﾜｼｮｸﾋﾝ" in import_csv.decode(half_width, "cp932")[0]


async def test_what_the_import_prints_is_escaped_and_capped(migrated, tmp_path):
    target, db = migrated
    path = tmp_path / "hostile.csv"
    path.write_text(HEADER.replace("personInCharge", "\x1b]0;owned\x07\x1b[2J\u202eperson\x00")
                    + ROW.format(n=1), encoding="utf-8")
    shown = await asyncio.to_thread(run_import, target, path, "--as", "signer-2701000002", "--language", "en")
    assert shown.returncode == 1 and shown.stdout == ""
    assert not any(c in shown.stderr for c in "\x1b\x07\x00\u202e"), repr(shown.stderr)
    assert "(\\x1b]0;owned\\x07\\x1b[2J\\u202eperson\\x00): unknown" in shown.stderr, shown.stderr
    many = HEADER.rstrip("\n") + "".join(f",extra{i}" for i in range(300)) + "\n" + ROW.format(n=1)
    path.write_text(many, encoding="utf-8")
    capped = await asyncio.to_thread(run_import, target, path, "--as", "signer-2701000002", "--language", "en")
    lines = capped.stderr.splitlines()
    assert capped.returncode == 1 and sum("unknown column" in line for line in lines) == 50, capped.stderr
    assert lines[-2:] == ["hostile.csv: … and 250 more problems", "hostile.csv: 300 problem(s); nothing was filed"]
    path.write_text(",".join(f"c{i}" for i in range(200_000)) + "\n", encoding="utf-8")
    wide = await asyncio.to_thread(run_import, target, path, "--as", "signer-2701000002", "--language", "en")
    assert wide.returncode == 1 and wide.stderr.splitlines() == [
        "hostile.csv: line 1: 200,000 columns; the layout has at most 406", "hostile.csv: 1 problem(s); nothing was filed"]
    path.write_text(HEADER + "INVOICE,US,\"" + "x" * 5_000_000 + "\n", encoding="utf-8")
    huge = await asyncio.to_thread(run_import, target, path, "--as", "signer-2701000002", "--language", "en")
    assert huge.returncode == 1 and "Traceback" not in huge.stderr
    assert huge.stderr.splitlines()[0] == "hostile.csv: line 2: a cell is longer than 131,072 characters", huge.stderr
    assert await invoices(db) == []
