"""``make bench`` (bench/run_all.py) counts skipped benchmarks; under CI=true a missing ../shared fails."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_all(tmp_path, ci: str):
    env = {**os.environ, "CI": ci, "CLIPVIL_SHARED_DATA": str(tmp_path / "absent")}
    env.pop("CLIPVIL_REQUIRE_DATA", None)
    return subprocess.run([sys.executable, str(REPO / "bench" / "run_all.py"), "--only", "bench_candidates"],
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("ci, rc, summary", [("false", 0, "bench: 0 ran, 1 skipped (bench_candidates), 0 failed"),
                                             ("true", 1, "bench: 0 ran, 0 skipped, 1 failed (bench_candidates)")])
def test_missing_shared_data_is_counted_as_skipped_or_fails_under_ci(tmp_path, ci, rc, summary):
    proc = run_all(tmp_path, ci)
    assert proc.returncode == rc, proc.stdout + proc.stderr
    assert f"bench_candidates: skipped, no connectivity graphs at {tmp_path / 'absent'}" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == summary
