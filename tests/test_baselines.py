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
    teacher = BASELINES.get("teacher").policy(world)
    assert evaluate_policy(world, teacher, batch_size=4).summary["sr"] == 1.0
    assert evaluate_policy(world, teacher, batch_size=4).summary["spl"] == pytest.approx(1.0)
    assert evaluate_policy(world, BASELINES.get("stop").policy(world), batch_size=2).summary["sr"] == 0.0


def test_rollout_covers_each_episode_once_and_is_seeded(world):
    a = rollout_split(world, BASELINES.get("random_uniform").policy(world), batch_size=4, seed=1)
    b = rollout_split(world, BASELINES.get("random_uniform").policy(world), batch_size=4, seed=1)
    assert a == b
    assert sorted(x["instr_id"] for x in a) == sorted(e.instr_id for e in world.episodes)


def moves(trajectory) -> int:
    vps = [step[0] for step in trajectory]
    return sum(a != b for a, b in zip(vps, vps[1:]))


def test_the_two_random_baselines_are_different_policies(world):
    """random_walk makes exactly mean-path-edges moves (2 here) wherever it can move; random_uniform
    stops with probability 1/(K+1) at every step, so over many seeds it stops early and walks long."""
    from envs.baselines import mean_path_edges

    n = mean_path_edges(world)
    assert n == 2  # reference paths of 2, 1 and 4 edges
    walk = BASELINES.get("random_walk").policy(world)
    uniform = BASELINES.get("random_uniform").policy(world)
    walk_moves = {moves(r["trajectory"]) for seed in range(5) for r in rollout_split(world, walk, batch_size=4, seed=seed)}
    uniform_moves = {moves(r["trajectory"]) for seed in range(5) for r in rollout_split(world, uniform, batch_size=4, seed=seed)}
    assert walk_moves == {n}
    assert 0 in uniform_moves and max(uniform_moves) > n
    assert BASELINES.get("random_walk").description != BASELINES.get("random_uniform").description
    assert "random" not in BASELINES  # one name per policy
