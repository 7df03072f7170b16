"""``--candidate-distance``: each candidate's distance in the follower's angle channels.

The distance itself (MatterSim's ``rel_distance``) is checked against the simulator in
``test_candidates.py`` and in the environment's observations in ``test_env_batch.py``.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from env_fixtures import write_data_root
from test_angle_encoding import SMALL, envdrop_features
from test_rollout_speedups import assert_same, one_iteration

from agents.angle_encoding import DISTANCE_UNIT, harmonic_angles
from agents.checkpoint import save_checkpoint
from agents.config import InvalidSettingError, TrainConfig
from agents.follower import Follower, FollowerConfig
from agents.inference import load_follower
from agents.rollout import Speedups, greedy_trajectories
from agents.trainer import Trainer


@pytest.mark.parametrize("k", [1, 4])
def test_the_distance_is_one_more_channel_of_the_tiled_block(k):
    dim, n = 6, 40
    rng = np.random.default_rng(k)
    x, h, e = envdrop_features(rng, n, dim)
    d = rng.uniform(0.5, 6.0, n).astype(np.float32)
    y = harmonic_angles(x, dim, k, torch.as_tensor(d)).numpy()
    np.testing.assert_array_equal(y[:, :dim], x[:, :dim].numpy())
    block = [f(j * h) for j in range(1, k + 1) for f in (np.sin, np.cos)] + [np.sin(e), np.cos(e), d / DISTANCE_UNIT]
    block = np.stack(block, axis=1)
    reps = 128 // (2 * k + 3)
    want = np.concatenate([np.tile(block, reps), np.zeros((n, 128 - reps * block.shape[1]))], axis=1)
    np.testing.assert_allclose(y[:, dim:], want, atol=2e-6)


def test_padding_and_stop_slots_stay_zero_with_distances():
    x = torch.zeros(2, 5, 10 + 128)
    d = torch.zeros(2, 5)
    x[1, 2] = envdrop_features(np.random.default_rng(1), 1, 10)[0][0]
    d[1, 2] = 2.5
    y = harmonic_angles(x, 10, 4, d)
    empty = x.abs().sum(-1) == 0
    assert torch.equal(y[empty], torch.zeros_like(y[empty]))


def test_the_last_harmonic_count_leaves_no_channel_for_the_distance():
    x, _, _ = envdrop_features(np.random.default_rng(2), 3, 4)
    with pytest.raises(ValueError, match="1..62 with the candidate distance channel, got 63"):
        harmonic_angles(x, 4, 63, torch.ones(3))
    with pytest.raises(InvalidSettingError, match="--candidate-distance needs one of the 128 angle channels"):
        TrainConfig(angle_harmonics=63, candidate_distance=True).check()


def test_the_speaker_mode_refuses_the_flag():
    with pytest.raises(InvalidSettingError, match="--candidate-distance is read by --mode follower and bt only"):
        TrainConfig(mode="speaker").check_given({"candidate_distance"})
    TrainConfig(mode="bt").check_given({"candidate_distance"})


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    root = write_data_root(tmp_path_factory.mktemp("data"))
    cfg = TrainConfig(features="toy", dataset="r2r", data_dir=str(root), out=str(root.parent / "run"), batch_size=9,
                      seed=5, eval_splits="val_unseen", threads=1, angle_harmonics=4, candidate_distance=True, **SMALL)
    return Trainer(cfg)


def first_step_logits(model: Follower, trainer: Trainer, scale: float) -> torch.Tensor:
    """(B, K+1) logits of the first decoding step of a val_unseen batch, distances times ``scale``."""
    from envs.batch import NavBatch

    world = trainer.val_worlds["val_unseen"]
    nav = NavBatch(world, len(world.episodes))
    nav.reset_envs(np.arange(nav.B), np.arange(nav.B))
    obs = nav.observe("index")
    inp = trainer.bank.step_inputs(obs)
    model.eval()
    with torch.no_grad():
        tokens = torch.as_tensor(obs["instruction"])
        lengths = torch.as_tensor(obs["instruction_length"][:, 0])
        ctx, ctx_mask, (h, c) = model.encoder(tokens, lengths)
        _, _, logits, _ = model.decoder(inp.action_angles, inp.views, inp.candidates, inp.candidate_mask, h, c, ctx,
                                        ctx_mask, candidate_distances=inp.candidate_distances * scale)
    return logits


def test_the_decoder_reads_the_distances(trainer):
    """The same weights score candidates differently when their distances change (and STOP and
    padding alike), and a follower built to read them refuses a step without them."""
    model = trainer.follower
    assert model.cfg.candidate_distance
    a, b = first_step_logits(model, trainer, 1.0), first_step_logits(model, trainer, 2.0)
    finite = torch.isfinite(a)
    assert torch.equal(finite, torch.isfinite(b)) and finite[:, :-1].any()
    assert not torch.allclose(a[:, :-1][finite[:, :-1]], b[:, :-1][finite[:, :-1]])
    cfg = model.cfg
    h = torch.zeros(2, cfg.hidden)
    with pytest.raises(ValueError, match="pass candidate_distances"):
        model.decoder(torch.zeros(2, 128), torch.zeros(2, 36, cfg.feature_size), torch.zeros(2, 4, cfg.feature_size),
                      torch.zeros(2, 4, dtype=torch.bool), h, h, torch.zeros(2, 3, cfg.hidden),
                      torch.zeros(2, 3, dtype=torch.bool))


def test_an_envdrop_follower_ignores_the_distances(trainer):
    """Without the flag the decoder's numbers do not depend on the distances (EnvDrop's channels)."""
    plain = Follower(FollowerConfig(**{**trainer.follower.cfg.to_dict(), "candidate_distance": False}))
    assert torch.equal(first_step_logits(plain, trainer, 1.0), first_step_logits(plain, trainer, 3.0))


def assert_speedups_keep_the_iteration(trainer: Trainer, seed: int) -> None:
    """One IL + A2C iteration with every speed-up and with none gives the same losses and gradients."""
    torch.manual_seed(seed)
    snap = (copy.deepcopy(trainer.follower.state_dict()), torch.get_rng_state())
    assert_same(one_iteration(trainer, Speedups(), snap), one_iteration(trainer, Speedups.none(), snap))


def assert_saved_follower_decodes_alike(trainer: Trainer, tmp_path, field: str) -> None:
    """A saved follower records ``follower_config.<field>`` (on) and greedily decodes the trainer's paths."""
    path = tmp_path / "latest.pt"
    trainer.save(path)
    model, _, meta = load_follower(path)
    assert meta["follower_config"][field] and getattr(model.cfg, field)
    world = trainer.val_worlds["val_unseen"]
    assert greedy_trajectories(model, trainer.bank, world, 6) == greedy_trajectories(trainer.follower, trainer.bank,
                                                                                     world, 6)


def test_speedups_give_the_same_iteration_with_distances(trainer):
    assert_speedups_keep_the_iteration(trainer, 22)


def test_a_saved_follower_decodes_with_its_distances(trainer, tmp_path):
    assert_saved_follower_decodes_alike(trainer, tmp_path, "candidate_distance")


def assert_warm_start_refused(trainer: Trainer, tmp_path, field: str, saved: bool) -> None:
    """``--follower`` from a checkpoint whose boolean ``follower_config.<field>`` is ``saved`` (False:
    a checkpoint written before the field existed) into a run with the other setting is refused,
    naming the file, the field and the flag to give or drop."""
    path = tmp_path / "latest.pt"
    if saved:
        trainer.save(path)
    else:
        tensors, meta = trainer.state()
        del meta["follower_config"][field]
        save_checkpoint(path, tensors, meta)
    cfg = TrainConfig(**{**trainer.cfg.to_dict(), "out": str(tmp_path / "next"), "follower": str(path), field: not saved})
    flag = "--" + field.replace("_", "-")
    todo = f"give {flag}" if saved else f"drop {flag}"
    with pytest.raises(ValueError, match=rf"latest\.pt: field 'follower_config.{field}' is {saved}, "
                                         rf"this run has {flag} {'off' if saved else 'on'}: {todo}"):
        Trainer(cfg).start_from_follower()


@pytest.mark.parametrize("saved", [True, False])
def test_a_follower_is_not_warm_started_with_the_other_channels(trainer, tmp_path, saved):
    assert_warm_start_refused(trainer, tmp_path, "candidate_distance", saved)
