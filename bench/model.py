"""The concurrent model of issue 10 at its long size: clients run seeded random
interleavings of the money use cases against `tradecert serve --workers 2` on PostgreSQL,
then the invariants (tests/invariants.py) and "nothing stuck" are checked, and every answer
must have been free of 5xx and INTERNAL_SERVER_ERROR. The CI size is
tests/system/test_concurrent_model.py (about a minute); this is the same model for longer.

    .venv/bin/python bench/model.py [--seed N] [--seconds 600 | --operations N] [--clients 6] [--keep]

Prints the seed first (pass it back with --seed to repeat each client's choices), then the
operation counts by kind and outcome; exits 1 on any failure, naming the trace file.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.system.test_concurrent_model import describe_failure, run_model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=None, help="the generator's seed (default: a random one, printed)")
    parser.add_argument("--seconds", type=float, default=None, help="run this long (default 600 unless --operations)")
    parser.add_argument("--operations", type=int, default=None, help="stop after this many operations")
    parser.add_argument("--clients", type=int, default=6, help="concurrent clients (threads)")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL schema (and the work directory)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    seconds = args.seconds if args.seconds is not None else (None if args.operations else 600.0)
    workdir = Path(tempfile.mkdtemp(prefix="tradecert-model-"))
    print(f"seed {seed} (repeat with --seed {seed}); work directory {workdir}", flush=True)
    report = run_model(seed, workdir, operations=args.operations, seconds=seconds, clients=args.clients,
                       keep_schema=args.keep, say=lambda line: print(line, flush=True))
    if report.failures or report.problems:
        print(describe_failure(report))
        return 1
    print(report.table())
    print("no 5xx, no INTERNAL_SERVER_ERROR, no server error logged; the invariants hold and nothing is stuck")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
