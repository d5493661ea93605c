"""Memory: the resident set of one tradecert worker over many mixed requests over HTTP.

    .venv/bin/python bench/memory.py [--requests 100000] [--every 10000] [--warmup 10000] [--tracemalloc]

``tradecert serve`` (one uvicorn worker, jobs off) on a temporary SQLite file with the
demo data, 25 draft applications and 3 sub-IDs; wrk sends a fixed mix of requests, and
VmRSS of the worker is read from /proc/<pid>/status every ``--every`` requests. The first
sample after the warm-up is compared with the last: flat means within ±10 %.

The mix, per 100 requests: 15 ``{ __typename }`` (the "hello" of our schema), 25 full
``feeSchedule`` over 3,000 different dates (more than the schedules kept, so the cache
starts over several times), 20 ``me``, 10 ``subAccounts``, 20 ``applications(first: 20)``,
5 ``updateApplication`` of one draft (same values: no data growth), 5 ``updateSubAccount``
of one sub-ID; and one ``login`` (argon2id, a new session row) per 1,000 requests.

``--tracemalloc`` runs the same app through a bench-only launcher that starts tracemalloc
and writes a snapshot on SIGUSR1; the script then prints the allocation sites that grew
most between the first and last sample (the server runs 2-3x slower then; use fewer
requests).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from typing import Any

from bench.over_http import (
    DEMO_USER,
    FEE_SCHEDULE,
    ME,
    PAGE,
    SUB_ACCOUNTS,
    Workspace,
    graphql,
    login,
    lua_string,
    populate,
)

SNAPSHOT_DIR = "BENCH_TRACEMALLOC_DIR"  # set only by this script, for its own launcher


def serve(port: int) -> None:
    """`tradecert serve` for one worker, plus tracemalloc and a snapshot on SIGUSR1."""
    import tracemalloc

    import uvicorn

    from resolvers.core.logs import configure_logging
    from resolvers.core.settings import Settings
    from tradecert.app import create_app

    tracemalloc.start(12)
    folder = Path(os.environ[SNAPSHOT_DIR])
    taken = [0]

    def snapshot(_signum: int, _frame: object) -> None:
        taken[0] += 1
        path = folder / f"snapshot-{taken[0]}.bin"
        tracemalloc.take_snapshot().dump(str(path) + ".part")
        os.replace(str(path) + ".part", path)

    signal.signal(signal.SIGUSR1, snapshot)
    settings = Settings.from_env().with_(public_url=f"http://127.0.0.1:{port}")
    configure_logging(settings.log_level, settings.log_json)
    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_config=None, proxy_headers=False)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


PLAN = (["hello"] * 15 + ["fees"] * 25 + ["me"] * 20 + ["subs"] * 10 + ["page"] * 20 + ["update"] * 5 + ["subupdate"] * 5)


def mix_script(path: Path, token: str, application_id: str, sub_account_id: str, limit: int) -> Path:
    """A wrk script that cycles through the mix and stops after ``limit`` answers."""
    chamber, username, password = DEMO_USER
    bodies = {
        "hello": {"query": "{ __typename }"},
        "me": {"query": ME},
        "subs": {"query": SUB_ACCOUNTS},
        "page": {"query": PAGE},
        "update": {"query": "mutation($i: UpdateApplicationInput!) { updateApplication(input: $i) { application { id } errors { code } } }",
                   "variables": {"i": {"applicationId": application_id, "consignee": "ACME, Seattle"}}},
        "subupdate": {"query": "mutation($i: UpdateSubAccountInput!) { updateSubAccount(input: $i) { account { id } errors { code } } }",
                      "variables": {"i": {"accountId": sub_account_id, "name": "ベンチ 0号"}}},
        "login": {"query": "mutation($i: LoginInput!) { login(input: $i) { token errors { code } } }",
                  "variables": {"i": {"chamberCode": chamber, "username": username, "password": password}}},
    }
    fees_template = json.dumps({"query": FEE_SCHEDULE, "variables": {"on": "DATE"}}, ensure_ascii=False).replace("%", "%%")
    fees_template = fees_template.replace('"DATE"', '"%s"')
    dates = [(dt.date(2020, 1, 1) + dt.timedelta(days=n)).isoformat() for n in range(3000)]
    anonymous = {"hello", "login"}
    lines = [
        f"local limit = {limit}",
        "local plan = {" + ", ".join(f'"{k}"' for k in PLAN) + "}",
        "local dates = {" + ", ".join(f'"{d}"' for d in dates) + "}",
        f"local fees_template = {lua_string(fees_template)}",
        f"local token = {lua_string('Bearer ' + token)}",
        "local bodies = {",
        *(f"  {name} = {lua_string(json.dumps(body, ensure_ascii=False))}," for name, body in bodies.items()),
        "}",
        "local anonymous = {" + ", ".join(f"{k} = true" for k in sorted(anonymous)) + "}",
        r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  bad = 0; sample = ""; answered = 0; i = 0; d = 0
  prepared = {}
  local json_only = {["Content-Type"] = "application/json"}
  local with_token = {["Content-Type"] = "application/json", ["Authorization"] = token}
  for name, body in pairs(bodies) do
    prepared[name] = wrk.format("POST", "/graphql", anonymous[name] and json_only or with_token, body)
  end
  fees_headers = json_only
end
function request()
  i = i + 1
  if i % 1000 == 0 then return prepared["login"] end
  local kind = plan[(i - 1) % #plan + 1]
  if kind == "fees" then
    d = d + 1
    return wrk.format("POST", "/graphql", fees_headers, string.format(fees_template, dates[(d - 1) % #dates + 1]))
  end
  return prepared[kind]
end
function response(status, headers, body)
  answered = answered + 1
  if status ~= 200 or string.find(body, '"errors"%s*:%s*%[%s*{') then
    bad = bad + 1
    if sample == "" then sample = status .. " " .. string.sub(body, 1, 300) end
  end
  if answered == limit then  -- wrk would wait out its duration: report and leave (one thread)
    io.write(string.format('\nRESULT {"requests": %d, "bad": %d}\n', answered, bad))
    if sample ~= "" then io.write("SAMPLE " .. sample .. "\n") end
    io.flush()
    os.exit(0)
  end
end
""",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def run_segment(url: str, script: Path, connections: int) -> tuple[int, float, int, str]:
    """Requests answered, wall-clock seconds, bad answers and the first of them."""
    started = time.perf_counter()
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", "-d3600s", "--timeout", "30s", "-s", str(script), f"{url}/graphql"],
                         check=True, capture_output=True, text=True).stdout
    seconds = time.perf_counter() - started
    raw = json.loads(next(x for x in out.splitlines() if x.startswith("RESULT "))[len("RESULT "):])
    sample = next((x[len("SAMPLE "):] for x in out.splitlines() if x.startswith("SAMPLE ")), "")
    return raw["requests"], seconds, raw["bad"], sample


def snapshot_now(pid: int, folder: Path, number: int) -> Path:
    os.kill(pid, signal.SIGUSR1)
    path = folder / f"snapshot-{number}.bin"
    deadline = time.monotonic() + 120
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit("the server wrote no tracemalloc snapshot")
        time.sleep(0.2)
    return path


def grown(first: Path, last: Path, top: int = 15) -> list[str]:
    import tracemalloc

    before, after = tracemalloc.Snapshot.load(str(first)), tracemalloc.Snapshot.load(str(last))
    keep = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap*>")]
    stats = after.filter_traces(keep).compare_to(before.filter_traces(keep), "traceback")
    lines = []
    for stat in stats[:top]:
        frame = stat.traceback[0]
        lines.append(f"{stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  {frame.filename}:{frame.lineno}")
        lines.extend(f"{'':36}{f.filename}:{f.lineno}" for f in list(stat.traceback)[1:4])
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000, help="measured requests (after the warm-up)")
    parser.add_argument("--every", type=int, default=10_000, help="sample VmRSS every this many requests")
    parser.add_argument("--warmup", type=int, default=10_000, help="requests before the first sample")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--tracemalloc", action="store_true", help="find what grows (bench-only launcher, slower)")
    parser.add_argument("--json", type=Path, help="write the samples here too")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (database, server log)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the --tracemalloc launcher
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.port)
        return 0
    work = Workspace.create()
    try:
        extra: Mapping[str, str] | None = None
        command = None
        if args.tracemalloc:
            extra = {SNAPSHOT_DIR: str(work.root)}
            command = [sys.executable, "-m", "bench.memory", "--serve", "--port", "{port}"]
        server = work.start_tradecert(extra, command)
        token = login(server.url)
        application_id = populate(server.url, token)[0]
        subs = graphql(server.url, "{ subAccounts { id } }", token=token)["subAccounts"]
        graphql(server.url, FEE_SCHEDULE)  # fail early on a broken query, with its message
        graphql(server.url, PAGE, token=token)
        warm = mix_script(work.root / "warm.lua", token, application_id, subs[0]["id"], args.warmup)
        segment = mix_script(work.root / "mix.lua", token, application_id, subs[0]["id"], args.every)
        print(f"worker pid {server.pid}; {args.warmup:,} warm-up requests, then {args.requests:,} sampled every "
              f"{args.every:,}; wrk -t1 -c{args.connections}; work dir {work.root}", flush=True)
        print(f"start (after set-up): {rss_kib(server.pid) / 1024:7.1f} MiB", flush=True)
        done, _, bad, sample = run_segment(server.url, warm, args.connections)
        if bad:
            raise SystemExit(f"{bad} bad answers in the warm-up: {sample}")
        samples: list[dict[str, Any]] = [{"requests": 0, "rss_mib": rss_kib(server.pid) / 1024, "rate": None}]
        print(f"after warm-up ({done:,}): {samples[0]['rss_mib']:7.1f} MiB", flush=True)
        first_snapshot = snapshot_now(server.pid, work.root, 1) if args.tracemalloc else None
        total = 0
        while total < args.requests:
            done, seconds, bad, sample = run_segment(server.url, segment, args.connections)
            if bad:
                raise SystemExit(f"{bad} bad answers: {sample}")
            total += done
            samples.append({"requests": total, "rss_mib": rss_kib(server.pid) / 1024, "rate": done / seconds})
            print(f"{total:9,d} requests: {samples[-1]['rss_mib']:7.1f} MiB  ({done / seconds:5.0f} req/s)", flush=True)
        first, last = samples[0]["rss_mib"], samples[-1]["rss_mib"]
        change = (last - first) / first
        flat = abs(change) <= 0.10
        print(f"\nRSS after warm-up {first:.1f} MiB, after {total:,} more requests {last:.1f} MiB: "
              f"{change:+.1%} ({'flat' if flat else 'NOT flat'} within ±10%); peak {max(s['rss_mib'] for s in samples):.1f} MiB")
        if first_snapshot is not None:
            print("\nallocation sites that grew most (tracemalloc, first vs last sample):")
            print("\n".join(grown(first_snapshot, snapshot_now(server.pid, work.root, 2))))
        if args.json:
            args.json.write_text(json.dumps({"samples": samples, "change": change, "flat": flat}, indent=2))
        problems = [line for line in server.log.read_text(errors="replace").splitlines() if '"level": "ERROR"' in line]
        if problems:
            print(f"the server logged {len(problems)} errors, e.g. {problems[0][:500]}")
            return 1
        return 0 if flat else 1
    finally:
        work.close(keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
