"""Reference policies and a batched greedy-evaluation loop over a whole split.

The baselines every learning curve is compared with, registered by name in :data:`BASELINES`
(the demo table, the trainer's ``baseline/<split>/<name>_sr`` tags and the README use these names):

* ``stop``: STOP at the start;
* ``random_uniform``: at every step one action drawn uniformly from the candidates and STOP, so
  it usually stops after a move or two (SR ~0.02 on the synthetic val_unseen);
* ``random_walk``: as many uniformly drawn moves as the split's reference paths have edges on
  average, then STOP (SR ~0.04 there; the fairer floor for a learnt agent);
* ``teacher``: the shortest-path oracle.

An agent plugs in as any callable ``policy(core, rng) -> (B,) actions``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from vln.evaluate import Evaluator
from vln.registry import Registry

from .batch import NavBatch
from .world import NavWorld


def stop_policy(core: NavBatch, rng) -> np.ndarray:
    return np.full(core.B, core.stop_action)


def random_policy(core: NavBatch, rng) -> np.ndarray:
    _, count = core.candidate_rows()
    k = rng.integers(0, count + 1)
    return np.where(k == count, core.stop_action, k)


def teacher_policy(core: NavBatch, rng) -> np.ndarray:
    return core.teacher_actions()


def random_walk_policy(steps: int) -> Callable:
    """A walk of ``steps`` moves, each to a uniformly drawn candidate, then STOP (stops early
    where a viewpoint has no candidates)."""

    def policy(core: NavBatch, rng) -> np.ndarray:
        _, count = core.candidate_rows()
        move = (rng.random(core.B) * np.maximum(count, 1)).astype(np.int64)
        return np.where((count > 0) & (core.steps < steps), move, core.stop_action)

    return policy


def mean_path_edges(world: NavWorld) -> int:
    """The mean number of edges of the split's reference paths (at least 1)."""
    return max(1, int(round(np.mean([len(e.path) - 1 for e in world.episodes]))))


@dataclass(frozen=True)
class Baseline:
    """A named reference policy.

    Attributes:
        name: registry name (``random_walk``), used in tables and TensorBoard tags.
        description: what it does, in a few words (printed beside the name).
        make: ``make(world) -> policy``; the policy may depend on the split (``random_walk``'s length).
    """

    name: str
    description: str
    make: Callable[[NavWorld], Callable]

    def policy(self, world: NavWorld) -> Callable:
        """The policy for ``world``'s split."""
        return self.make(world)


BASELINES: Registry[Baseline] = Registry("baseline")
for _b in (
    Baseline("stop", "STOP at the start", lambda world: stop_policy),
    Baseline("random_uniform", "each step uniform over the candidates and STOP", lambda world: random_policy),
    Baseline("random_walk", "uniform moves, as many as the mean reference path has edges, then STOP",
             lambda world: random_walk_policy(mean_path_edges(world))),
    Baseline("teacher", "shortest-path oracle", lambda world: teacher_policy),
):
    BASELINES.register(_b.name, _b)


def rollout_split(world: NavWorld, policy: Callable, batch_size: int = 64, seed: int = 0) -> list[dict]:
    """Run ``policy`` once on every episode of ``world`` (up to ``max_episode_steps`` actions).

    Returns:
        the R2R submission list: ``[{"instr_id", "trajectory": [[vp, heading, elevation], ...]}]``.
    """
    rng = np.random.default_rng(seed)
    core = NavBatch(world, batch_size)
    out = []
    n = len(world.episodes)
    for start in range(0, n, batch_size):
        idx = np.arange(start, min(start + batch_size, n))
        core.reset_envs(np.arange(batch_size), np.resize(idx, batch_size))
        done = np.zeros(batch_size, dtype=bool)
        done[len(idx):] = True
        for _ in range(world.cfg.max_episode_steps):
            _, stop = core.step(np.where(done, core.stop_action, policy(core, rng)), ~done)
            done |= stop
            if done.all():
                break
        out += [{"instr_id": world.episodes[e].instr_id, "trajectory": core.trajectory(b)} for b, e in enumerate(idx)]
    return out


def evaluate_policy(world: NavWorld, policy: Callable, batch_size: int = 64, seed: int = 0):
    """Roll ``policy`` over the split and score it; returns ``vln.evaluate.EvaluationResult``."""
    evaluator = Evaluator({s: world.navgraph[s] for s in world.scans}, world.episodes)
    return evaluator.score(rollout_split(world, policy, batch_size, seed))
