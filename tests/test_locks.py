"""Runs side by side: shared builds (the default world, feature stores) take an OS file lock; the
second process waits, says so and uses the result; a builder killed half-way leaves no stale lock
and its half-written output is rebuilt."""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from features.store import default_store_path, open_feature_store
from vln.data_root import BUILDING_MARKER, ensure_default_world
from vln.locks import build_lock, lock_path
from vln.synthetic import generate_world

REPO = Path(__file__).resolve().parents[1]
TINY = dict(houses=2, seed=5, face_size=16, paths_per_house={"train": 3, "val_seen": 1, "val_unseen": 2, "test": 1})


def popen(code: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def wait_for_line(proc: subprocess.Popen, needle: str, timeout: float = 120) -> str:
    """Read ``proc``'s stderr until a line holds ``needle``; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 1.0)
        if ready:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
            seen.append(line)
            if needle in line:
                return line
    proc.kill()
    pytest.fail(f"no line with {needle!r} from the second process; it printed: {''.join(seen)}")


@pytest.fixture
def tiny_world(tmp_path) -> Path:
    world = tmp_path / "world"
    generate_world(world, **TINY)
    return world


def test_a_second_builder_waits_says_so_and_uses_the_finished_store(tiny_world):
    from features.encoders import get_encoder
    from features.extract import extract_features_unlocked, list_viewpoints

    store = default_store_path(tiny_world, "synthetic_semantic")
    with build_lock(store, "the test's store"):
        other = popen(f"from features.ensure import ensure_feature_store; "
                      f"print(ensure_feature_store({str(tiny_world)!r}, 'synthetic_semantic'))")
        line = wait_for_line(other, "waiting for the feature store")
        assert str(store) in line and "another process is building it" in line
        enc = get_encoder("synthetic_semantic")
        extract_features_unlocked(enc, list_viewpoints(tiny_world / "connectivity"), tiny_world, store, progress=False)
        built = (store / "features.npy").stat()
    out, err = other.communicate(timeout=120)
    assert other.returncode == 0, err
    assert out.strip() == str(store) and "other process finished" in err
    after = (store / "features.npy").stat()
    assert (after.st_ino, after.st_mtime_ns) == (built.st_ino, built.st_mtime_ns)  # used, not rebuilt


def test_two_builds_of_the_default_world_started_together_both_finish(tmp_path):
    d = tmp_path / "default"
    code = f"from vln.data_root import ensure_default_world; print(ensure_default_world({str(d)!r}, **{TINY!r}))"
    procs = [popen(code) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in results]
    assert sorted(out.strip() for out, _ in results) == ["False", "True"]  # built once, used once
    clean = tmp_path / "clean"
    generate_world(clean, **TINY)
    for f in ("world.json", "connectivity/scans.txt", "R2R/R2R_train.json"):
        assert (d / f).read_bytes() == (clean / f).read_bytes(), f


def test_a_world_build_killed_half_way_is_rebuilt_without_a_stale_lock(tmp_path):
    d = tmp_path / "default"
    big = dict(TINY, houses=8)
    proc = popen(f"from vln.data_root import ensure_default_world; ensure_default_world({str(d)!r}, **{big!r})")
    deadline = time.monotonic() + 120
    while not (d / BUILDING_MARKER).exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert (d / BUILDING_MARKER).exists() and not (d / "world.json").exists(), "the builder was not killed half-way"
    assert lock_path(d).exists()  # the lock file stays; the OS released the lock with the process
    t0 = time.monotonic()
    assert ensure_default_world(d, **big) is True
    assert time.monotonic() - t0 < 120 and not (d / BUILDING_MARKER).exists()
    clean = tmp_path / "clean"
    generate_world(clean, **big)
    for f in ("world.json", "connectivity/scans.txt", "R2R/R2R_val_unseen.json"):
        assert (d / f).read_bytes() == (clean / f).read_bytes(), f


def test_a_half_written_partial_store_is_rebuilt_not_trusted(tiny_world, tmp_path, caplog):
    from features.encoders import get_encoder
    from features.extract import feature_metadata, list_viewpoints, run_extraction
    from features.store_npy import FeatsWriter

    store = default_store_path(tiny_world, "synthetic_semantic")
    vps = list_viewpoints(tiny_world / "connectivity")
    enc = get_encoder("synthetic_semantic")
    enc.open(tiny_world)
    # A builder that committed 4 rows and then lost the bytes of its rows (killed, disk full).
    writer = FeatsWriter(store, 512, feature_metadata(enc), commit_every=1)
    for scan, vp, _ in vps[:4]:
        writer.add(scan, vp, enc.encode_viewpoint(scan, vp))
    writer.close()
    npy = store.with_name(store.name + ".partial") / "features.npy"
    os.truncate(npy, npy.stat().st_size - 100)
    run_extraction("synthetic_semantic", tiny_world, tiny_world / "connectivity", store, progress=False)
    assert any("discarding" in r.getMessage() and "holds" in r.getMessage() for r in caplog.records)
    clean = tmp_path / "clean.feats"
    run_extraction("synthetic_semantic", tiny_world, tiny_world / "connectivity", clean, progress=False)
    with open_feature_store(store) as a, open_feature_store(clean) as b:
        assert a.keys() == b.keys() and len(a) == len(vps)
        np.testing.assert_array_equal(a.as_array(), b.as_array())


@pytest.mark.slow
def test_two_training_runs_started_together_on_a_fresh_world_both_finish(tiny_world, tmp_path):
    """The reported collision: both runs found the feature store missing and extracted it at once."""
    def train(name):
        args = ["--features", "synthetic_semantic", "--data-dir", str(tiny_world), "--out", str(tmp_path / name),
                "--iters", "1", "--eval-every", "1", "--batch-size", "2", "--hidden", "16", "--word-embedding", "8",
                "--eval-splits", "val_unseen", "--device", "cpu", "--no-progress"]
        return popen(f"import sys; sys.argv[0] = 'train_agent'; from scripts.train_agent import main; main({args!r})")

    runs = [train("a"), train("b")]
    outs = [r.communicate(timeout=600) for r in runs]
    assert [r.returncode for r in runs] == [0, 0], [e[-2000:] for _, e in outs]
    with open_feature_store(default_store_path(tiny_world, "synthetic_semantic")) as store:
        assert len(store) == json.loads((tiny_world / "world.json").read_text())["viewpoints"]
    assert (tmp_path / "a" / "latest.pt").exists() and (tmp_path / "b" / "latest.pt").exists()
    assert not list(tiny_world.glob("features/*.partial"))
