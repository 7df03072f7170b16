"""Data directories: a given one is checked (never filled), the default one is built on first use,
and a missing feature store says what it needs with commands that work."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

import envs  # noqa: F401 - registers vln/R2R-v0
from env_fixtures import write_data_root
from synthetic_helpers import small_world  # noqa: F401 - fixture

from agents.data import ensure_data, resolve_data_dir
from features.ensure import FeaturesNotFoundError, ensure_feature_store
from features.registry import WEIGHTS_DIR_ENV
from features.store import default_store_path, open_feature_store
from vln.data_root import DataNotFoundError, ensure_default_world, prepare_data_dir
from vln.synthetic import DATA_DIR_ENV

REPO = Path(__file__).resolve().parents[1]


def run_script(args: list[str], env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a script of the repository as a user does, with this checkout first on the path."""
    full_env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=REPO, env=full_env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("state", ["missing", "empty"])
def test_a_given_data_dir_is_checked_and_never_filled(tmp_path, state):
    from scripts import train_agent

    d = tmp_path / "typo"
    if state == "empty":
        d.mkdir()
    argv = ["--features", "clip_r50x4", "--dataset", "r2r", "--data-dir", str(d), "--out", str(tmp_path / "run")]
    with pytest.raises(DataNotFoundError) as e:
        train_agent.main(argv)
    msg = str(e.value)
    # What is missing, in order: the graphs, then the split files; nothing about features yet.
    assert msg.index(str(d / "connectivity")) < msg.index(str(d / "R2R" / "R2R_train.json"))
    assert "feature" not in msg and "clip" not in msg and "make_world" not in msg
    assert (not d.exists()) if state == "missing" else (list(d.iterdir()) == [])
    # The synthetic dataset says how to make a world there instead of making one.
    with pytest.raises(DataNotFoundError, match=f"make_world.py --out {d}"):
        train_agent.main(["--features", "synthetic_semantic", "--data-dir", str(d), "--out", str(tmp_path / "r2")])
    assert (not d.exists()) if state == "missing" else (list(d.iterdir()) == [])
    assert not (tmp_path / "run").exists() and not (tmp_path / "r2").exists()


def test_the_env_and_decoding_check_a_given_dir_before_anything_else(tmp_path):
    d = tmp_path / "nowhere"
    with pytest.raises(DataNotFoundError, match=r"connectivity(.|\n)*R2R_val_unseen.json"):
        gym.make("vln/R2R-v0", data_dir=d, split="val_unseen", features="clip_r50x4")
    root = write_data_root(tmp_path / "data")
    (root / "R2R" / "R2R_train.json").unlink()
    with pytest.raises(DataNotFoundError, match="the train split file .*R2R_train.json") as e:
        gym.make("vln/R2R-v0", data_dir=root, split="val_unseen")
    assert "connectivity" not in str(e.value)  # what is there is not listed
    with pytest.raises(DataNotFoundError, match="connectivity"):
        prepare_data_dir("r2r", d, splits=())
    assert not d.exists()


def test_a_real_dataset_without_a_data_dir_asks_for_one(monkeypatch):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    with pytest.raises(DataNotFoundError, match="--dataset r2r reads the real R2R data: pass --data-dir"):
        resolve_data_dir("r2r", None)


def test_decoding_with_a_mistyped_data_dir_names_the_data_not_the_features(tmp_path):
    from scripts import export_submission, train_agent

    root = write_data_root(tmp_path / "data")
    out = tmp_path / "run"
    train_agent.main(["--features", "toy", "--dataset", "r2r", "--data-dir", str(root), "--out", str(out), "--iters", "1",
                      "--eval-every", "1", "--batch-size", "2", "--hidden", "16", "--word-embedding", "8",
                      "--no-progress", "--eval-splits", "val_unseen"])
    typo = tmp_path / "dta"
    with pytest.raises(DataNotFoundError, match=f"{typo} does not exist(.|\n)*connectivity"):
        export_submission.main(["--checkpoint", str(out / "latest.pt"), "--dataset", "r2r", "--data-dir", str(typo),
                                "--split", "val_unseen", "--out", str(tmp_path / "s.json")])
    assert not typo.exists()


def test_clip_features_on_the_synthetic_world_say_what_they_need(small_world, tmp_path, monkeypatch):
    world, _ = small_world
    monkeypatch.delenv(WEIGHTS_DIR_ENV, raising=False)
    with pytest.raises(FeaturesNotFoundError) as e:
        ensure_data("synthetic", world, "clip_r50x4")
    msg = str(e.value)
    store = default_store_path(world, "clip_r50x4")
    assert f"skyboxes: found in {world / 'scans'}" in msg
    assert "RN50x4.pt not found" in msg and WEIGHTS_DIR_ENV in msg and "--weights" in msg
    cmd = (f"python scripts/extract_features.py --encoder clip_r50x4 --scans-dir {world / 'scans'} "
           f"--connectivity {world / 'connectivity'} --out {store}")
    assert cmd in msg and "--features synthetic_semantic" in msg
    assert len(msg.splitlines()) <= 6 and not store.exists()
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "RN50x4.pt").write_bytes(b"")
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(weights))
    with pytest.raises(FeaturesNotFoundError, match=f"weights: found at {weights / 'RN50x4.pt'}"):
        ensure_data("synthetic", world, "clip_r50x4")


def test_train_agent_with_clip_features_and_no_data_answers_in_a_few_lines(tmp_path):
    """The command users type first, on a data root with graphs and splits but no skyboxes or store."""
    root = write_data_root(tmp_path / "data", with_features=False)
    import shutil

    shutil.rmtree(root / "scans")
    res = run_script(["scripts/train_agent.py", "--features", "clip_r50x4", "--dataset", "r2r", "--data-dir", str(root)],
                     env={WEIGHTS_DIR_ENV: ""})
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    err = res.stderr.strip().splitlines()
    assert err[0].startswith("error: no clip_r50x4 features") and len(err) <= 6, res.stderr
    text = res.stderr
    assert "skyboxes: none in" in text and "--features PATH" in text and "RN50x4.pt" in text
    assert "scripts/extract_features.py --encoder clip_r50x4" in text


def test_the_printed_semantic_extraction_command_works(small_world, tmp_path):
    import shutil

    from scripts import extract_features

    world = tmp_path / "world"
    shutil.copytree(small_world[0], world, ignore=shutil.ignore_patterns("features"))
    with pytest.raises(FeaturesNotFoundError) as e:
        ensure_feature_store(world, "synthetic_semantic", auto=False)
    cmd = shlex.split(str(e.value).split("build them with: ")[1])
    assert cmd[:2] == ["python", "scripts/extract_features.py"] and cmd[cmd.index("--scans-dir") + 1] == str(world)
    extract_features.main(cmd[2:] + ["--no-progress"])
    with open_feature_store(default_store_path(world, "synthetic_semantic")) as store:
        assert len(store) == json.loads((world / "world.json").read_text())["viewpoints"]
    # The environment finds them; asked for on a world without them, it extracts them itself.
    env = gym.make("vln/R2R-v0", data_dir=world, split="val_unseen", features="synthetic_semantic")
    assert env.unwrapped.world.store.dim == 512
    shutil.rmtree(world / "features")
    gym.make("vln/R2R-v0", data_dir=world, split="val_unseen", features="synthetic_semantic")
    assert default_store_path(world, "synthetic_semantic").exists()


def test_the_default_location_is_not_written_over_when_it_holds_other_files(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "notes.txt").write_text("keep me")
    with pytest.raises(DataNotFoundError, match="holds files but no synthetic world"):
        ensure_default_world(d, houses=2, face_size=16)
    assert [p.name for p in d.iterdir()] == ["notes.txt"]


@pytest.mark.slow
def test_gym_make_on_a_fresh_clone_builds_the_default_world_once(tmp_path):
    code = ("import gymnasium as gym, envs; env = gym.make('vln/R2R-v0'); obs, info = env.reset(seed=0); "
            "print(info['scan'])")
    env = {DATA_DIR_ENV: str(tmp_path / "default")}
    first = run_script(["-c", code], env=env, timeout=300)
    assert first.returncode == 0, first.stderr
    assert first.stderr.count("building the default synthetic world") == 1, first.stderr
    assert (tmp_path / "default" / "world.json").exists()
    again = run_script(["-c", code], env=env, timeout=300)
    assert again.returncode == 0 and "building" not in again.stderr and again.stdout == first.stdout
