"""A training run decodes a feature TSV once, however many split worlds read it."""
from __future__ import annotations

import numpy as np

from env_fixtures import write_data_root

from agents.config import TrainConfig
from agents.trainer import Trainer
from features.store import convert_feature_store


def test_a_run_decodes_a_tsv_store_once(tmp_path):
    root = write_data_root(tmp_path / "data")
    tsv = convert_feature_store(root / "features" / "toy.feats", root / "features" / "toy.tsv")
    cfg = TrainConfig(features=str(tsv), dataset="r2r", data_dir=str(root), out=str(tmp_path / "run"), batch_size=3,
                      eval_splits="train,val_unseen", allow_random_features=True, hidden=16, word_embedding=8,
                      action_embedding=8, progress=False, iters=1)
    trainer = Trainer(cfg)
    assert len(trainer.val_worlds) == 2  # three split worlds read the store
    trainer.train()  # the first iteration and a validation on both splits
    assert trainer.store.decodes == 1
    worlds = [trainer.train_world, *trainer.val_worlds.values()]
    assert all(w.features is trainer.train_world.features for w in worlds)  # one decoded array, shared
    w = worlds[2]  # its bounds, computed on first use, cover its own viewpoints only
    used = w.features[np.unique(w.feature_rows[w.feature_rows >= 0])]
    assert w.feature_bounds == (np.floor(used.min()), np.ceil(used.max()))
