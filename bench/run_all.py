"""Run every ``bench/bench_*.py`` in its own process and say how many ran, were skipped or failed.

Usage: python bench/run_all.py [--require-data] [--only NAME ...]

A benchmark that needs ``../shared/data`` and does not find it is counted as skipped (see
``bench/shared_data.py``); with ``--require-data`` or ``CI=true`` it fails instead. Exits 1 when
any benchmark failed.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from shared_data import REQUIRE_ENV, SKIP_EXIT_ENV

BENCH_DIR = Path(__file__).resolve().parent
SKIP_EXIT = 77  # automake's "skipped"
#: Arguments a benchmark gets here: those whose default configuration takes too long for a full run on a CPU.
BENCH_ARGS = {"bench_vqa": ["--quick"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--require-data", action="store_true", help="a benchmark without ../shared/data fails")
    ap.add_argument("--only", nargs="+", default=None, help="bench names to run (e.g. bench_sim)")
    args = ap.parse_args(argv)
    env = {**os.environ, SKIP_EXIT_ENV: str(SKIP_EXIT)}
    if args.require_data:
        env[REQUIRE_ENV] = "1"
    outcome: dict[str, list[str]] = {"ran": [], "skipped": [], "failed": []}
    for path in sorted(BENCH_DIR.glob("bench_*.py")):
        if args.only and path.stem not in args.only:
            continue
        print(f"=== {path.stem}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.run([sys.executable, str(path), *BENCH_ARGS.get(path.stem, [])], env=env).returncode
        kind = "ran" if rc == 0 else "skipped" if rc == SKIP_EXIT else "failed"
        outcome[kind].append(path.stem)
        print(f"=== {path.stem}: {kind} ({time.perf_counter() - t0:.0f} s{'' if rc in (0, SKIP_EXIT) else f', exit {rc}'})",
              flush=True)
    print("bench: " + ", ".join(f"{len(v)} {k}" + (f" ({' '.join(v)})" if v and k != "ran" else "")
                                for k, v in outcome.items()))
    return 1 if outcome["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
