"""sb3-contrib MaskablePPO on vln/R2R-v0 (single env and our batched VecEnv) and the PPO example."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import envs  # noqa: F401 - registers the ids
from ci_required import import_or_skip

import_or_skip("sb3_contrib", "the rl extra is not installed (pip install -e .[rl])")
from sb3_contrib import MaskablePPO  # noqa: E402
from stable_baselines3.common.vec_env import VecMonitor  # noqa: E402

from synthetic_helpers import small_world_with_features  # noqa: E402
from envs.sb3 import make_sb3_env, make_sb3_vec_env  # noqa: E402
from vln.evaluate import Evaluator  # noqa: E402


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    """A 2-house synthetic world (1 train house, 1 val_unseen house) with synthetic_semantic features."""
    return small_world_with_features(tmp_path_factory.mktemp("sb3train") / "world", seed=5, train_paths=8,
                                     val_unseen_paths=4)


def kw(root, **extra):
    return dict(data_dir=root, split="train", features="synthetic_semantic", **extra)


def success_rate(venv, act) -> float:
    """SR (official evaluator) of ``act(obs, masks) -> actions`` over every episode of the venv's split."""
    world = venv.venv.world
    venv.seed(11)
    obs, ended = venv.reset(), {}
    while len(ended) < len(world.episodes):
        masks = np.stack(venv.env_method("action_masks"))
        obs, _, dones, infos = venv.step(act(obs, masks))
        for done, info in zip(dones, infos):
            if done:
                ended.setdefault(info["instr_id"], info["trajectory"])
    evaluator = Evaluator({s: world.navgraph[s] for s in world.scans}, world.episodes)
    return evaluator.score([{"instr_id": k, "trajectory": t} for k, t in ended.items()]).summary["sr"]


@pytest.mark.slow
def test_maskable_ppo_trains_on_single_env(world_dir):
    torch.set_num_threads(1)
    env = make_sb3_env("vln/R2R-v0", **kw(world_dir, feature_mode="index"))
    model = MaskablePPO("MultiInputPolicy", env, n_steps=256, batch_size=64, n_epochs=2, seed=0,
                        policy_kwargs=dict(net_arch=[32]))
    model.learn(1024)
    assert model.num_timesteps >= 1024
    assert len(model.ep_info_buffer) > 0  # episodes ended (SB3's Monitor saw them)


@pytest.mark.slow
def test_maskable_ppo_learns_on_batched_vec_env(world_dir):
    """After 3,072 steps the greedy policy beats a uniformly random masked policy on the training episodes."""
    torch.set_num_threads(1)
    venv = VecMonitor(make_sb3_vec_env("vln/R2R-v0", num_envs=8, **kw(world_dir)))
    rng = np.random.default_rng(0)
    random_sr = success_rate(venv, lambda obs, masks: np.array([rng.choice(np.flatnonzero(m)) for m in masks]))
    model = MaskablePPO("MultiInputPolicy", venv, n_steps=64, batch_size=128, n_epochs=2, seed=0,
                        policy_kwargs=dict(net_arch=[32]))
    model.learn(3072)
    assert model.num_timesteps >= 3072
    assert len(model.ep_info_buffer) > 10
    trained_sr = success_rate(venv, lambda obs, masks: model.predict(obs, action_masks=masks, deterministic=True)[0])
    assert trained_sr >= random_sr + 0.15, (trained_sr, random_sr)  # measured: 0.375 against 0.0


@pytest.mark.slow
def test_ppo_example_learns_and_scores(world_dir, tmp_path):
    """The example's greedy policy beats its random masked policy on the training episodes (same run)."""
    from scripts.ppo_example import main

    torch.set_num_threads(1)
    result = main(["--data-dir", str(world_dir), "--total-timesteps", "4096", "--num-envs", "8", "--num-steps", "64",
                   "--hidden", "32", "--learning-rate", "3e-3", "--eval-split", "train", "--runs-dir", str(tmp_path),
                   "--log-every", "1"])
    assert result["global_step"] == 4096
    assert result["train_sr"] >= result["train_random_sr"] + 0.15, result  # measured: 0.25 against 0.0
    run = next(tmp_path.iterdir())
    assert (run / "agent.pt").exists()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = EventAccumulator(str(run)).Reload().Tags()["scalars"]
    for tag in ("train/policy_loss", "train/value_loss", "train/entropy", "charts/SPS", "charts/train_sr",
                "charts/train_random_sr", "charts/episodic_return"):
        assert tag in tags

