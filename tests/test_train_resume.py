"""Resuming a navigation run: from a latest.pt written between validations (exact), with the saved
settings, refusing differing flags in one line; --iters may be raised."""
from __future__ import annotations

import json

import pytest
import torch

from env_fixtures import write_data_root

from agents.checkpoint import load_checkpoint
from agents.config import TrainConfig
from agents.trainer import Trainer
from training.config import ConfigMismatchError

SMALL = dict(allow_random_features=True, hidden=32, word_embedding=16, action_embedding=8, progress=False, log_every=1000)


class Killed(Exception):
    """Stands for a kill -9 in the middle of an interval."""


@pytest.fixture
def root(tmp_path):
    return write_data_root(tmp_path / "data")


def make_cfg(root, out, **kw) -> TrainConfig:
    base = dict(features="toy", dataset="r2r", data_dir=str(root), out=str(out), batch_size=4, seed=5,
                eval_splits="val_unseen", lr=1e-3, iters=7, eval_every=6, latest_every=2, latest_minutes=0.0, **SMALL)
    base.update(kw)
    return TrainConfig(**base)


def test_resume_from_a_latest_written_between_validations_is_exact(root, tmp_path):
    full = []
    Trainer(make_cfg(root, tmp_path / "full")).train(on_iteration=lambda i, l: full.append((i, l)))

    def die_at_5(i, losses):
        if i == 5:
            raise Killed  # latest.pt was last written at iteration 4 (every 2), no validation yet

    with pytest.raises(Killed):
        Trainer(make_cfg(root, tmp_path / "cut")).train(on_iteration=die_at_5)
    assert load_checkpoint(tmp_path / "cut" / "latest.pt")[1]["iteration"] == 4
    resumed_trainer = Trainer(make_cfg(root, tmp_path / "cut"))
    assert resumed_trainer.iteration == 4
    resumed = []
    resumed_trainer.train(on_iteration=lambda i, l: resumed.append((i, l)))
    assert resumed == full[4:] and [i for i, _ in resumed] == [5, 6, 7]
    t_full, m_full = load_checkpoint(tmp_path / "full" / "latest.pt")
    t_cut, m_cut = load_checkpoint(tmp_path / "cut" / "latest.pt")
    for k, v in t_full["follower"].items():
        assert torch.equal(v, t_cut["follower"][k]), k
    assert m_full["history"] == m_cut["history"] and [h["iter"] for h in m_cut["history"]] == [6, 7]


def test_train_agent_resumes_with_saved_settings_and_refuses_differing_flags(root, tmp_path):
    from scripts import train_agent

    out = tmp_path / "run"
    common = ["--dataset", "r2r", "--data-dir", str(root), "--out", str(out)]
    train_agent.main(["--features", "none", *common, "--iters", "2", "--eval-every", "2", "--batch-size", "4",
                      "--hidden", "32", "--word-embedding", "16", "--no-progress", "--eval-splits", "val_unseen"])
    # Only --out and a larger --iters: the saved hidden size 32 is used (the default 512 would not load).
    res = train_agent.main([*common, "--iters", "3"])
    assert res["iteration"] == 3
    params = json.loads((out / "params.json").read_text())
    assert (params["iters"], params["hidden"], params["features"], params["progress"]) == (3, 32, "none", False)
    with pytest.raises(ConfigMismatchError) as err:
        train_agent.main([*common, "--iters", "4", "--hidden", "64", "--lr", "0.001", "--features", "none"])
    msg = str(err.value)
    assert "\n" not in msg and "--hidden 64 (saved 32), --lr 0.001 (saved 0.0001)" in msg and "--features" not in msg
    assert "--out" in msg and str(out) in msg
    with pytest.raises(ConfigMismatchError, match="at iteration 3 already, beyond --iters 2"):
        train_agent.main([*common, "--iters", "2"])
    # The Python API checks the same (every field of a TrainConfig counts as given).
    with pytest.raises(ConfigMismatchError, match="--batch-size 64 \\(saved 4\\)"):
        Trainer(TrainConfig(**{**params, "batch_size": 64}))


def test_moving_average_is_validated_saved_and_resumed_exactly(root, tmp_path):
    """--ema-decay: "follower" in the checkpoints is the average (what was validated), the trained
    weights ride beside it, and a killed run resumes to the same average."""
    decay = 0.5
    trained = []

    def record(trainer):
        return lambda i, losses: trained.append({k: v.clone() for k, v in trainer.follower.state_dict().items()})

    full = Trainer(make_cfg(root, tmp_path / "full", ema_decay=decay))
    full.train(on_iteration=record(full))
    expected = dict(trained[0])
    for weights in trained[1:]:
        expected = {k: decay * expected[k] + (1 - decay) * w for k, w in weights.items()}
    tensors, _ = load_checkpoint(tmp_path / "full" / "latest.pt")
    for k, w in trained[-1].items():
        assert torch.equal(tensors["follower_trained"][k], w), k
        assert torch.allclose(tensors["follower"][k], expected[k], atol=1e-6), k
        if w.is_floating_point() and w.numel() > 1:
            assert not torch.equal(tensors["follower"][k], w), k  # the average, not the last step
    # The validation at iteration 6 scored the average: best_val_unseen.pt holds it, not the trained weights.
    best, meta = load_checkpoint(tmp_path / "full" / "best_val_unseen.pt")
    assert meta["iteration"] == 6
    assert any(not torch.equal(best["follower"][k], best["follower_trained"][k]) for k in best["follower"])

    def die_at_5(i, losses):
        if i == 5:
            raise Killed

    with pytest.raises(Killed):
        Trainer(make_cfg(root, tmp_path / "cut", ema_decay=decay)).train(on_iteration=die_at_5)
    Trainer(make_cfg(root, tmp_path / "cut", ema_decay=decay)).train()
    cut, _ = load_checkpoint(tmp_path / "cut" / "latest.pt")
    for k in tensors["follower"]:
        assert torch.equal(cut["follower"][k], tensors["follower"][k]), k
        assert torch.equal(cut["follower_trained"][k], tensors["follower_trained"][k]), k
