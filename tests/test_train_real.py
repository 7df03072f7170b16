"""Training on the real R2R graphs with zero visual features (language + angles), scored as the official eval."""
from __future__ import annotations

import json

import pytest

from agents.config import TrainConfig
from agents.trainer import Trainer
from scripts import export_submission
from vln.evaluate import Evaluator, load_reference_episodes
from vln.graph import NavGraph


@pytest.mark.slow
def test_zero_feature_follower_on_real_r2r(real_data, tmp_path):
    cfg = TrainConfig(features="none", dataset="r2r", data_dir=str(real_data), out=str(tmp_path / "run"), iters=3,
                      eval_every=3, batch_size=16, hidden=64, word_embedding=32, eval_splits="val_unseen",
                      progress=False, lr=1e-3)
    trainer = Trainer(cfg)
    history = trainer.train()
    last = history[-1]
    assert trainer.baseline["val_unseen/stop_sr"] < 0.05  # R2R goals are never at the start
    # The seeded random walk (mean reference length, uniform candidates) measured 0.053: a walk or an
    # evaluator that breaks moves it out of this band.
    assert 0.03 < trainer.baseline["val_unseen/random_walk_sr"] < 0.09, trainer.baseline
    # The saved checkpoint, exported and scored by the evaluator on the official file, gives the logged metrics.
    sub = tmp_path / "submit.json"
    export_submission.main(["--checkpoint", str(tmp_path / "run" / "best_val_unseen.pt"), "--dataset", "r2r",
                            "--data-dir", str(real_data), "--split", "val_unseen", "--out", str(sub)])
    split = real_data / "R2R" / "R2R_val_unseen.json"
    summary = Evaluator(NavGraph(real_data / "connectivity"), load_reference_episodes(split)).score(
        json.loads(sub.read_text())).summary
    assert summary["sr"] == pytest.approx(last["val_unseen/sr"]) and summary["nav_error"] == pytest.approx(
        last["val_unseen/nav_error"]), (summary, last)
