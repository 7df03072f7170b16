"""``--candidate-lookahead``: each candidate also carries the view the agent would see on arriving there."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from env_fixtures import write_data_root
from test_candidate_distance import (assert_saved_follower_decodes_alike, assert_speedups_keep_the_iteration,
                                     assert_warm_start_refused)
from test_rollout_speedups import SMALL

from agents.config import InvalidSettingError, TrainConfig
from agents.follower import Follower, FollowerConfig
from agents.trainer import Trainer
from envs.batch import NavBatch


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    root = write_data_root(tmp_path_factory.mktemp("data"))
    cfg = TrainConfig(features="toy", dataset="r2r", data_dir=str(root), out=str(root.parent / "run"), batch_size=9,
                      seed=7, eval_splits="val_unseen", threads=1, angle_harmonics=4, candidate_distance=True,
                      candidate_lookahead=True, **SMALL)
    return Trainer(cfg)


def started(world, episodes: np.ndarray) -> NavBatch:
    nav = NavBatch(world, len(episodes))
    nav.reset_envs(np.arange(nav.B), episodes)
    return nav


def test_the_lookahead_is_the_view_seen_after_taking_the_candidate(trainer):
    """For every candidate of every episode's start, the look-ahead columns equal the view features
    the environment shows after that move (its feature row at its view index), and the candidate's
    own columns and angles are EnvDrop's."""
    world, bank = trainer.train_world, trainer.bank
    D = bank.dim
    episodes = np.arange(len(world.episodes))
    nav = started(world, episodes)
    obs = nav.observe("index")
    plain, ahead = bank.step_inputs(obs), bank.step_inputs(obs, lookahead=True)
    assert ahead.candidates.shape == (nav.B, nav.K + 1, 2 * D + 128)
    torch.testing.assert_close(ahead.candidates[:, :, :D], plain.candidates[:, :, :D], rtol=0, atol=0)
    torch.testing.assert_close(ahead.candidates[:, :, 2 * D:], plain.candidates[:, :, D:], rtol=0, atol=0)
    assert torch.equal(ahead.views, plain.views) and torch.equal(ahead.candidate_mask, plain.candidate_mask)
    count = obs["action_mask"][:, :-1].sum(1)
    checked = 0
    for k in range(nav.K):
        moved = started(world, episodes)
        act = np.where(count > k, k, nav.stop_action)
        moved.step(act)
        after = moved.observe("index")
        for b in np.flatnonzero(count > k):
            seen = world.features[after["feature_row"][b, 0], after["view_index"][b, 0]]
            np.testing.assert_array_equal(ahead.candidates[b, k, D:2 * D].numpy(), seen)
            checked += 1
    assert checked == count.sum() > nav.B  # every candidate, and more than one per start
    padding = ahead.candidate_mask.clone()
    padding[:, -1] = True  # STOP
    assert torch.equal(ahead.candidates[padding], torch.zeros_like(ahead.candidates[padding]))


def test_environmental_dropout_masks_the_lookahead_too(trainer):
    world, bank = trainer.train_world, trainer.bank
    D = bank.dim
    obs = started(world, np.arange(4)).observe("index")
    mask = (torch.rand(4, D, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    full, dropped = bank.step_inputs(obs, lookahead=True), bank.step_inputs(obs, mask, lookahead=True)
    torch.testing.assert_close(dropped.candidates[:, :, D:2 * D], full.candidates[:, :, D:2 * D] * mask[:, None, :],
                               rtol=0, atol=0)


def test_rows_gather_the_same_lookahead(trainer):
    world, bank = trainer.train_world, trainer.bank
    obs = started(world, np.arange(6)).observe("index")
    rows = np.array([1, 4, 5])
    assert torch.equal(bank.step_inputs(obs, rows=rows, lookahead=True).candidates,
                       bank.step_inputs(obs, lookahead=True).candidates[torch.as_tensor(rows)])


def first_step_logits(model: Follower, trainer: Trainer, ahead_scale: float) -> torch.Tensor:
    """(B, K+1) logits of the first decoding step of val_unseen, the look-ahead columns times ``ahead_scale``."""
    world = trainer.val_worlds["val_unseen"]
    obs = started(world, np.arange(len(world.episodes))).observe("index")
    inp = trainer.bank.step_inputs(obs, lookahead=True)
    D = trainer.bank.dim
    cands = inp.candidates.clone()
    cands[:, :, D:2 * D] *= ahead_scale
    model.eval()
    with torch.no_grad():
        ctx, ctx_mask, (h, c) = model.encoder(torch.as_tensor(obs["instruction"]),
                                              torch.as_tensor(obs["instruction_length"][:, 0]))
        _, _, logits, _ = model.decoder(inp.action_angles, inp.views, cands, inp.candidate_mask, h, c, ctx, ctx_mask,
                                        candidate_distances=inp.candidate_distances)
    return logits


def test_the_decoder_scores_the_lookahead(trainer):
    model = trainer.follower
    assert model.cfg.candidate_size == 2 * model.cfg.feature_dim + 128
    a, b = first_step_logits(model, trainer, 1.0), first_step_logits(model, trainer, 0.0)
    live = torch.isfinite(a)
    live[:, -1] = False  # STOP has no look-ahead
    assert live.any() and not torch.allclose(a[live], b[live])


def test_a_plain_follower_has_envdrops_candidate_width(trainer):
    plain = FollowerConfig(**{**trainer.follower.cfg.to_dict(), "candidate_lookahead": False})
    assert plain.candidate_size == plain.feature_size == plain.feature_dim + 128


def test_speedups_give_the_same_iteration_with_the_lookahead(trainer):
    assert_speedups_keep_the_iteration(trainer, 23)


def test_a_saved_follower_decodes_with_its_lookahead(trainer, tmp_path):
    assert_saved_follower_decodes_alike(trainer, tmp_path, "candidate_lookahead")


@pytest.mark.parametrize("saved", [True, False])
def test_a_follower_is_not_warm_started_with_the_other_candidates(trainer, tmp_path, saved):
    assert_warm_start_refused(trainer, tmp_path, "candidate_lookahead", saved)


def test_the_speaker_mode_refuses_the_flag():
    with pytest.raises(InvalidSettingError, match="--candidate-lookahead is read by --mode follower and bt only"):
        TrainConfig(mode="speaker").check_given({"candidate_lookahead"})
    TrainConfig(mode="bt").check_given({"candidate_lookahead"})
