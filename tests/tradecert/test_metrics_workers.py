"""/metrics of the real `tradecert serve`: with several workers it counts every worker's
requests (Prometheus multiprocess mode, one directory of value files shared by the workers);
with one worker it is the process's own registry, as before."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.tradecert.test_serve_process import serve, serve_two_workers, stop

PROBE = {"query": "query MetricsProbe { feeSchedule { on } }", "operationName": "MetricsProbe"}
OPERATIONS = "tradecert_graphql_operations_total"
PROBE_LABELS = {"operation": "MetricsProbe", "outcome": "ok"}
HTTP_POSTS = "tradecert_http_requests_total"
POST_LABELS = {"method": "POST", "route": "/graphql", "status": "200"}


def sample(text: str, name: str, labels: dict[str, str]) -> float | None:
    """The value of one sample in a Prometheus text exposition, or None when it is absent."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return found.value
    return None


def probe(base: str) -> None:
    # a new connection each time, so the kernel hands requests to either worker
    answer = httpx.post(f"{base}/graphql", json=PROBE, timeout=30)
    assert answer.status_code == 200 and "errors" not in answer.json(), answer.text


def probes_per_worker(directory: Path) -> dict[str, float]:
    """What each worker process counted, read from its own value file."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        for family in MultiProcessCollector.merge([str(path)]):
            for found in family.samples:
                if found.name == OPERATIONS and found.labels == PROBE_LABELS and found.value:
                    counts[path.stem] = found.value
    return counts


def probe_both_workers(base: str, directory: Path, at_least: int) -> int:
    """Probes until both workers have answered some (and at least `at_least` in all); how many were sent."""
    sent = 0
    while sent < at_least or len(probes_per_worker(directory)) < 2:
        assert sent < 400, f"one worker answered every probe: {probes_per_worker(directory)}"
        probe(base)
        sent += 1
    return sent


def leave_stale_counts(directory: Path) -> Path:
    """A value file left by an earlier run's worker: 1000 probes that this run must not count."""
    code = ("from prometheus_client import Counter\n"
            f"Counter({OPERATIONS[:-len('_total')]!r}, 'stale', ['operation', 'outcome']).labels('MetricsProbe', 'ok').inc(1000)\n")
    subprocess.run([sys.executable, "-c", code], env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}, check=True)
    [stale] = directory.glob("counter_*.db")
    return stale


def test_two_workers_report_every_request_in_every_scrape(tmp_path):
    directory = tmp_path / "prometheus"
    directory.mkdir()
    stale = leave_stale_counts(directory)
    process, base = serve_two_workers(tmp_path, {
        "TRADECERT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'workers.db'}",
        "PROMETHEUS_MULTIPROC_DIR": str(directory), "TRADECERT_LOG_LEVEL": "WARNING"})
    try:
        assert not stale.exists()  # emptied before the workers started
        sent = probe_both_workers(base, directory, at_least=40)
        scrapes = [httpx.get(f"{base}/metrics", timeout=30).text for _ in range(8)]  # whichever worker answers
        answered = probes_per_worker(directory)
    finally:
        stop(process)
    assert len(answered) == 2 and sum(answered.values()) == sent
    assert [sample(text, OPERATIONS, PROBE_LABELS) for text in scrapes] == [sent] * len(scrapes)
    assert [sample(text, HTTP_POSTS, POST_LABELS) for text in scrapes] == [sent] * len(scrapes)
    # the job gauges are set from the database at each scrape: one value each, no per-process copies
    gauges = next(f for f in text_string_to_metric_families(scrapes[-1]) if f.name == "tradecert_job_overdue").samples
    assert gauges and all(set(s.labels) == {"job"} for s in gauges)
    assert directory.is_dir()  # the operator's directory stays; only its value files are ours


def test_two_workers_without_a_directory_use_a_fresh_one_removed_on_exit(tmp_path):
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    process, base = serve_two_workers(tmp_path, {
        "TRADECERT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'workers.db'}",
        "TMPDIR": str(temporary), "TRADECERT_LOG_LEVEL": "WARNING"})
    try:
        [directory] = temporary.glob("tradecert-metrics-*")
        sent = probe_both_workers(base, directory, at_least=20)
        scrapes = [httpx.get(f"{base}/metrics", timeout=30).text for _ in range(4)]
    finally:
        stop(process)
    assert [sample(text, OPERATIONS, PROBE_LABELS) for text in scrapes] == [sent] * len(scrapes)
    assert not directory.exists()


def test_one_worker_keeps_its_own_registry(tmp_path):
    process, base = serve(tmp_path, env={"TRADECERT_LOG_LEVEL": "WARNING"})
    try:
        for _ in range(25):
            probe(base)
        scrapes = [httpx.get(f"{base}/metrics", timeout=30).text for _ in range(3)]
    finally:
        stop(process)
    assert [sample(text, OPERATIONS, PROBE_LABELS) for text in scrapes] == [25] * len(scrapes)
    assert sample(scrapes[-1], HTTP_POSTS, POST_LABELS) == 25
    assert sample(scrapes[-1], "process_open_fds", {}) is not None  # the process collectors, as before
