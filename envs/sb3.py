"""Stable-Baselines3 / sb3-contrib interoperability: a flattening wrapper and a ``VecEnv`` adapter.

Needs the ``rl`` extra (``pip install -e .[rl]``: ``stable-baselines3``, ``sb3-contrib``); nothing
else in the package imports this module.

Single environment (SB3 wraps it in ``Monitor`` + ``DummyVecEnv`` itself)::

    from sb3_contrib import MaskablePPO
    from envs.sb3 import make_sb3_env
    env = make_sb3_env("vln/R2R-v0", split="train", features="synthetic_semantic")
    MaskablePPO("MultiInputPolicy", env).learn(10_000)

Our natively batched environment as an SB3 ``VecEnv`` (one array step for all sub-environments)::

    from stable_baselines3.common.vec_env import VecMonitor
    from envs.sb3 import make_sb3_vec_env
    venv = VecMonitor(make_sb3_vec_env("vln/R2R-v0", num_envs=64, features="synthetic_semantic"))
    MaskablePPO("MultiInputPolicy", venv).learn(100_000)

Both expose ``action_masks()`` (what ``MaskablePPO`` calls) and keep ``action_mask`` in the
observation.
"""
from __future__ import annotations

import logging
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding

from vln.errors import DependencyNotInstalled

from .batch import NavBatch, integer_actions
from .render import render_ansi, render_rgb
from .world import draw_episode

try:
    from stable_baselines3.common.vec_env import VecEnv
except ImportError as e:  # the optional ``rl`` extra
    raise DependencyNotInstalled(
        f"envs.sb3 needs stable-baselines3 (and sb3-contrib for MaskablePPO): pip install -e .[rl] ({e})"
    ) from e

logger = logging.getLogger(__name__)


def flat_observation_space(space: spaces.Dict) -> spaces.Dict:
    """``space`` with every multi-dimensional ``Box`` reshaped to 1-D (same dtype and bounds)."""
    out = {}
    for key, box in space.spaces.items():
        if isinstance(box, spaces.Box) and len(box.shape) > 1:
            box = spaces.Box(box.low.reshape(-1), box.high.reshape(-1), (int(np.prod(box.shape)),), box.dtype)
        out[key] = box
    return spaces.Dict(out)


def flatten_observation(obs: dict, space: spaces.Dict, batch_dims: int = 0) -> dict:
    """Reshape each entry of ``obs`` to the shape in ``space`` (views, no copy of contiguous arrays).

    Args:
        obs: an observation dict; arrays have ``batch_dims`` leading batch axes.
        space: the flat space (:func:`flat_observation_space`).
        batch_dims: 0 for a single environment, 1 for a batch of shape (num_envs, ...).
    """
    return {k: v.reshape(v.shape[:batch_dims] + space.spaces[k].shape) for k, v in obs.items()}


class FlattenFeatures(gym.ObservationWrapper):
    """Reshapes the 2-D observation entries (``view_features`` (36, D+128), ``candidate_features``
    (K, D+128), ``candidate_angles`` (K, 4)) to 1-D, row-major.

    SB3 policies feed non-image ``Box`` entries through ``nn.Flatten`` anyway, and its env checker
    warns about 2-D non-image observations; this wrapper gives SB3 the shape it expects without
    changing the environment (agents that want the (views, features) layout use the env as is).
    ``action_masks()`` is forwarded.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = flat_observation_space(env.observation_space)

    def observation(self, observation: dict) -> dict:
        return flatten_observation(observation, self.observation_space)

    def action_masks(self) -> np.ndarray:
        """(K+1,) bool valid actions now (the wrapped environment's)."""
        return self.env.get_wrapper_attr("action_masks")()


def make_sb3_env(env_id: str = "vln/R2R-v0", flatten: bool = True, **kwargs) -> gym.Env:
    """``gymnasium.make(env_id, **kwargs)``, wrapped in :class:`FlattenFeatures` when ``flatten``."""
    env = gym.make(env_id, **kwargs)
    return FlattenFeatures(env) if flatten else env


class SB3VecEnv(VecEnv):
    """Our natively batched environment as a Stable-Baselines3 ``VecEnv``.

    It steps the same :class:`envs.batch.NavBatch` core as :class:`envs.vector.VLNVectorEnv`
    (one array operation for all sub-environments), with SB3's autoreset: a sub-environment that
    ends is reset in the same ``step`` and its last observation goes to
    ``info["terminal_observation"]``; ``info["TimeLimit.truncated"]`` marks episodes cut at
    ``max_episode_steps``. Sub-environment ``i`` draws episodes from its own generator seeded with
    ``seed + i`` (``VecEnv.seed``), so rollouts equal ``DummyVecEnv`` over single environments
    made with :func:`make_sb3_env` (checked in the tests).

    Per-environment ``info``: ``teacher_action``, ``distance_to_goal`` (metres),
    ``episode_index``, ``TimeLimit.truncated``; at episode end also ``instr_id``, ``trajectory``
    (R2R submission format) and ``terminal_observation``.

    Args:
        venv: a native vector env, ``gymnasium.make_vec(env_id, num_envs=N,
            vectorization_mode="vector_entry_point", ...)``; its world, spaces and ``num_envs``
            are used (it is not stepped itself).
        flatten: reshape 2-D observation entries to 1-D, as :class:`FlattenFeatures` does.

    The arrays a step returns are fresh each step and must not be modified in place: the
    ``terminal_observation`` of an episode that ends by STOP is a view into them.
    """

    def __init__(self, venv, flatten: bool = True):
        self.venv = venv.unwrapped if hasattr(venv, "unwrapped") else venv
        self.world = self.venv.world
        self.cfg = self.world.cfg
        self.flatten = flatten
        single = self.venv.single_observation_space
        obs_space = flat_observation_space(single) if flatten else single
        n = int(self.venv.num_envs)
        self._core = NavBatch(self.world, n)
        self._sub: dict[int, NavBatch] = {}  # small batches observing terminal states, by size
        self._rngs = [seeding.np_random(None)[0] for _ in range(n)]
        self._actions: np.ndarray | None = None
        self._last_obs: dict = {}
        self._started = False
        super().__init__(n, obs_space, self.venv.single_action_space)

    # ------------------------------------------------------------------ helpers
    def _observe(self, core: NavBatch) -> dict:
        obs = core.observe(self.cfg.feature_mode)
        return flatten_observation(obs, self.observation_space, 1) if self.flatten else obs

    def _draw(self, env: int) -> int:
        return draw_episode(self._rngs[env], len(self.world.episodes))

    def _episode_for(self, env: int, options: dict) -> int:
        if "instr_id" in options:
            return self.world.episode_index(options["instr_id"])
        if "episode" in options:
            e = int(options["episode"])
            if not 0 <= e < len(self.world.episodes):
                raise IndexError(f"episode {e} out of range (split has {len(self.world.episodes)})")
            return e
        return self._draw(env)

    def _terminal_observations(self, idx: np.ndarray, stopped: np.ndarray) -> list[dict]:
        """Observations of the sub-environments ``idx`` before they are reset (one dict per env).

        An observation is a function of (episode, viewpoint, view) only and STOP changes neither,
        so an episode that ended by STOP ends on the observation returned by the previous step
        (a view into it, no copy); only episodes cut by the time limit after a move are observed
        again, through a small batch over the same world.
        """
        out: list[dict | None] = [None] * len(idx)
        last = self._last_obs
        moved = [j for j, b in enumerate(idx.tolist()) if not stopped[b]]
        for j, b in enumerate(idx.tolist()):
            if stopped[b]:
                out[j] = {key: v[b] for key, v in last.items()}
        if moved:
            k = len(moved)
            sub = self._sub.get(k)
            if sub is None:
                sub = self._sub[k] = NavBatch(self.world, k)
            rows = idx[moved]
            core = self._core
            sub.episode, sub.vp, sub.view, sub.steps = core.episode[rows], core.vp[rows], core.view[rows], core.steps[rows]
            obs = self._observe(sub)
            for i, j in enumerate(moved):
                out[j] = {key: v[i] for key, v in obs.items()}
        return out

    def _info_columns(self) -> tuple[list, list, list]:
        """Per-environment teacher action, distance to goal (metres) and episode index, as lists."""
        core = self._core
        rows, count = core.candidate_rows()
        return core.teacher_actions(rows, count).tolist(), core.goal_distance().tolist(), core.episode.tolist()

    def _reset_info(self, teacher, dist, episode, b: int) -> dict:
        return {"teacher_action": teacher[b], "distance_to_goal": dist[b], "episode_index": episode[b]}

    # ------------------------------------------------------------------ VecEnv API
    def reset(self):
        n = self.num_envs
        episodes = np.empty(n, dtype=np.int64)
        for i in range(n):
            if self._seeds[i] is not None:
                self._rngs[i] = seeding.np_random(self._seeds[i])[0]
            episodes[i] = self._episode_for(i, self._options[i] or {})
        self._core.reset_envs(np.arange(n), episodes)
        self._reset_seeds()
        self._reset_options()
        self._started = True
        cols = self._info_columns()
        self.reset_infos = [self._reset_info(*cols, b) for b in range(n)]
        self._last_obs = self._observe(self._core)
        return self._last_obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = integer_actions(actions, self.num_envs)

    def step_wait(self):
        if not self._started:
            raise RuntimeError("call reset() before step()")
        core = self._core
        reward, stop = core.step(self._actions)  # raises InvalidActionError on a masked action
        truncated = ~stop & (core.steps >= self.cfg.max_episode_steps)
        done = stop | truncated
        # As DummyVecEnv: the info describes the state reached (the terminal one when done).
        teacher, dist, episode = self._info_columns()
        infos = [{"teacher_action": t, "distance_to_goal": d, "episode_index": e, "TimeLimit.truncated": tr}
                 for t, d, e, tr in zip(teacher, dist, episode, truncated.tolist())]
        if done.any():
            idx = np.flatnonzero(done)
            terminal = self._terminal_observations(idx, stop)
            ids = self.world.instr_ids.take(core.episode.take(idx)).tolist()
            for j, (b, traj) in enumerate(zip(idx.tolist(), core.trajectories(idx))):
                infos[b].update(terminal_observation=terminal[j], trajectory=traj, instr_id=ids[j])
            core.reset_envs(idx, np.array([self._draw(b) for b in idx.tolist()], dtype=np.int64))
            cols = self._info_columns()
            for b in idx.tolist():
                self.reset_infos[b] = self._reset_info(*cols, b)
        self._last_obs = self._observe(core)
        return self._last_obs, reward, done, infos

    def action_masks(self) -> np.ndarray:
        """(num_envs, K+1) bool valid actions now (candidates and STOP)."""
        rows, _ = self._core.candidate_rows()
        mask = np.ones((self.num_envs, self.cfg.max_candidates + 1), dtype=bool)
        mask[:, :-1] = rows >= 0
        return mask

    def close(self) -> None:
        self._started = False

    def _indices(self, indices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        """``action_masks`` gives each sub-environment's (K+1,) row (what ``MaskablePPO`` calls);
        other methods are called on the native vector env once per index."""
        idx = self._indices(indices)
        if method_name == "action_masks":
            masks = self.action_masks()
            return [masks[i] for i in idx]
        method = getattr(self.venv, method_name)
        return [method(*method_args, **method_kwargs) for _ in idx]

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        idx = self._indices(indices)
        if attr_name == "action_masks":
            return [lambda i=i: self.action_masks()[i] for i in idx]
        value = getattr(self.venv, attr_name)
        return [value for _ in idx]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self.venv, attr_name, value)

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False for _ in self._indices(indices)]

    def get_images(self):
        return [render_rgb(self._core, b) for b in range(self.num_envs)]

    def render(self, mode: str | None = None):
        mode = mode or self.render_mode
        if mode == "ansi":
            return "\n".join(render_ansi(self._core, b) for b in range(self.num_envs))
        return super().render(mode=mode)


def make_sb3_vec_env(env_id: str = "vln/R2R-v0", num_envs: int = 64, flatten: bool = True, **kwargs) -> SB3VecEnv:
    """:class:`SB3VecEnv` over ``gymnasium.make_vec(env_id, num_envs, "vector_entry_point", **kwargs)``."""
    venv = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
    return SB3VecEnv(venv, flatten=flatten)
