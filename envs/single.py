"""Single-episode Gymnasium environments ``vln/R2R-v0`` and ``vln/RxR-v0``."""
from __future__ import annotations

from dataclasses import fields

import gymnasium as gym
import numpy as np

from .batch import NavBatch, integer_actions
from .render import render_ansi, render_rgb
from .spaces import action_space, observation_space
from .world import EnvConfig, NavWorld, draw_episode


def make_config(defaults: dict, kwargs: dict) -> EnvConfig:
    names = {f.name for f in fields(EnvConfig)}
    unknown = set(kwargs) - names - {"render_mode", "world"}
    if unknown:
        raise TypeError(f"unknown environment arguments: {sorted(unknown)}; known: {sorted(names)}")
    return EnvConfig(**{**defaults, **{k: v for k, v in kwargs.items() if k in names}})


class VLNEnv(gym.Env):
    """One navigation episode at a time (panoramic action space, as in EnvDrop).

    ``reset(seed=..., options={"episode": i | "instr_id": id})`` starts a random episode of the
    split (from ``self.np_random``) or the one asked for. ``step(a)``: ``a < K`` moves to candidate
    ``a`` (turning to face it first), ``a == K`` is STOP (terminated). Truncation at
    ``max_episode_steps`` comes from the registered ``TimeLimit`` wrapper.

    ``info`` holds ``instr_id``, ``scan``, ``viewpoint``, ``teacher_action`` (next action on the
    shortest path), ``distance_to_goal`` (metres) and ``trajectory`` (R2R submission format).
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 2}
    DEFAULTS: dict = {}

    def __init__(self, render_mode: str | None = None, world: NavWorld | None = None, **kwargs):
        self.cfg = make_config(self.DEFAULTS, kwargs) if world is None else world.cfg
        self.world = world if world is not None else NavWorld(self.cfg)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.render_mode = render_mode
        w = self.world
        self.observation_space = observation_space(
            w.vocab_size, self.cfg.max_instruction_length, w.feature_dim, self.cfg.max_candidates,
            w.max_scan_size, len(w.features), self.cfg.feature_mode, w.feature_bounds,
            max_candidate_distance=w.max_candidate_distance)
        self.action_space = action_space(self.cfg.max_candidates, self._sampling_mask)
        self._core = NavBatch(w, 1)
        self._started = False

    @property
    def tokenizer(self):
        return self.world.tokenizer

    def action_masks(self) -> np.ndarray:
        """(K+1,) bool: the valid actions now (candidates and STOP), for MaskablePPO."""
        return self._core.action_mask()[0].astype(bool)

    def _sampling_mask(self) -> np.ndarray:
        return self.action_masks() if self._started else np.ones(self.action_space.n, dtype=bool)

    def _obs(self) -> dict:
        return {k: v[0] for k, v in self._core.observe(self.cfg.feature_mode).items()}

    def _info(self) -> dict:
        core, w = self._core, self.world
        ep = w.episodes[int(core.episode[0])]
        return {
            "instr_id": ep.instr_id,
            "scan": ep.scan,
            "viewpoint": w.viewpoint_ids[int(core.vp[0])],
            "teacher_action": int(core.teacher_actions()[0]),
            "distance_to_goal": float(core.goal_distance()[0]),
            "trajectory": core.trajectory(0),
        }

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        if "instr_id" in options:
            e = self.world.episode_index(options["instr_id"])
        elif "episode" in options:
            e = int(options["episode"])
            if not 0 <= e < len(self.world.episodes):
                raise IndexError(f"episode {e} out of range (split has {len(self.world.episodes)})")
        else:
            e = draw_episode(self.np_random, len(self.world.episodes))
        self._core.reset_envs(np.array([0]), np.array([e]))
        self._started = True
        return self._obs(), self._info()

    def step(self, action):
        if not self._started:
            raise RuntimeError("call reset() before step()")
        reward, stop = self._core.step(integer_actions(action, 1))
        terminated = bool(stop[0])
        if terminated:
            self._started = False
        info = self._info()
        return self._obs(), float(reward[0]), terminated, False, info

    def render(self):
        if self.render_mode == "ansi":
            return render_ansi(self._core, 0)
        if self.render_mode == "rgb_array":
            return render_rgb(self._core, 0)
        return None

    def close(self):
        self._started = False


class R2REnv(VLNEnv):
    """``vln/R2R-v0``: Room-to-Room (max instruction 80 tokens, 35 actions)."""

    DEFAULTS = dict(dataset="r2r", max_instruction_length=80, max_episode_steps=35)


class RxREnv(VLNEnv):
    """``vln/RxR-v0``: Room-across-Room (max instruction 160 tokens, 35 actions)."""

    DEFAULTS = dict(dataset="rxr", max_instruction_length=160, max_episode_steps=35)
