"""Where /metrics reads from: this process's registry, or every worker's value files.

``serve --workers N`` runs N processes behind one socket; each counts only the requests it
answered. In Prometheus multiprocess mode every worker writes its values to files in
``PROMETHEUS_MULTIPROC_DIR`` and a scrape, answered by any worker, merges them all.
prometheus_client decides the mode when it is first imported, from the environment, so the
directory is prepared by `serve` before any worker starts (``multiprocess_metrics``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def multiprocess_metrics(workers: int) -> Iterator[None]:
    """Multiprocess mode for the workers `serve` starts inside this block.

    An operator's ``PROMETHEUS_MULTIPROC_DIR`` is kept, emptied of value files first: a
    previous run's files would be added to this run's counts. With several workers and none
    given, a fresh temporary directory is used and removed when serving ends. One worker
    without it keeps its own registry, as a process that is not `serve` does.

    Files of a worker that died stay and keep counting: a counter must not go backwards when
    uvicorn replaces a worker. The gauges are set at scrape time and merged as "most recent"
    (tradecert/jobs.py), so no "live" gauge needs ``mark_process_dead``.
    """
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        yield
        return
    if workers <= 1:
        yield
        return
    made = tempfile.mkdtemp(prefix="tradecert-metrics-")
    os.environ[MULTIPROC_ENV] = made  # inherited by the workers uvicorn spawns
    try:
        yield
    finally:
        del os.environ[MULTIPROC_ENV]
        shutil.rmtree(made, ignore_errors=True)


def scrape_registry() -> CollectorRegistry:
    """The registry /metrics exposes. In multiprocess mode: the merge of every worker's
    files (read at each scrape), without the per-process collectors (process_*, python_gc_*),
    whose values would be the answering worker's only."""
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return REGISTRY
    merged = CollectorRegistry()
    MultiProcessCollector(merged, path=directory)  # type: ignore[no-untyped-call]  # its __init__ has no annotations
    return merged
