"""Training on the real R2R graphs with zero visual features (language + angles): runs end to end."""
from __future__ import annotations

import pytest

from agents.config import TrainConfig
from agents.trainer import Trainer


@pytest.mark.slow
def test_zero_feature_follower_on_real_r2r(real_data, tmp_path):
    cfg = TrainConfig(features="none", dataset="r2r", data_dir=str(real_data), out=str(tmp_path / "run"), iters=3,
                      eval_every=3, batch_size=16, hidden=64, word_embedding=32, eval_splits="val_unseen",
                      progress=False, lr=1e-3)
    trainer = Trainer(cfg)
    history = trainer.train()
    last = history[-1]
    assert 0.0 <= last["val_unseen/sr"] <= 1.0 and last["val_unseen/nav_error"] > 0
    assert trainer.baseline["val_unseen/stop_sr"] < 0.05  # R2R goals are never at the start
    assert (tmp_path / "run" / "best_val_unseen.pt").exists()
