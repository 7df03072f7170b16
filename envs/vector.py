"""Natively batched environment: ``gymnasium.make_vec("vln/R2R-v0", num_envs=64,
vectorization_mode="vector_entry_point")``.

All sub-environments step in one call with array indexing (no Python loop per episode on the
hot path). It follows Gymnasium's ``NEXT_STEP`` autoreset: the step after an episode ends
resets that sub-environment and returns its first observation with reward 0. Sub-environment
``i`` draws its episodes from its own generator seeded with ``seed + i``, so rollouts equal
those of ``SyncVectorEnv`` over single environments with the same seed.
"""
from __future__ import annotations

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from .batch import NavBatch, integer_actions
from .render import render_ansi, render_rgb
from .single import make_config
from .spaces import action_space, observation_space
from .world import NavWorld, draw_episode


class VLNVectorEnv(VectorEnv):
    """``num_envs`` navigation episodes stepped together.

    ``info`` holds arrays (with Gymnasium's ``_key`` masks): ``teacher_action``,
    ``distance_to_goal``, ``episode_index``; when an episode ends, ``instr_id`` and ``trajectory``
    for those sub-environments.

    ``copy`` follows Gymnasium's ``SyncVectorEnv``: True (default) returns new observation
    arrays from every ``reset`` and ``step`` (they may be kept); False returns the same dict of
    arrays every time, overwritten in place by the next ``reset`` or ``step`` (no allocation of
    the (num_envs, 36, D+128) features per step in ``feature_mode="numpy"``; copy what you keep).
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP, "render_fps": 2}
    DEFAULTS: dict = {}

    def __init__(self, num_envs: int = 1, render_mode: str | None = None, world: NavWorld | None = None,
                 max_episode_steps: int | None = None, copy: bool = True, **kwargs):
        defaults = dict(self.DEFAULTS)
        if max_episode_steps is not None:
            defaults["max_episode_steps"] = max_episode_steps
        self.cfg = make_config(defaults, kwargs) if world is None else world.cfg
        self.world = world if world is not None else NavWorld(self.cfg)
        self.num_envs = int(num_envs)
        self.render_mode = render_mode
        w = self.world
        self.single_observation_space = observation_space(
            w.vocab_size, self.cfg.max_instruction_length, w.feature_dim, self.cfg.max_candidates,
            w.max_scan_size, len(w.features), self.cfg.feature_mode, w.feature_bounds,
            max_candidate_distance=w.max_candidate_distance)
        self.single_action_space = action_space(self.cfg.max_candidates)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._core = NavBatch(w, self.num_envs)
        self.copy = bool(copy)
        self._obs_buffer: dict | None = None  # reused when copy=False
        self._all_true = np.ones(self.num_envs, dtype=bool)
        self._nones = np.full(self.num_envs, None, dtype=object)
        self._rngs = [seeding.np_random(None)[0] for _ in range(self.num_envs)]
        self._prev_done = np.zeros(self.num_envs, dtype=bool)
        self._started = False

    @property
    def tokenizer(self):
        return self.world.tokenizer

    def action_masks(self) -> np.ndarray:
        """(num_envs, K+1) bool valid actions (candidates and STOP), for MaskablePPO."""
        return self._core.action_mask().astype(bool)

    def _observe(self) -> dict:
        if self.copy:
            return self._core.observe(self.cfg.feature_mode)
        self._obs_buffer = self._core.observe(self.cfg.feature_mode, out=self._obs_buffer)
        return self._obs_buffer

    def _draw(self, envs) -> np.ndarray:
        n, rngs = len(self.world.episodes), self._rngs
        return np.array([draw_episode(rngs[i], n) for i in envs.tolist()], dtype=np.int64)

    def _infos(self) -> dict:
        core = self._core
        all_ = self._all_true.copy()  # (faster than np.ones)
        return {
            "teacher_action": core.teacher_actions(), "_teacher_action": all_,
            "distance_to_goal": core.goal_distance(), "_distance_to_goal": all_,
            "episode_index": core.episode.copy(), "_episode_index": all_,
        }

    def _final_infos(self, done: np.ndarray) -> dict:
        """``instr_id`` and ``trajectory`` of the episodes that just ended."""
        ids, traj = self._nones.copy(), self._nones.copy()  # (faster than np.full)
        idx = done.nonzero()[0]
        core = self._core
        ids[idx] = self.world.instr_ids.take(core.episode.take(idx))
        for b, t in zip(idx.tolist(), core.trajectories(idx)):
            traj[b] = t  # one by one: numpy would turn a list of equal-length lists into a 2-D array
        return {"instr_id": ids, "_instr_id": done.copy(), "trajectory": traj, "_trajectory": done.copy()}

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else list(seed)
            self._rngs = [seeding.np_random(s)[0] for s in seeds]
        options = options or {}
        envs = np.arange(self.num_envs)
        if "episodes" in options:
            episodes = np.asarray(options["episodes"], dtype=np.int64)
        else:
            episodes = self._draw(envs)
        self._core.reset_envs(envs, episodes)
        self._prev_done[:] = False
        self._started = True
        return self._observe(), self._infos()

    def step(self, actions):
        if not self._started:
            raise RuntimeError("call reset() before step()")
        core = self._core
        actions = integer_actions(actions, self.num_envs)
        reset_now = self._prev_done
        restart = reset_now.nonzero()[0]
        if len(restart):
            # Sub-environments that ended last step ignore their action and restart (NEXT_STEP).
            active = ~reset_now
            reward, stop = core.step(np.where(active, actions, core.stop_action), active)
            truncated = (core.steps >= self.cfg.max_episode_steps) & active
        else:
            reward, stop = core.step(actions)
            truncated = core.steps >= self.cfg.max_episode_steps
        truncated &= ~stop
        terminated = stop
        done = terminated | truncated
        final = self._final_infos(done) if done.any() else {}
        if len(restart):
            core.reset_envs(restart, self._draw(restart))
        obs = self._observe()
        infos = {**self._infos(), **final}
        self._prev_done = done
        return obs, reward, terminated, truncated, infos

    def render(self):
        if self.render_mode == "ansi":
            return "\n".join(render_ansi(self._core, b) for b in range(self.num_envs))
        if self.render_mode == "rgb_array":
            return [render_rgb(self._core, b) for b in range(self.num_envs)]
        return None

    def close_extras(self, **kwargs):
        self._started = False


class R2RVectorEnv(VLNVectorEnv):
    DEFAULTS = dict(dataset="r2r", max_instruction_length=80, max_episode_steps=35)


class RxRVectorEnv(VLNVectorEnv):
    DEFAULTS = dict(dataset="rxr", max_instruction_length=160, max_episode_steps=35)
