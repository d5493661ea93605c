"""pgbench on the same PostgreSQL server, in a scratch database it initialises itself: the
baseline the PostgreSQL benchmarks divide by."""

from __future__ import annotations

import re
import subprocess
import uuid

PG = ["-h", "127.0.0.1", "-U", "postgres"]


def pgbench_tps(clients: int, seconds: int, *options: str) -> float:
    """Transactions per second of `pgbench -c CLIENTS -j 2 -T SECONDS [options]` at scale 4."""
    database = f"bench_{uuid.uuid4().hex[:8]}"
    subprocess.run(["createdb", *PG, database], check=True)
    try:
        subprocess.run(["pgbench", *PG, "-i", "-s", "4", "-q", database], check=True, capture_output=True)
        out = subprocess.run(["pgbench", *PG, *options, "-c", str(clients), "-j", "2", "-T", str(seconds), database],
                             check=True, capture_output=True, text=True).stdout
        return float(re.search(r"tps = ([0-9.]+)", out).group(1))
    finally:
        subprocess.run(["dropdb", *PG, database], check=True)
