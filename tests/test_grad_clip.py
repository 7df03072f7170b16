"""Gradient clipping as EnvDrop: the encoder's and the decoder's norms separately, the critic never."""
from __future__ import annotations

import pytest
import torch

from env_fixtures import write_data_root

from agents.config import TrainConfig
from agents.grad_clip import clip_each
from agents.trainer import Trainer

SMALL = dict(allow_random_features=True, hidden=32, word_embedding=16, action_embedding=8, progress=False)


def grad_norm(module) -> float:
    return float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in module.parameters()])))


def fill_grads(module, value: float) -> None:
    for p in module.parameters():
        p.grad = torch.full_like(p, value)


def test_clip_each_scales_only_the_modules_above_the_bound():
    big, small = torch.nn.Linear(10, 10), torch.nn.Linear(10, 10)
    fill_grads(big, 1.0)  # norm sqrt(110)
    fill_grads(small, 0.01)
    before = clip_each((big, small), 2.0)
    assert before == pytest.approx([110 ** 0.5, 0.01 * 110 ** 0.5], rel=1e-6)
    assert grad_norm(big) == pytest.approx(2.0, rel=1e-5)
    assert grad_norm(small) == pytest.approx(0.01 * 110 ** 0.5, rel=1e-6)  # untouched, not scaled with big


@pytest.mark.parametrize("mode", ["follower", "speaker"])
def test_a_training_step_clips_the_encoder_and_the_decoder_on_their_own_and_not_the_critic(tmp_path, mode):
    """With a bound far below the gradients' norms, each clipped part ends exactly at the bound
    (one clip over all parameters would leave each part below it)."""
    root = write_data_root(tmp_path / "data")
    cfg = TrainConfig(features="toy", dataset="r2r", data_dir=str(root), out=str(tmp_path / "run"), batch_size=3,
                      seed=1, eval_splits="val_unseen", mode=mode, grad_clip=1e-4, **SMALL)
    t = Trainer(cfg)
    t.train_iteration()  # the gradients stay on the parameters after the optimiser's step
    model = t.follower if mode == "follower" else t.task.speaker
    assert grad_norm(model.encoder) == pytest.approx(cfg.grad_clip, rel=1e-4)
    assert grad_norm(model.decoder) == pytest.approx(cfg.grad_clip, rel=1e-4)
    if mode == "follower":  # IL + A2C: the critic learns the value, unclipped
        assert grad_norm(model.critic) > 10 * cfg.grad_clip
