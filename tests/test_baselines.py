"""Baseline policies scored by the evaluator: the oracle is perfect, STOP-at-start never succeeds."""
from __future__ import annotations

import gymnasium as gym
import pytest

import envs  # noqa: F401
from env_fixtures import write_data_root
from envs.baselines import BASELINES, evaluate_policy, rollout_split


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = write_data_root(tmp_path_factory.mktemp("data"))
    return gym.make("vln/R2R-v0", data_dir=root, split="train", features="toy").unwrapped.world


def test_teacher_is_perfect_and_stop_fails(world):
    assert evaluate_policy(world, BASELINES["teacher"], batch_size=4).summary["sr"] == 1.0
    assert evaluate_policy(world, BASELINES["teacher"], batch_size=4).summary["spl"] == pytest.approx(1.0)
    assert evaluate_policy(world, BASELINES["stop"], batch_size=2).summary["sr"] == 0.0


def test_rollout_covers_each_episode_once_and_is_seeded(world):
    a = rollout_split(world, BASELINES["random"], batch_size=4, seed=1)
    b = rollout_split(world, BASELINES["random"], batch_size=4, seed=1)
    assert a == b
    assert sorted(x["instr_id"] for x in a) == sorted(e.instr_id for e in world.episodes)
