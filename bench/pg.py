"""pgbench on the same PostgreSQL server, in a scratch database it initialises itself: the
baseline the PostgreSQL benchmarks divide by."""

from __future__ import annotations

import re
import subprocess
import uuid
from types import TracebackType

PG = ["-h", "127.0.0.1", "-U", "postgres"]


class PgBench:
    """A scratch pgbench database (scale 4), initialised once and run as often as a benchmark
    interleaves it with its own rounds; dropped on exit."""

    def __init__(self, scale: int = 4) -> None:
        self.database = f"bench_{uuid.uuid4().hex[:8]}"
        self.scale = scale

    def __enter__(self) -> PgBench:
        subprocess.run(["createdb", *PG, self.database], check=True)
        subprocess.run(["pgbench", *PG, "-i", "-s", str(self.scale), "-q", self.database], check=True, capture_output=True)
        return self

    def tps(self, clients: int, seconds: int, *options: str) -> float:
        """Transactions per second of `pgbench -c CLIENTS -j 2 -T SECONDS [options]`."""
        out = subprocess.run(["pgbench", *PG, *options, "-c", str(clients), "-j", "2", "-T", str(seconds), self.database],
                             check=True, capture_output=True, text=True).stdout
        found = re.search(r"tps = ([0-9.]+)", out)
        if found is None:
            raise RuntimeError(f"pgbench printed no tps: {out}")
        return float(found.group(1))

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        subprocess.run(["dropdb", *PG, self.database], check=True)


def pgbench_tps(clients: int, seconds: int, *options: str) -> float:
    """Transactions per second of `pgbench -c CLIENTS -j 2 -T SECONDS [options]` at scale 4."""
    with PgBench() as bench:
        return bench.tps(clients, seconds, *options)
