"""Benchmark over real HTTP with wrk: one uvicorn worker per server, ratios against
baselines served over HTTP in the same run, interleaved rounds, medians of per-round ratios.

    .venv/bin/python bench/over_http.py [--rounds 5] [--seconds 2] [--connections 8] [--only fees,me] [--json out.json]

About 3 minutes with the defaults. Each round measures every case between two
measurements of its baseline (A-B-A) and divides by their mean; the table shows medians
over the rounds of those ratios, and also of the *CPU ratio* — the baseline server's CPU
time per request over the case's (from /proc), which moves much less than wall-clock
rates when other work shares the machine.

Three server processes run at once on loopback (each one uvicorn worker; wrk uses the
other core), only one of them under load at a time:

* **tradecert**: ``tradecert serve`` on a temporary SQLite file with the demo data, 25
  draft applications and 3 sub-IDs of ``signer-2701000002`` (jobs off, everything else at
  its defaults: logging, rules polling, limits, error masking, metrics).
* **baseline**: the same Starlette stack and settings — the same middleware (request id,
  access log and HTTP metrics, URL guard, CSRF guard), the same GraphQL view (JSON body
  guard, per-request ``Context``), the same logging and uvicorn options — serving a
  strawberry schema with parser and validation caches and two fields: ``hello`` and an
  in-memory ``applications`` page built from tradecert's own answer to the P2 query (so
  the same 20 items, the same shape and response size; plain synchronous types).
* **bare** (for reference only): strawberry's ASGI app on Starlette, no middleware, no
  logging; it shows what the shared stack costs.

Cases and targets (issue 11): P1 ``feeSchedule`` (the full schedule a client shows,
docs/api.md) >= 0.8 of ``{ hello }``; ``me`` and ``subAccounts`` (real session token) >= 0.6
of ``{ hello }``; P2 ``applications(first: 20)`` with registration{number membership
chamber{name}}, createdBy, signer >= 0.6 of the in-memory page. Every wrk response is
checked: a non-200 status or a top-level ``errors`` entry counts as bad and fails the run.
"""

from __future__ import annotations

import sys
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(_BENCH.parent))

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Mapping  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from enum import Enum  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import strawberry  # noqa: E402
from strawberry.extensions import ParserCache, ValidationCache  # noqa: E402

PROJECT = _BENCH.parent
VENV_BIN = Path(sys.executable).parent
DEMO_USER = ("2701", "signer-2701000002", "demo-pass-2701")  # docs/api.md

# What a client sends to show the fee table (docs/api.md "Fees", README): both memberships'
# application fees and coupon products, every registration fee, the tax rate.
FEE_SCHEDULE = """query FeeSchedule($on: Date) { feeSchedule(on: $on) {
  on rulesVersion
  member: applicationFee(membership: MEMBER) nonMember: applicationFee(membership: NON_MEMBER)
  memberProducts: couponProducts(membership: MEMBER) { code name coupons price faceValue tax }
  nonMemberProducts: couponProducts(membership: NON_MEMBER) { code name coupons price faceValue tax }
  applicantMember: registrationFee(kind: APPLICANT, membership: MEMBER)
  applicantNonMember: registrationFee(kind: APPLICANT, membership: NON_MEMBER)
  agentMember: registrationFee(kind: AGENT, membership: MEMBER)
  agentNonMember: registrationFee(kind: AGENT, membership: NON_MEMBER)
  taxRatePercent } }"""
FEE_ONE = '{ feeSchedule(on: "2026-04-01") { applicationFee(membership: MEMBER) } }'  # docs/performance.md's old case
ME = "query Me { me { id kind username name status registration { number name membership } } }"
SUB_ACCOUNTS = "query SubAccounts { subAccounts { id username name email status } }"
PAGE = """query Applications { applications(first: 20) { totalCount edges { node {
  receiptNumber state invoiceNumber fee
  registration { number name membership chamber { name } }
  createdBy { username name } signer { username name } } } } }"""
HELLO = "{ hello }"


# --------------------------------------------------------------------------- the baseline servers


@strawberry.enum(name="ApplicationState")
class MemState(Enum):
    DRAFT = "DRAFT"
    SUBMITTED = "SUBMITTED"
    ON_HOLD = "ON_HOLD"
    APPROVED = "APPROVED"
    ISSUED = "ISSUED"
    WITHDRAWN = "WITHDRAWN"


@strawberry.enum(name="Membership")
class MemMembership(Enum):
    MEMBER = "MEMBER"
    NON_MEMBER = "NON_MEMBER"


@strawberry.type(name="Chamber")
class MemChamber:
    name: str


@strawberry.type(name="TradeRegistration")
class MemRegistration:
    number: str
    name: str
    membership: MemMembership
    chamber: MemChamber


@strawberry.type(name="Account")
class MemAccount:
    username: str
    name: str


@strawberry.type(name="Application")
class MemApplication:
    receipt_number: str | None
    state: MemState
    invoice_number: str
    fee: int | None
    registration: MemRegistration
    created_by: MemAccount
    signer: MemAccount


@strawberry.type(name="ApplicationEdge")
class MemEdge:
    node: MemApplication


@strawberry.type(name="ApplicationConnection")
class MemConnection:
    total_count: int
    edges: list[MemEdge]


def memory_page(page_file: str | None) -> MemConnection:
    """tradecert's own answer to PAGE, as plain objects."""
    if not page_file:
        return MemConnection(total_count=0, edges=[])
    data = json.loads(Path(page_file).read_text(encoding="utf-8"))["data"]["applications"]
    return MemConnection(total_count=data["totalCount"], edges=[MemEdge(node=MemApplication(
        receipt_number=n["receiptNumber"], state=MemState(n["state"]), invoice_number=n["invoiceNumber"], fee=n["fee"],
        registration=MemRegistration(number=n["registration"]["number"], name=n["registration"]["name"],
                                     membership=MemMembership(n["registration"]["membership"]),
                                     chamber=MemChamber(name=n["registration"]["chamber"]["name"])),
        created_by=MemAccount(**n["createdBy"]), signer=MemAccount(**n["signer"]))) for n in (e["node"] for e in data["edges"])])


_PAGE = MemConnection(total_count=0, edges=[])


@strawberry.enum(name="RegistrationKind")
class MemKind(Enum):
    APPLICANT = "APPLICANT"
    AGENT = "AGENT"


@strawberry.type(name="CouponProduct")
class MemProduct:
    code: str
    name: str
    coupons: int
    price: int
    face_value: int
    tax: int


@strawberry.type(name="FeeSchedule")
class MemFeeSchedule:
    """The floor of P1: the same fields and arguments, answered from dictionaries."""

    on: dt.date
    rules_version: str
    tax_rate_percent: int
    fees: strawberry.Private[dict[str, int]]
    products: strawberry.Private[dict[str, list[MemProduct]]]
    registration: strawberry.Private[dict[tuple[str, str], int | None]]

    @strawberry.field
    def application_fee(self, membership: MemMembership) -> int:
        return self.fees[membership.value]

    @strawberry.field
    def coupon_products(self, membership: MemMembership) -> list[MemProduct]:
        return self.products[membership.value]

    @strawberry.field
    def registration_fee(self, kind: MemKind, membership: MemMembership) -> int | None:
        return self.registration[kind.value, membership.value]


def _product(p: dict[str, Any]) -> MemProduct:
    return MemProduct(code=p["code"], name=p["name"], coupons=p["coupons"], price=p["price"], face_value=p["faceValue"],
                      tax=p["tax"])


def memory_fees(fees_file: str | None) -> MemFeeSchedule:
    """tradecert's own answer to FEE_SCHEDULE, as plain objects."""
    if not fees_file:
        return MemFeeSchedule(on=dt.date(2026, 4, 1), rules_version="", tax_rate_percent=0, fees={}, products={},
                              registration={})
    d = json.loads(Path(fees_file).read_text(encoding="utf-8"))["data"]["feeSchedule"]
    return MemFeeSchedule(
        on=dt.date.fromisoformat(d["on"]), rules_version=d["rulesVersion"], tax_rate_percent=d["taxRatePercent"],
        fees={"MEMBER": d["member"], "NON_MEMBER": d["nonMember"]},
        products={"MEMBER": [_product(p) for p in d["memberProducts"]],
                  "NON_MEMBER": [_product(p) for p in d["nonMemberProducts"]]},
        registration={("APPLICANT", "MEMBER"): d["applicantMember"], ("APPLICANT", "NON_MEMBER"): d["applicantNonMember"],
                      ("AGENT", "MEMBER"): d["agentMember"], ("AGENT", "NON_MEMBER"): d["agentNonMember"]})


_FEES = memory_fees(None)


@strawberry.type
class BaselineQuery:
    @strawberry.field
    def hello(self) -> str:
        return "world"

    @strawberry.field
    def applications(self, first: int | None = None, after: str | None = None) -> MemConnection:
        return _PAGE

    @strawberry.field
    def fee_schedule(self, on: dt.date | None = None) -> MemFeeSchedule:
        return _FEES


def baseline_schema(page_file: str | None, fees_file: str | None = None) -> strawberry.Schema:
    """``{ hello }``, an in-memory ``applications`` page and fee schedule (plain synchronous
    types), with the parser and validation caches ours has."""
    global _PAGE, _FEES
    _PAGE, _FEES = memory_page(page_file), memory_fees(fees_file)
    return strawberry.Schema(query=BaselineQuery, extensions=[lambda: ParserCache(maxsize=1024),
                                                              lambda: ValidationCache(maxsize=1024)])


def baseline_app(page_file: str | None, fees_file: str | None) -> Any:
    """tradecert's HTTP stack (tradecert/app.py: middleware, GraphQL view, Context) around the baseline schema."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from resolvers.core.settings import Settings
    from tradecert.app import CsrfGuard, RequestIdMiddleware, TradecertGraphQL
    from tradecert.composition import build_services
    from tradecert.request_guards import UrlGuard

    settings = Settings.from_env()
    services = build_services(settings)
    graphql = TradecertGraphQL(services, schema=baseline_schema(page_file, fees_file),
                               graphql_ide="graphiql" if settings.graphiql else None, allow_queries_via_get=False)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[Route("/healthz", healthz, methods=["GET"]), Route("/graphql", graphql)])
    app.add_middleware(CsrfGuard, settings=settings)
    app.add_middleware(UrlGuard)
    app.add_middleware(RequestIdMiddleware)
    return app


@strawberry.type
class HelloQuery:
    @strawberry.field
    def hello(self) -> str:
        return "world"


def bare_app() -> Any:
    from starlette.applications import Starlette
    from starlette.routing import Route
    from strawberry.asgi import GraphQL

    schema = strawberry.Schema(query=HelloQuery, extensions=[lambda: ParserCache(maxsize=1024), lambda: ValidationCache(maxsize=1024)])
    return Starlette(routes=[Route("/graphql", GraphQL(schema, allow_queries_via_get=False))])


def serve(kind: str, port: int, page_file: str | None, fees_file: str | None) -> None:
    """Run one baseline server in this process, as `tradecert serve` runs tradecert."""
    import uvicorn

    if kind == "bare":
        uvicorn.run(bare_app(), host="127.0.0.1", port=port, log_config=None, access_log=False, proxy_headers=False)
        return
    from resolvers.core.logs import configure_logging
    from resolvers.core.settings import Settings

    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_json)
    uvicorn.run(baseline_app(page_file, fees_file), host="127.0.0.1", port=port, log_config=None, proxy_headers=False)


# --------------------------------------------------------------------------- processes and data


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sqlite_url(path: Path) -> str:
    """The default database URL's driver (whatever the embedded default is) on another file."""
    from resolvers.core.settings import Settings

    default = Settings.from_env({}).database_url
    return f"{default.split(':///', 1)[0]}:///{path}"


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Workspace:
    """A temporary directory with a SQLite database holding the demo data, and the
    environment every server of the run shares."""

    root: Path
    env: dict[str, str]
    servers: list[Server] = field(default_factory=list)

    @classmethod
    def create(cls) -> Workspace:
        root = Path(tempfile.mkdtemp(prefix="tradecert-bench-http-"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRADECERT_")}
        env.update({
            "TRADECERT_DATABASE_URL": sqlite_url(root / "bench.db"),
            "TRADECERT_RULES_DIR": str(PROJECT / "rules"),
            "TRADECERT_RUN_JOBS": "0",  # scheduled jobs would write at random moments of a measurement
            "TRADECERT_SIGNING_KEY_FILE": str(root / "signing-key.pem"),
            "TRADECERT_NACCS_KEY_FILE": str(root / "naccs-fernet.key"),
            "PYTHONPATH": str(PROJECT),
        })
        try:
            subprocess.run([str(VENV_BIN / "tradecert"), "demo", "seed"], env=env, check=True, cwd=PROJECT,
                           stdout=subprocess.DEVNULL)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return cls(root, env)

    def start(self, name: str, command: list[str], extra_env: Mapping[str, str] | None = None) -> Server:
        port = free_port()
        log = self.root / f"{name}.log"
        env = {**self.env, **(extra_env or {})}
        command = [part.replace("{port}", str(port)) for part in command]
        with log.open("wb") as out:
            process = subprocess.Popen(command, env=env, cwd=PROJECT, stdout=out, stderr=subprocess.STDOUT)
        server = Server(name, f"http://127.0.0.1:{port}", process, log)
        self.servers.append(server)
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{name} server exited: {log.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.post(f"{server.url}/graphql", json={"query": "{ __typename }"}, timeout=2).status_code == 200:
                    return server
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} server did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)

    def start_tradecert(self, extra_env: Mapping[str, str] | None = None, command: list[str] | None = None) -> Server:
        return self.start("tradecert", command or [str(VENV_BIN / "tradecert"), "serve", "--host", "127.0.0.1",
                                                   "--port", "{port}"], extra_env)

    def start_baseline(self, kind: str, page_file: Path | None = None, fees_file: Path | None = None) -> Server:
        command = [sys.executable, "-m", "bench.over_http", "--serve", kind, "--port", "{port}"]
        if page_file:
            command += ["--page", str(page_file)]
        if fees_file:
            command += ["--fees", str(fees_file)]
        return self.start(kind, command)

    def close(self, keep: bool = False) -> None:
        for server in self.servers:
            server.stop()
        if not keep:
            shutil.rmtree(self.root, ignore_errors=True)


def graphql(url: str, query: str, variables: Mapping[str, Any] | None = None, token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(f"{url}/graphql", json={"query": query, "variables": dict(variables or {})}, headers=headers,
                          timeout=30)
    body: dict[str, Any] = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise SystemExit(f"{query.split('{')[0].strip() or query[:40]}: {response.status_code} {response.text[:500]}")
    data: dict[str, Any] = body["data"]
    return data


def payload_errors(data: dict[str, Any]) -> list[Any]:
    return [e for value in data.values() if isinstance(value, dict) for e in value.get("errors") or []]


def login(url: str) -> str:
    chamber, username, password = DEMO_USER
    data = graphql(url, "mutation($i: LoginInput!) { login(input: $i) { token errors { code } } }",
                   {"i": {"chamberCode": chamber, "username": username, "password": password}})
    assert not payload_errors(data), data
    return str(data["login"]["token"])


DRAFT = {"type": "ORIGIN_JAPANESE", "destinationCountry": "US", "goodsCategory": "食品", "exporterName": "加古川自然食品",
         "feePayment": "COUPON", "consignee": "ACME, Seattle", "transport": "By sea",
         "goods": [{"description": "Green tea", "quantity": "100 kg", "hsCode": "0902.10", "originCountry": "JP"}]}


def populate(url: str, token: str, applications: int = 25, sub_accounts: int = 3) -> list[str]:
    """Draft applications and sub-IDs of the demo signer, created through the API; returns the application ids."""
    ids = []
    for i in range(applications):
        data = graphql(url, "mutation($i: CreateApplicationInput!) { createApplication(input: $i) { application { id } errors { code field } } }",
                       {"i": {**DRAFT, "invoiceNumber": f"INV-{i:04d}"}}, token)
        assert not payload_errors(data), data
        ids.append(data["createApplication"]["application"]["id"])
    for i in range(sub_accounts):
        data = graphql(url, "mutation($i: CreateSubAccountInput!) { createSubAccount(input: $i) { account { id } errors { code field } } }",
                       {"i": {"name": f"ベンチ {i}号", "password": f"bench-pass-{i}-Xy9!", "email": f"bench{i}@kakogawa.example"}},
                       token)
        assert not payload_errors(data), data
    return ids


# --------------------------------------------------------------------------- wrk

_LUA_CHECKS = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0; sample = "" end
function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"%s*:%s*%[%s*{') then
    bad = bad + 1
    if sample == "" then sample = status .. " " .. string.sub(body, 1, 300) end
  end
end
function done(summary, latency, requests)
  local b, s = 0, ""
  for _, t in ipairs(threads) do
    b = b + t:get("bad")
    if s == "" then s = t:get("sample") end
  end
  local e = summary.errors
  io.write(string.format('\nRESULT {"requests": %d, "duration_us": %d, "bad": %d, "socket_errors": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, b, e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
  if s ~= "" then io.write("SAMPLE " .. s .. "\n") end
end
"""


def lua_string(text: str) -> str:
    """A Lua long string holding ``text`` verbatim."""
    level = 1
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


def lua_script(path: Path, query: str, variables: Mapping[str, Any] | None = None, token: str | None = None) -> Path:
    body = json.dumps({"query": query, "variables": dict(variables or {})}, ensure_ascii=False)
    lines = ['wrk.method = "POST"', f"wrk.body = {lua_string(body)}", 'wrk.headers["Content-Type"] = "application/json"']
    if token:
        lines.append(f'wrk.headers["Authorization"] = {lua_string("Bearer " + token)}')
    path.write_text("\n".join(lines) + "\n" + _LUA_CHECKS, encoding="utf-8")
    return path


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    bad: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    sample: str = ""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def wrk(url: str, script: Path, seconds: float, connections: int) -> WrkResult:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{max(seconds, 1):.0f}s", "--timeout", "10s", "-s", str(script),
                          f"{url}/graphql"], check=True, capture_output=True, text=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    raw = json.loads(line[len("RESULT "):])
    sample = next((x[len("SAMPLE "):] for x in out.splitlines() if x.startswith("SAMPLE ")), "")
    return WrkResult(raw["requests"], raw["duration_us"] / 1e6, raw["bad"], raw["socket_errors"], raw["p50_us"] / 1e3,
                     raw["p99_us"] / 1e3, sample)


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    server: str  # "tradecert", "baseline" or "bare"
    query: str
    baseline: str | None = None  # the case it is divided by (None: the hello baseline itself)
    goal: float | None = None
    needs_token: bool = False


CASES = (
    Case("hello", "{ hello }, tradecert stack (baseline)", "baseline", HELLO),
    Case("bare", "{ hello }, bare strawberry (reference)", "bare", HELLO, baseline="hello"),
    Case("memfees", "feeSchedule in memory (P1 floor)", "baseline", FEE_SCHEDULE, baseline="hello"),
    Case("fees", "P1 feeSchedule, full schedule", "tradecert", FEE_SCHEDULE, baseline="hello", goal=0.8),
    Case("fees1", "feeSchedule, one amount (reference)", "tradecert", FEE_ONE, baseline="hello"),
    Case("me", "me (session token)", "tradecert", ME, baseline="hello", goal=0.6, needs_token=True),
    Case("subs", "subAccounts (3 sub-IDs)", "tradecert", SUB_ACCOUNTS, baseline="hello", goal=0.6, needs_token=True),
    Case("mempage", "20 applications in memory (P2 base)", "baseline", PAGE),
    Case("page", "P2 applications(first: 20)", "tradecert", PAGE, baseline="mempage", goal=0.6, needs_token=True),
)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat), all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    rate: float  # requests per wall-clock second, as wrk saw them
    cpu_us: float  # server CPU time per request


def run_case(case: Case, urls: Mapping[str, str], pids: Mapping[str, int], script: Path, seconds: float,
             connections: int) -> Sample:
    before = cpu_seconds(pids[case.server])
    result = wrk(urls[case.server], script, seconds, connections)
    used = cpu_seconds(pids[case.server]) - before
    if result.bad or result.socket_errors or not result.requests:
        raise SystemExit(f"{case.key}: {result.bad} bad answers, {result.socket_errors} socket errors: {result.sample}")
    return Sample(result.rate, used / result.requests * 1e6)


def measure(cases: tuple[Case, ...], urls: Mapping[str, str], pids: Mapping[str, int], scripts: Mapping[str, Path],
            rounds: int, seconds: float, connections: int, say: Any = print) -> dict[str, dict[str, Any]]:
    """Each round measures every case between two measurements of its baseline (A-B-A;
    the next case shares the closing one), so a change in machine speed during the round
    hits both sides; a case's ratio is its rate over the mean of the two. The CPU ratio
    divides the server CPU time per request of the baseline by the case's: the cost
    itself, less sensitive to other load on the machine than wall-clock rates."""
    by_key = {c.key: c for c in cases}
    for case in cases:  # warm-up: caches, imports, the database's pages
        run_case(case, urls, pids, scripts[case.key], 1, connections)
    rates: dict[str, list[float]] = {c.key: [] for c in cases}
    ratios: dict[str, list[float]] = {c.key: [] for c in cases}
    cpu_ratios: dict[str, list[float]] = {c.key: [] for c in cases}
    cpu_us: dict[str, list[float]] = {c.key: [] for c in cases}
    for n in range(rounds):
        last: dict[str, Sample] = {}  # the latest measurement of each baseline in this round
        for case in cases:
            if case.baseline is None:
                continue
            base = by_key[case.baseline]
            opening = last.get(base.key) or run_case(base, urls, pids, scripts[base.key], seconds, connections)
            sample = run_case(case, urls, pids, scripts[case.key], seconds, connections)
            closing = last[base.key] = run_case(base, urls, pids, scripts[base.key], seconds, connections)
            for b in (opening, closing):
                rates[base.key].append(b.rate)
                cpu_us[base.key].append(b.cpu_us)
            rates[case.key].append(sample.rate)
            cpu_us[case.key].append(sample.cpu_us)
            ratios[case.key].append(sample.rate / ((opening.rate + closing.rate) / 2))
            cpu_ratios[case.key].append((opening.cpu_us + closing.cpu_us) / 2 / sample.cpu_us)
        say(f"round {n + 1}/{rounds}: " + "  ".join(f"{c.key} {ratios[c.key][-1]:.2f}" for c in cases if c.baseline))
    results = {}
    for c in cases:
        results[c.key] = {
            "label": c.label, "baseline": c.baseline, "goal": c.goal,
            "rate": statistics.median(rates[c.key]), "server_cpu_us": statistics.median(cpu_us[c.key]),
            "ratio": statistics.median(ratios[c.key]) if c.baseline else 1.0,
            "cpu_ratio": statistics.median(cpu_ratios[c.key]) if c.baseline else 1.0,
            "ratios": ratios[c.key], "cpu_ratios": cpu_ratios[c.key], "rates": rates[c.key],
        }
    return results


def table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """At most 80 columns: the case, median req/s, median ratio (wall clock), median CPU
    ratio, what it is divided by, the goal."""
    lines = [f"{'case':38} {'req/s':>6} {'ratio':>5} {'cpu':>5} {'of':>8} {'goal':>10}", "-" * 77]
    for r in results.values():
        goal = "" if r["goal"] is None else f">={r['goal']:.1f} " + ("ok" if r["ratio"] >= r["goal"] else "MISS")
        lines.append(f"{r['label'][:38]:38} {r['rate']:6.0f} {r['ratio']:5.2f} {r['cpu_ratio']:5.2f} "
                     f"{r['baseline'] or '':>8} {goal:>10}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0, help="wrk duration per measurement (whole seconds)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (one wrk thread)")
    parser.add_argument("--only", default="", help="comma-separated case keys (baselines are added): " +
                        ",".join(c.key for c in CASES))
    parser.add_argument("--json", type=Path, help="write the results here too")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (database, server logs)")
    parser.add_argument("--serve", choices=["baseline", "bare"], help=argparse.SUPPRESS)  # a baseline server process
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--page", help=argparse.SUPPRESS)
    parser.add_argument("--fees", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.page, args.fees)
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    wanted = {k for k in args.only.split(",") if k}
    unknown = wanted - {c.key for c in CASES}
    if unknown:
        raise SystemExit(f"--only: unknown case(s) {', '.join(sorted(unknown))}; known: {', '.join(c.key for c in CASES)}")
    cases = tuple(c for c in CASES if not wanted or c.key in wanted or any(
        o.baseline == c.key and o.key in wanted for o in CASES))
    work = Workspace.create()
    try:
        ours = work.start_tradecert()
        token = login(ours.url)
        populate(ours.url, token)
        page_file = work.root / "page.json"
        try:
            page_file.write_text(json.dumps({"data": graphql(ours.url, PAGE, token=token)}, ensure_ascii=False),
                                 encoding="utf-8")
        except SystemExit as exc:  # measure the rest; the table says what is missing
            print(f"P2 left out: {exc}", flush=True)
            cases = tuple(c for c in cases if c.query != PAGE)
        fees_file = work.root / "fees.json"
        fees_file.write_text(json.dumps({"data": graphql(ours.url, FEE_SCHEDULE)}, ensure_ascii=False), encoding="utf-8")
        baseline = work.start_baseline("baseline", page_file if page_file.exists() else None, fees_file)
        urls, pids = {"tradecert": ours.url, "baseline": baseline.url}, {"tradecert": ours.pid, "baseline": baseline.pid}
        if any(c.server == "bare" for c in cases):
            bare = work.start_baseline("bare")
            urls["bare"], pids["bare"] = bare.url, bare.pid
        scripts = {c.key: lua_script(work.root / f"{c.key}.lua", c.query, token=token if c.needs_token else None)
                   for c in cases}
        print(f"wrk -t1 -c{args.connections}, {args.rounds} rounds, {args.seconds:.0f} s per measurement, each case "
              f"between two of its baseline; one uvicorn worker per server; work dir {work.root}", flush=True)
        results = measure(cases, urls, pids, scripts, args.rounds, args.seconds, args.connections,
                          say=lambda line: print(line, flush=True))
        print()
        print(table(results))
        if args.json:
            args.json.write_text(json.dumps({"rounds": args.rounds, "seconds": args.seconds,
                                             "connections": args.connections, "results": results}, indent=2))
        problems = [line for line in ours.log.read_text(errors="replace").splitlines() if '"level": "ERROR"' in line]
        if problems:
            raise SystemExit(f"the server logged {len(problems)} errors, e.g. {problems[0][:500]}")
    finally:
        work.close(keep=args.keep)


if __name__ == "__main__":
    main()
