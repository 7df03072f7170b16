"""The README's real-data commands, in order, with a small budget (issue 15's "done when").

1. On a tiny synthetic world: ``make_world.py``, ``extract_features.py`` with a small random CLIP
   in OpenAI's TorchScript format (``--encoder spec.json --weights RN.pt``), ``train_agent.py``,
   the same command again with only ``--out`` and a larger ``--iters`` (resume), ``export_submission.py
   --split test``, ``evaluate.py --validate-only`` (and a tampered submission refused).
2. On the real R2R graphs and splits in ``../shared/data`` (symlinked into a data root, never
   copied) with a random-feature store: train, resume, export test, validate.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scripts import evaluate, export_submission, extract_features, make_world, train_agent
from training.config import ConfigMismatchError
from vln.submission_check import InvalidSubmission

#: The small model of every run here (the flags a user would add to train_agent.py's README line).
SMALL_MODEL = ["--hidden", "32", "--word-embedding", "16", "--action-embedding", "8", "--no-progress"]


def train_resume_export_validate(data_args: list[str], features: str, run: Path, split_file: Path,
                                 tmp_path: Path, eval_split: str, batch: str, allow_random: list[str]) -> dict:
    """README order: train 2 iterations, resume to 4 with only ``--out``/``--iters``, refuse a
    differing flag, export the test split, validate it, refuse a tampered copy; returns the export.
    ``allow_random`` is ``["--allow-random-features"]`` for a store recorded as random-weight features."""
    first = train_agent.main(["--features", features, *data_args, "--out", str(run), "--iters", "2",
                              "--eval-every", "2", "--batch-size", batch, "--eval-splits", eval_split,
                              *allow_random, *SMALL_MODEL])
    assert first["iteration"] == 2 and [h["iter"] for h in first["history"]] == [2]
    # The README's resume: only --out and a larger --iters; the saved settings (data, store, hidden 32, batch) are
    # used and training goes on from iteration 2.
    resumed = train_agent.main(["--out", str(run), "--iters", "4"])
    assert resumed["iteration"] == 4 and [h["iter"] for h in resumed["history"]] == [2, 4]
    params = json.loads((run / "params.json").read_text())
    assert (params["iters"], params["hidden"], params["features"], params["batch_size"]) == (4, 32, features, int(batch))
    with pytest.raises(ConfigMismatchError) as err:
        train_agent.main([*data_args, "--out", str(run), "--iters", "5", "--hidden", "64"])  # data flags agree
    assert "\n" not in str(err.value) and "--hidden 64 (saved 32)" in str(err.value)
    assert json.loads((run / "params.json").read_text())["iters"] == 4  # the refused rerun changed nothing

    sub = tmp_path / "submit_test.json"
    out = export_submission.main(["--checkpoint", str(run / f"best_{eval_split}.pt"), *data_args, "--split", "test",
                                  "--out", str(sub), *allow_random])
    test_ids = {f"{e['path_id']}_{k}" for e in json.loads(split_file.read_text())
                for k in range(len(e["instructions"]))}
    submitted = json.loads(sub.read_text())
    assert out["episodes"] == len(test_ids) and {t["instr_id"] for t in submitted} == test_ids
    assert evaluate.main(["--validate-only", "--data", str(split_file), "--submission", str(sub)]) == {
        "valid": True, "trajectories": len(test_ids)}

    # A submission edited by hand (a step to a viewpoint that is not a neighbour, one episode dropped) is refused.
    tampered = [dict(t, trajectory=[list(s) for s in t["trajectory"]]) for t in submitted[1:]]
    tampered[0]["trajectory"].append(["0" * 32, 0.0, 0.0])
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(tampered))
    with pytest.raises(InvalidSubmission) as err:
        evaluate.main(["--validate-only", "--data", str(split_file), "--submission", str(bad)])
    msg = str(err.value)
    assert submitted[0]["instr_id"] in msg and tampered[0]["instr_id"] in msg and "0" * 32 in msg, msg
    return out


@pytest.mark.slow  # about 40 s on 2 cores, most of it the extraction of 1,944 views
def test_readme_commands_on_a_synthetic_world_with_a_torchscript_clip(tiny_clip_rn, tmp_path):
    world = tmp_path / "synthetic_s1"
    make_world.main(["--out", str(world), "--houses", "3", "--seed", "1", "--face-size", "16", "--train-paths", "6",
                     "--val-seen-paths", "1", "--val-unseen-paths", "3", "--test-paths", "3", "--quiet"])
    store = world / "features" / "tiny_rn.feats"
    meta = extract_features.main(["--encoder", str(tiny_clip_rn["spec"]), "--weights", str(tiny_clip_rn["openai"]),
                                  "--scans-dir", str(world / "scans"), "--connectivity", str(world / "connectivity"),
                                  "--out", str(store), "--device", "cpu", "--no-progress"])
    from features.store import open_feature_store

    with open_feature_store(store) as feats:
        record = feats.provenance
        assert record["name"] == tiny_clip_rn["spec_obj"].name and record["weights"] == tiny_clip_rn["openai"].name
        # A weights file (random inside, but nothing says so) is recorded by name and hash, not as random weights:
        # training and export take the store without --allow-random-features, as they would RN50x4.pt's.
        assert len(record["weights_sha256"]) == 64 and record["random"] is False
        n_viewpoints = len(list(feats.keys()))
    assert n_viewpoints > 0, meta

    data_args = ["--dataset", "synthetic", "--data-dir", str(world)]
    train_resume_export_validate(data_args, str(store), tmp_path / "runs" / "tiny_rn", world / "R2R" / "R2R_test.json",
                                 tmp_path, eval_split="val_unseen", batch="4", allow_random=[])


def random_feature_store(path: Path, connectivity: Path, scans, dim: int = 8) -> Path:
    """A ``.feats`` store of random (36, dim) features for every included viewpoint of ``scans``,
    recorded as random-weight features (so only ``--allow-random-features`` accepts it)."""
    from features.provenance import encoder_record, stamp
    from features.store import write_feature_store
    from vln.graph import NavGraph

    graph, rng = NavGraph(connectivity), np.random.default_rng(0)
    items = ((scan, vp, rng.normal(size=(36, dim)).astype(np.float32))
             for scan in sorted(scans) for vp, inc in zip(graph[scan].viewpoint_ids, graph[scan].included) if inc)
    return write_feature_store(path, items, stamp({}, encoder_record("random_test", None, None, random=True)))


@pytest.mark.slow
def test_readme_commands_on_the_real_r2r_graphs_with_random_features(real_data, tmp_path):
    root = tmp_path / "r2r_root"  # the real files, linked: nothing from ../shared is copied
    root.mkdir()
    (root / "connectivity").symlink_to(real_data / "connectivity", target_is_directory=True)
    (root / "R2R").symlink_to(real_data / "R2R", target_is_directory=True)
    scans = {e["scan"] for split in ("train", "val_seen", "test")
             for e in json.loads((real_data / "R2R" / f"R2R_{split}.json").read_text())}
    store = random_feature_store(root / "features" / "random_test.feats", root / "connectivity", scans)
    data_args = ["--dataset", "r2r", "--data-dir", str(root)]
    out = train_resume_export_validate(data_args, str(store), tmp_path / "runs" / "r2r", real_data / "R2R" / "R2R_test.json",
                                       tmp_path, eval_split="val_seen", batch="64",
                                       allow_random=["--allow-random-features"])
    assert out["episodes"] == 4173  # every instruction of the real test split
