"""Training the follower on a tiny data root: it overfits, it resumes exactly, scripts run in-process."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from env_fixtures import write_data_root

from agents.checkpoint import load_checkpoint
from agents.config import TrainConfig
from agents.sampler import EpisodeSampler
from agents.trainer import Trainer

# The toy store holds random features: training on them must be asked for, as a user would.
SMALL = dict(allow_random_features=True, hidden=64, word_embedding=32, action_embedding=16, progress=False, log_every=1000)


@pytest.fixture
def root(tmp_path):
    return write_data_root(tmp_path / "data")


def make_cfg(root, out, **kw) -> TrainConfig:
    base = dict(features="toy", dataset="r2r", data_dir=str(root), out=str(out), batch_size=9, seed=3,
                eval_splits="train,val_unseen", **SMALL)
    base.update(kw)
    return TrainConfig(**base)


def test_follower_overfits_a_handful_of_episodes(root, tmp_path):
    cfg = make_cfg(root, tmp_path / "run", iters=150, eval_every=50, lr=3e-3, feedback="teacher", dropout=0.0,
                   feature_dropout=0.0, ml_weight=1.0)
    trainer = Trainer(cfg)
    before = trainer.evaluate()["train/sr"]
    history = trainer.train()
    assert history[-1]["train/sr"] == 1.0, history
    assert before < 1.0
    assert trainer.best["train"]["value"] == 1.0
    assert (tmp_path / "run" / "best_train.pt").exists() and (tmp_path / "run" / "latest.pt").exists()
    assert list((tmp_path / "run" / "tb").glob("events.out.tfevents.*"))


def test_resumed_run_gives_the_same_next_losses(root, tmp_path):
    kw = dict(iters=6, eval_every=3, lr=1e-3, eval_splits="val_unseen")
    full = []
    Trainer(make_cfg(root, tmp_path / "full", **kw)).train(on_iteration=lambda i, l: full.append((i, l)))
    Trainer(make_cfg(root, tmp_path / "cut", **{**kw, "iters": 3})).train()
    resumed_trainer = Trainer(make_cfg(root, tmp_path / "cut", **kw))
    assert resumed_trainer.iteration == 3
    resumed = []
    resumed_trainer.train(on_iteration=lambda i, l: resumed.append((i, l)))
    assert [i for i, _ in resumed] == [4, 5, 6]
    assert resumed == full[3:]
    assert full[3][1]["loss_rl"] != 0.0  # the A2C branch (sampling, critic) ran
    t_full, m_full = load_checkpoint(tmp_path / "full" / "latest.pt")
    t_cut, m_cut = load_checkpoint(tmp_path / "cut" / "latest.pt")
    for k, v in t_full["follower"].items():
        assert torch.equal(v, t_cut["follower"][k]), k
    assert m_full["sampler"] == m_cut["sampler"]


def test_cosine_schedule_sets_each_iterations_learning_rate(root, tmp_path):
    cfg = make_cfg(root, tmp_path / "run", iters=4, eval_every=4, lr=1e-3, lr_schedule="cosine", eval_splits="val_unseen")
    trainer = Trainer(cfg)
    used = []
    trainer.train(on_iteration=lambda i, losses: used.append(trainer.optimizer.param_groups[0]["lr"]))
    expected = [0.5e-3 * (1 + np.cos(np.pi * i / 4)) for i in range(4)]  # 1e-3 at the first step, towards 0
    assert used == pytest.approx(expected, rel=1e-12)
    assert Trainer(make_cfg(root, tmp_path / "const", iters=4, lr=1e-3)).lr_at(3) == 1e-3


def test_weight_decay_pulls_the_followers_weights_towards_zero_and_survives_resume(root, tmp_path):
    """With the IL weight at 0 the loss has no gradient, so a step moves only the weights that
    ``--weight-decay`` decays: every non-zero weight moves towards 0, and without it nothing moves."""
    kw = dict(iters=1, eval_every=100, lr=1e-3, feedback="teacher", ml_weight=0.0, eval_splits="val_unseen")
    for wd in (0.0, 0.01):
        trainer = Trainer(make_cfg(root, tmp_path / f"wd{wd}", weight_decay=wd, **kw))
        before = {k: v.clone() for k, v in trainer.follower.named_parameters()}
        trainer.train()
        for name, p in trainer.follower.named_parameters():
            moved = p.detach() != before[name]
            if wd == 0.0 or name.startswith("critic."):  # teacher forcing gives the critic no gradient: not stepped
                assert not moved.any(), name
            else:
                nonzero = before[name] != 0
                towards_zero = torch.sign(p.detach() - before[name]) == -torch.sign(before[name])
                assert towards_zero[nonzero].all(), name
    resumed = Trainer(make_cfg(root, tmp_path / "wd0.01", weight_decay=0.01, **{**kw, "iters": 2}))
    assert resumed.iteration == 1
    assert [g["weight_decay"] for g in resumed.optimizer.param_groups] == [0.01] * len(resumed.optimizer.param_groups)


def test_checkpoint_refuses_arbitrary_pickles(tmp_path):
    from vln.errors import DataFormatError

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "evil.pt"
    torch.save({"format": "clipvil-agent-checkpoint-v1", "tensors": {}, "meta": "{}", "x": Evil()}, bad)
    with pytest.raises(DataFormatError, match="evil.pt"):
        load_checkpoint(bad)
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(DataFormatError, match="format"):
        load_checkpoint(tmp_path / "other.pt")


def test_missing_feature_store_names_the_extraction_command(root, tmp_path):
    with pytest.raises(FileNotFoundError, match="scripts/extract_features.py --encoder clip_r50x4"):
        Trainer(make_cfg(root, tmp_path / "run", features="clip_r50x4", iters=1))


def test_zero_feature_agent_and_scripts_end_to_end(root, tmp_path):
    from scripts import export_submission, train_agent

    out = tmp_path / "run"
    res = train_agent.main(["--features", "none", "--dataset", "r2r", "--data-dir", str(root), "--out", str(out),
                            "--iters", "2", "--eval-every", "2", "--batch-size", "4", "--hidden", "32",
                            "--word-embedding", "16", "--no-progress", "--eval-splits", "val_unseen"])
    assert res["iteration"] == 2 and "val_unseen/sr" in res["history"][-1]
    params = json.loads((out / "params.json").read_text())
    assert params["lr"] == 1e-4 and params["ml_weight"] == 0.2 and params["features"] == "none"
    sub = tmp_path / "submit.json"
    r = export_submission.main(["--checkpoint", str(out / "latest.pt"), "--dataset", "r2r", "--data-dir", str(root),
                                "--split", "val_unseen", "--out", str(sub)])
    items = json.loads(sub.read_text())
    assert r["episodes"] == len(items) == 3
    assert all(it["trajectory"][0][0] for it in items)


def test_defaults_match_envdrop():
    cfg = TrainConfig()
    assert (cfg.batch_size, cfg.lr, cfg.gamma, cfg.entropy_coef, cfg.grad_clip) == (64, 1e-4, 0.9, 0.01, 40.0)
    assert (cfg.hidden, cfg.word_embedding, cfg.action_embedding, cfg.dropout, cfg.feature_dropout) == (512, 256, 64, 0.5, 0.3)
    assert (cfg.max_actions, cfg.aug_ml_weight, cfg.env_dropout, cfg.speaker_dropout) == (35, 0.6, 0.4, 0.6)


def test_sampled_il_takes_one_batch_per_iteration_and_overfits(root, tmp_path):
    """``il_feedback="sample"``: one sampled rollout per iteration carries both losses (the sampler
    advances by one batch, not two), and IL against the teacher's action at the visited viewpoints
    learns the handful of training episodes as teacher forcing does."""
    cfg = make_cfg(root, tmp_path / "run", iters=150, eval_every=150, lr=3e-3, il_feedback="sample", dropout=0.0,
                   feature_dropout=0.0, ml_weight=1.0)
    trainer = Trainer(cfg)
    losses = trainer.train_iteration()
    one_batch = EpisodeSampler(trainer.sampler.n, cfg.batch_size, cfg.seed)
    one_batch.next()
    assert trainer.sampler.state_dict() == one_batch.state_dict()
    assert losses["loss_ml"] > 0 and losses["loss_rl"] != 0.0 and "reward" in losses
    history = trainer.train()
    assert history[-1]["train/sr"] == 1.0, history


def test_follower_env_dropout_masks_the_real_batches(root, tmp_path):
    kw = dict(iters=1, lr=1e-3, dropout=0.0, feature_dropout=0.0, feedback="teacher")
    plain = Trainer(make_cfg(root, tmp_path / "plain", **kw))
    dropped = Trainer(make_cfg(root, tmp_path / "dropped", follower_env_dropout=0.5, **kw))
    assert plain.real_env_mask(4) is None
    mask = dropped.real_env_mask(4)
    assert mask.shape == (4, dropped.bank.dim) and set(mask.unique().tolist()) <= {0.0, 2.0}
    # same weights and batch; only the environmental-dropout mask differs
    assert plain.train_iteration()["loss_ml"] != dropped.train_iteration()["loss_ml"]
