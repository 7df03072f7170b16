"""``bench/bench_train.py`` compares like with like: its EnvDrop-structured baseline (per-episode
loops on the host, then a copy) builds the step inputs the device-resident feature bank builds,
for the whole batch, for the running rows alone and under an environmental-dropout mask."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from env_fixtures import write_data_root

from agents.config import TrainConfig
from agents.envdrop import EnvDropout
from agents.trainer import Trainer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bench_train import LoopBank  # noqa: E402


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("loop_bank")
    cfg = TrainConfig(features="toy", dataset="r2r", data_dir=str(write_data_root(tmp / "data")), out=str(tmp / "run"),
                      batch_size=7, allow_random_features=True, hidden=16, word_embedding=8, action_embedding=8,
                      progress=False, eval_splits="")
    return Trainer(cfg)


@pytest.mark.parametrize("rows", [None, np.array([0, 2, 3, 6])], ids=["all rows", "running rows"])
@pytest.mark.parametrize("masked", [False, True], ids=["no mask", "env dropout"])
def test_loop_bank_builds_the_feature_banks_step_inputs(trainer, rows, masked):
    trainer.nav.reset_envs(np.arange(7), np.arange(7))
    obs = trainer.nav.observe("index")
    assert (obs["candidate_point_ids"] >= 0).sum(1).min() >= 1  # every row has candidates to build
    torch.manual_seed(0)
    mask = EnvDropout(0.4).sample(7, trainer.bank.dim, "cpu") if masked else None
    ours = trainer.bank.step_inputs(obs, mask, rows)
    loop = LoopBank(np.asarray(trainer.train_world.features), "cpu").step_inputs(obs, mask, rows)
    for name in ("views", "candidates", "candidate_mask", "action_angles", "candidate_distances"):
        torch.testing.assert_close(getattr(loop, name), getattr(ours, name), rtol=1e-5, atol=1e-5, msg=name)
    assert ours.views.shape[0] == (7 if rows is None else len(rows))
