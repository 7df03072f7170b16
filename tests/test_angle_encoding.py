"""``--angle-harmonics``: the follower's angle channels with heading harmonics (agents.angle_encoding)."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from env_fixtures import write_data_root
from test_rollout_speedups import assert_same, one_iteration

from agents.angle_encoding import harmonic_angles
from agents.config import TrainConfig
from agents.follower import Follower, FollowerConfig
from agents.inference import load_follower
from agents.rollout import Speedups, greedy_trajectories
from agents.trainer import Trainer
from envs.angles import angle_features

SMALL = dict(allow_random_features=True, hidden=32, word_embedding=16, action_embedding=8, progress=False)


def envdrop_features(rng, n: int, dim: int) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """(n, dim + 128) visual channels ++ EnvDrop angle channels of random headings / elevations."""
    h = rng.uniform(-np.pi, np.pi, n)
    e = rng.choice(np.radians([-30.0, 0.0, 30.0]), n)
    x = np.concatenate([rng.random((n, dim)).astype(np.float32), angle_features(h, e)], axis=1)
    return torch.as_tensor(x), h, e


def test_one_harmonic_is_envdrops_encoding_unchanged():
    x, _, _ = envdrop_features(np.random.default_rng(0), 7, 5)
    assert harmonic_angles(x, 5, 1) is x


@pytest.mark.parametrize("k", [2, 4, 8])
def test_harmonics_are_sines_and_cosines_of_multiples_of_the_heading(k):
    dim = 6
    x, h, e = envdrop_features(np.random.default_rng(k), 50, dim)
    y = harmonic_angles(x, dim, k).numpy()
    assert y.shape == x.shape
    np.testing.assert_array_equal(y[:, :dim], x[:, :dim].numpy())  # the visual channels are untouched
    block = [f(j * h) for j in range(1, k + 1) for f in (np.sin, np.cos)] + [np.sin(e), np.cos(e)]
    block = np.stack(block, axis=1)
    reps = 128 // (2 * k + 2)
    want = np.concatenate([np.tile(block, reps), np.zeros((50, 128 - reps * block.shape[1]))], axis=1)
    np.testing.assert_allclose(y[:, dim:], want, atol=2e-6)


def test_padding_and_stop_slots_stay_zero():
    x = torch.zeros(3, 4, 10 + 128)
    x[0, 1] = envdrop_features(np.random.default_rng(1), 1, 10)[0][0]
    y = harmonic_angles(x, 10, 4)
    empty = x.abs().sum(-1) == 0
    assert torch.equal(y[empty], torch.zeros_like(y[empty]))
    assert y[0, 1, 10:].abs().sum() > 0


def test_a_band_of_headings_can_be_scored_with_harmonics_only():
    """The motivation: with EnvDrop's encoding a candidate's angle score is a sin h + b cos h + c at
    a fixed elevation, one bump over the heading: it cannot give the headings of "turn right"
    (60-140 degrees) one score and the others another, so within the band it prefers one heading
    (here 100 over 130) whatever the views show. Four harmonics can (a linear score of the channels,
    as the decoder's candidate attention)."""
    h = np.radians([0.0, 45.0, 80.0, 100.0, 130.0, 150.0, 180.0, -90.0])
    want = np.array([-1.0, -1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0])
    x = torch.as_tensor(angle_features(h, np.zeros(len(h))))

    def best_fit(channels: torch.Tensor) -> np.ndarray:
        a = channels.numpy().astype(np.float64)
        w, *_ = np.linalg.lstsq(a, want, rcond=None)
        return a @ w

    four = best_fit(harmonic_angles(x, 0, 4))
    np.testing.assert_allclose(four, want, atol=1e-4)
    one = best_fit(x)
    assert np.abs(one - want).max() > 0.5


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    root = write_data_root(tmp_path_factory.mktemp("data"))
    cfg = TrainConfig(features="toy", dataset="r2r", data_dir=str(root), out=str(root.parent / "run"), batch_size=9,
                      seed=3, eval_splits="val_unseen", threads=1, angle_harmonics=4, **SMALL)
    return Trainer(cfg)


def test_the_decoder_sees_the_harmonics(trainer):
    """The same weights score candidates differently with one harmonic and with four."""
    assert trainer.follower.cfg.angle_harmonics == 4
    plain = Follower(FollowerConfig(**{**trainer.follower.cfg.to_dict(), "angle_harmonics": 1}))
    world = trainer.val_worlds["val_unseen"]
    torch.manual_seed(0)
    with torch.no_grad():
        for p in trainer.follower.decoder.candidate_attention.parameters():
            p.add_(torch.randn_like(p))
    plain.load_state_dict(trainer.follower.state_dict())
    assert greedy_trajectories(trainer.follower, trainer.bank, world, 4) != greedy_trajectories(plain, trainer.bank,
                                                                                                 world, 4)


def test_speedups_give_the_same_iteration_with_harmonics(trainer):
    torch.manual_seed(21)
    snap = (copy.deepcopy(trainer.follower.state_dict()), torch.get_rng_state())
    assert_same(one_iteration(trainer, Speedups(), snap), one_iteration(trainer, Speedups.none(), snap))


def test_a_saved_follower_decodes_with_its_harmonics(trainer, tmp_path):
    path = tmp_path / "latest.pt"
    trainer.save(path)
    model, _, meta = load_follower(path)
    assert meta["follower_config"]["angle_harmonics"] == 4 and model.cfg.angle_harmonics == 4
    world = trainer.val_worlds["val_unseen"]
    assert greedy_trajectories(model, trainer.bank, world, 4) == greedy_trajectories(trainer.follower, trainer.bank,
                                                                                     world, 4)


@pytest.mark.parametrize("saved_k, run_k", [(4, 1), (1, 4)])
def test_a_follower_is_not_warm_started_under_other_harmonics(trainer, tmp_path, saved_k, run_k):
    path = tmp_path / "latest.pt"
    if saved_k == 4:
        trainer.save(path)
    else:  # a follower saved before the field existed reads as EnvDrop's encoding
        tensors, meta = trainer.state()
        del meta["follower_config"]["angle_harmonics"]
        from agents.checkpoint import save_checkpoint
        save_checkpoint(path, tensors, meta)
    cfg = TrainConfig(**{**trainer.cfg.to_dict(), "out": str(tmp_path / "next"), "follower": str(path),
                         "angle_harmonics": run_k})
    with pytest.raises(ValueError, match=rf"latest\.pt: field 'follower_config.angle_harmonics' is {saved_k}, "
                                         rf"this run has --angle-harmonics {run_k}"):
        Trainer(cfg).start_from_follower()


@pytest.mark.parametrize("k", [0, 64])
def test_out_of_range_harmonics_are_refused(trainer, k):
    with pytest.raises(ValueError, match=f"angle harmonics must be 1..63, got {k}"):
        Follower(FollowerConfig(**{**trainer.follower.cfg.to_dict(), "angle_harmonics": k}))


@pytest.mark.parametrize("k", [0, 64])
def test_the_flag_is_checked_before_any_data_is_read(k):
    from agents.config import InvalidSettingError
    with pytest.raises(InvalidSettingError, match=rf"--angle-harmonics must be 1\.\.63 \(1: EnvDrop's encoding\), got {k}"):
        TrainConfig(angle_harmonics=k).check()


def test_the_speaker_encoder_reads_the_harmonics():
    """A speaker with K harmonics encodes what a speaker with EnvDrop's channels would encode from
    the re-encoded views and actions (the same weights)."""
    from agents.speaker import SpeakerConfig, SpeakerEncoder

    cfg = SpeakerConfig(vocab_size=9, feature_dim=5, word_embedding=8, hidden=16, angle_harmonics=4)
    torch.manual_seed(0)
    four = SpeakerEncoder(cfg).eval()
    one = SpeakerEncoder(SpeakerConfig(**{**vars(cfg), "angle_harmonics": 1})).eval()
    one.load_state_dict(four.state_dict())
    rng = np.random.default_rng(3)
    views = envdrop_features(rng, 2 * 3 * 36, 5)[0].view(2, 3, 36, -1)
    actions = envdrop_features(rng, 2 * 3, 5)[0].view(2, 3, -1)
    lengths = torch.tensor([3, 2])
    with torch.no_grad():
        got = four(views, actions, lengths)
        assert not torch.allclose(got, one(views, actions, lengths))
        torch.testing.assert_close(got, one(harmonic_angles(views, 5, 4), harmonic_angles(actions, 5, 4), lengths))


def test_a_speaker_checkpoint_records_its_harmonics(tmp_path):
    from agents.checkpoint import load_checkpoint, save_checkpoint
    from agents.speaker_task import read_speaker

    root = write_data_root(tmp_path / "data")
    cfg = TrainConfig(features="toy", dataset="r2r", data_dir=str(root), out=str(tmp_path / "spk"), batch_size=3,
                      seed=3, eval_splits="val_unseen", mode="speaker", iters=1, eval_every=1, angle_harmonics=4,
                      **SMALL)
    Trainer(cfg).train()
    scfg, _, _ = read_speaker(tmp_path / "spk" / "latest.pt", "cpu")
    assert scfg.angle_harmonics == 4
    tensors, meta = load_checkpoint(tmp_path / "spk" / "latest.pt")
    del meta["task"]["speaker_config"]["angle_harmonics"]  # a speaker saved before the field
    assert read_speaker(save_checkpoint(tmp_path / "old.pt", tensors, meta), "cpu")[0].angle_harmonics == 1
