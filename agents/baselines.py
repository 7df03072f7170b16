"""Reference policies scored by the same code as the agent: STOP at the start, and a random walk."""
from __future__ import annotations

import numpy as np

from envs.batch import NavBatch


def baseline_trajectories(world, policy: str, seed: int = 0, steps: int | None = None, batch_size: int = 256) -> dict:
    """``{instr_id: trajectory}`` of a baseline policy on every episode of ``world``.

    Args:
        policy: ``"stop"`` (STOP immediately) or ``"random"`` (a random walk of ``steps`` moves,
            each to a uniformly drawn candidate, then STOP).
        steps: random-walk length; default the mean number of edges of the split's reference paths
            (rounded), so the walk travels as far as a typical episode.
    """
    if policy not in ("stop", "random"):
        raise ValueError(f"policy must be 'stop' or 'random', got {policy!r}")
    rng = np.random.default_rng(seed)
    if steps is None:
        steps = max(1, int(round(np.mean([len(e.path) - 1 for e in world.episodes]))))
    out = {}
    n = len(world.episodes)
    for start in range(0, n, batch_size):
        idx = np.arange(start, min(n, start + batch_size))
        nav = NavBatch(world, len(idx))
        nav.reset_envs(np.arange(len(idx)), idx)
        if policy == "random":
            for _ in range(steps):
                _, count = nav.candidate_rows()
                a = np.where(count > 0, (rng.random(len(idx)) * np.maximum(count, 1)).astype(np.int64), nav.stop_action)
                nav.step(a, active=count > 0)
        for b, e in enumerate(idx.tolist()):
            out[world.episodes[e].instr_id] = nav.trajectory(b)
    return out
