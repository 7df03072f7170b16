"""Panoramic trajectory features for the speaker: follow the teacher and record every step.

As EnvDrop's ``Speaker.from_shortest_path``: at each step the 36 view features (visual ++ angle
relative to the agent's heading) are recorded with the feature of the action the teacher takes
(the candidate's view feature ++ its angle feature; STOP is all zeros). The step on which the
agent stops is part of the trajectory, so a path of n edges gives n + 1 steps.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from envs.batch import NavBatch

from .bank import FeatureBank


@dataclass
class TrajectoryInputs:
    """Speaker inputs of B trajectories padded to T steps.

    Attributes:
        views: (B, T, 36, F) float32, F = D + 128.
        actions: (B, T, F) float32; zeros at STOP and on padding.
        lengths: (B,) int64 steps per trajectory (the STOP step included).
    """

    views: torch.Tensor
    actions: torch.Tensor
    lengths: torch.Tensor


@torch.no_grad()
def teacher_trajectories(bank: FeatureBank, nav: NavBatch, env_mask: torch.Tensor | None = None,
                         max_steps: int | None = None) -> TrajectoryInputs:
    """Roll the episodes ``nav`` was reset to along the teacher's actions and record the features.

    ``env_mask``: optional (B, D) environmental-dropout mask applied to every visual feature.
    The batch is left where the teacher stopped; reset it before another rollout.
    """
    max_steps = nav.world.cfg.max_episode_steps if max_steps is None else max_steps
    B, K = nav.B, nav.stop_action
    dev = bank.device
    ended = np.zeros(B, dtype=bool)
    lengths = np.zeros(B, dtype=np.int64)
    views, actions = [], []
    for t in range(max_steps + 1):
        obs = nav.observe("index")
        inp = bank.step_inputs(obs, env_mask)
        # After ``max_steps`` moves the only action left is STOP.
        teacher = np.where(ended | (t == max_steps), K, nav.teacher_actions())
        idx = torch.as_tensor(teacher, device=dev)
        act = inp.candidates[torch.arange(B, device=dev), idx]  # slot K (STOP) is zeros
        views.append(inp.views)
        actions.append(act * torch.as_tensor(~ended, device=dev, dtype=act.dtype)[:, None])
        lengths += ~ended
        stop = teacher == K
        nav.step(teacher.astype(np.int64), active=~ended)
        ended = ended | stop
        if ended.all():
            break
    return TrajectoryInputs(torch.stack(views, 1), torch.stack(actions, 1), torch.as_tensor(lengths, device=dev))
