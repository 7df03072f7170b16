"""Where benchmarks find ``../shared/data``, and what a benchmark that needs it does when it is absent.

Locally such a benchmark prints ``<name>: skipped, <reason>`` and exits 0. Under ``CI=true``, with
``--require-data`` or with ``CLIPVIL_REQUIRE_DATA=1`` it exits 1 instead. ``bench/run_all.py``
(``make bench``) sets ``CLIPVIL_BENCH_SKIP_EXIT`` so that a local skip exits with that code and it
can count the benchmarks that ran and those that were skipped.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

SHARED_DATA = Path(os.environ.get("CLIPVIL_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data")
                   ).resolve()
SKIP_EXIT_ENV = "CLIPVIL_BENCH_SKIP_EXIT"
REQUIRE_ENV = "CLIPVIL_REQUIRE_DATA"


def add_require_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--require-data", action="store_true",
                        help="exit 1 instead of skipping when ../shared/data is absent (implied by CI=true)")


def data_required(flag: bool = False) -> bool:
    return flag or os.environ.get("CI", "").lower() == "true" or os.environ.get(REQUIRE_ENV) == "1"


def skipped(name: str, reason: str, require: bool = False) -> int:
    """Say that ``name`` was skipped and why; return its exit status (1 where the data is required)."""
    if data_required(require):
        print(f"{name}: skipped, {reason}; this is an error under CI=true / --require-data")
        return 1
    print(f"{name}: skipped, {reason} (set CLIPVIL_SHARED_DATA)")
    return int(os.environ.get(SKIP_EXIT_ENV, "0"))
