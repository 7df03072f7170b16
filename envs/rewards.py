"""Reward functions of the navigation environments (a registry: add one by registering it).

Each takes distances to the goal before and after the step (metres, arrays of shape (B,)), the
STOP mask and the success radius, and returns (B,) float32 rewards.
"""
from __future__ import annotations

import numpy as np

from vln.registry import Registry

REWARDS: Registry = Registry("reward")


@REWARDS.register("envdrop")
def envdrop_reward(dist_before, dist_after, stopped, success_radius: float = 3.0) -> np.ndarray:
    """EnvDrop shaping: moving +1 / -1 / 0 as the distance to the goal falls / rises / stays;
    at STOP +2 within ``success_radius`` (strict ``<``) and -2 otherwise."""
    moving = np.sign(dist_before - dist_after)
    at_stop = np.where(dist_after < success_radius, 2.0, -2.0)
    return np.where(stopped, at_stop, moving).astype(np.float32)


@REWARDS.register("success")
def success_reward(dist_before, dist_after, stopped, success_radius: float = 3.0) -> np.ndarray:
    """Sparse: 1 at a successful STOP, 0 otherwise."""
    return (stopped & (dist_after < success_radius)).astype(np.float32)


@REWARDS.register("progress")
def progress_reward(dist_before, dist_after, stopped, success_radius: float = 3.0) -> np.ndarray:
    """Metres of progress toward the goal each move, plus the EnvDrop +/-2 at STOP."""
    at_stop = np.where(dist_after < success_radius, 2.0, -2.0)
    return np.where(stopped, at_stop, dist_before - dist_after).astype(np.float32)
