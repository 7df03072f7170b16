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


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    """A 2-house synthetic world (1 train house, 1 val_unseen house) with synthetic_semantic features."""
    return small_world_with_features(tmp_path_factory.mktemp("sb3train") / "world", seed=5, train_paths=8,
                                     val_unseen_paths=4)


def kw(root, **extra):
    return dict(data_dir=root, split="train", features="synthetic_semantic", **extra)


def _never_invalid(model, env, steps):
    """Roll the trained policy with masks; every chosen action must be valid."""
    obs = env.reset()
    for _ in range(steps):
        masks = np.stack(env.env_method("action_masks"))
        actions, _ = model.predict(obs, action_masks=masks)
        assert masks[np.arange(len(actions)), actions].all()
        obs, _, _, _ = env.step(actions)


@pytest.mark.slow
def test_maskable_ppo_trains_on_single_env(world_dir):
    torch.set_num_threads(1)
    env = make_sb3_env("vln/R2R-v0", **kw(world_dir, feature_mode="index"))
    model = MaskablePPO("MultiInputPolicy", env, n_steps=256, batch_size=64, n_epochs=2, seed=0,
                        policy_kwargs=dict(net_arch=[32]))
    model.learn(1024)
    assert model.num_timesteps >= 1024
    assert len(model.ep_info_buffer) > 0  # episodes ended (SB3's Monitor saw them)
    _never_invalid(model, model.get_env(), 100)


@pytest.mark.slow
def test_maskable_ppo_trains_on_batched_vec_env(world_dir):
    torch.set_num_threads(1)
    venv = VecMonitor(make_sb3_vec_env("vln/R2R-v0", num_envs=8, **kw(world_dir)))
    model = MaskablePPO("MultiInputPolicy", venv, n_steps=64, batch_size=128, n_epochs=2, seed=0,
                        policy_kwargs=dict(net_arch=[32]))
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(3072)
    assert model.num_timesteps >= 3072
    assert len(model.ep_info_buffer) > 10
    assert any(not torch.equal(a, b) for a, b in zip(before, model.policy.parameters()))  # it learnt something
    _never_invalid(model, venv, 50)


@pytest.mark.slow
def test_ppo_example_runs_and_scores(world_dir, tmp_path):
    from scripts.ppo_example import main

    torch.set_num_threads(1)
    result = main(["--data-dir", str(world_dir), "--total-timesteps", "1024", "--num-envs", "8",
                       "--num-steps", "64", "--hidden", "32", "--runs-dir", str(tmp_path), "--log-every", "1"])
    assert result["global_step"] == 1024
    assert 0.0 <= result["val_unseen_sr"] <= 1.0 and 0.0 <= result["val_unseen_random_sr"] <= 1.0
    run = next(tmp_path.iterdir())
    assert (run / "agent.pt").exists()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = EventAccumulator(str(run)).Reload().Tags()["scalars"]
    for tag in ("train/policy_loss", "train/value_loss", "train/entropy", "charts/SPS", "charts/val_unseen_sr",
                "charts/val_unseen_random_sr", "charts/episodic_return"):
        assert tag in tags

