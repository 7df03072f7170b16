"""The batched navigation core: B episodes stepped together with array indexing only.

State per episode: global viewpoint id, view index (heading step + 12 * elevation level, as the
simulator's ``viewIndex``), step count, and goal. A move turns the agent to the candidate's view
and steps to it, exactly as EnvDrop's ``make_equiv_action`` leaves the simulator (checked against
:class:`vln.sim.Simulator` in the tests).
"""
from __future__ import annotations

import numpy as np

from vln.errors import InvalidActionError
from vln.sim.geometry import HEADING_COUNT, HEADING_INCREMENT

from .angles import ANGLE_FEATURE_SIZE, VIEW_ANGLE_FEATURES, angle_features
from .rewards import REWARDS
from .world import NavWorld


class NavBatch:
    """B navigation episodes over one :class:`NavWorld`.

    Actions: ``0 <= a < n_candidates[b]`` moves to candidate ``a``; ``a == K`` (``stop_action``)
    stops. Anything else raises :class:`InvalidActionError`.
    """

    def __init__(self, world: NavWorld, batch_size: int):
        self.world = world
        self.B = batch_size
        self.K = world.cfg.max_candidates
        self.stop_action = self.K
        self.reward_fn = REWARDS.get(world.cfg.reward)
        B, T = batch_size, world.cfg.max_episode_steps
        self.episode = np.zeros(B, dtype=np.int64)
        self.scan = np.zeros(B, dtype=np.int64)
        self.vp = np.zeros(B, dtype=np.int64)  # global viewpoint id
        self.goal = np.zeros(B, dtype=np.int64)  # scan-local goal index
        self.view = np.zeros(B, dtype=np.int64)
        self.steps = np.zeros(B, dtype=np.int64)
        self.history_vp = np.zeros((B, T + 1), dtype=np.int64)
        self.history_view = np.zeros((B, T + 1), dtype=np.int64)
        self._arange = np.arange(B)
        self._slots = np.arange(self.K)[None, :]
        self._rows_cache = None

    # ------------------------------------------------------------------ reset
    def reset_envs(self, envs: np.ndarray, episodes: np.ndarray) -> None:
        """Start ``episodes`` (indices into ``world.episodes``) in batch slots ``envs``."""
        w = self.world
        envs = np.asarray(envs, dtype=np.int64)
        episodes = np.asarray(episodes, dtype=np.int64)
        scan = w.episode_scan[episodes]
        self.episode[envs] = episodes
        self.scan[envs] = scan
        self.vp = self.vp.copy()  # a new array: invalidates the candidate-row cache
        self.vp[envs] = w.scan_offset[scan] + w.episode_start[episodes]
        self.goal[envs] = w.episode_goal[episodes]
        self.view[envs] = w.episode_view[episodes]
        self.steps[envs] = 0
        self.history_vp[envs, 0] = self.vp[envs]
        self.history_view[envs, 0] = self.view[envs]

    # ------------------------------------------------------------------ candidates
    def candidate_rows(self):
        """(B, K) rows into the global candidate table (-1 padding) and (B,) counts.

        Cached until the batch moves (every state change goes through ``vp``).
        """
        cached = self._rows_cache
        if cached is not None and cached[0] is self.vp:
            return cached[1], cached[2]
        w = self.world
        start = w.cand_ptr[self.vp]
        count = w.cand_ptr[self.vp + 1] - start
        rows = np.where(self._slots < count[:, None], start[:, None] + self._slots, -1)
        self._rows_cache = (self.vp, rows, count)
        return rows, count

    def local_vp(self, vp=None) -> np.ndarray:
        vp = self.vp if vp is None else vp
        return vp - self.world.scan_offset[self.world.scan_of_global[vp]]

    def goal_distance(self) -> np.ndarray:
        """(B,) shortest-path distance in metres from the current viewpoint to the goal."""
        w = self.world
        local = self.vp - w.scan_offset[self.scan]
        return w.pair_distance[w.pair_base[self.scan] + local * w.scan_size[self.scan] + self.goal]

    def teacher_actions(self, rows=None, count=None) -> np.ndarray:
        """(B,) next action on the shortest path to the goal (STOP at the goal)."""
        if rows is None:
            rows, count = self.candidate_rows()
        w = self.world
        offset = w.scan_offset[self.scan]
        local = self.vp - offset
        # Dijkstra from the goal: the predecessor of the current viewpoint is its next hop.
        nxt_local = w.pair_predecessor[w.pair_base[self.scan] + self.goal * w.scan_size[self.scan] + local]
        at_goal = local == self.goal
        hit = (w.cand_target[np.maximum(rows, 0)] == (nxt_local + offset)[:, None]) & (rows >= 0) & (nxt_local >= 0)[:, None]
        action = np.argmax(hit, axis=1)
        return np.where(at_goal | ~hit.any(axis=1), self.stop_action, action)

    # ------------------------------------------------------------------ step
    def validate(self, actions, count) -> np.ndarray:
        a = np.asarray(actions)
        if a.shape != (self.B,) or not np.issubdtype(a.dtype, np.integer):
            raise InvalidActionError(f"expected {self.B} integer actions, got {a!r}")
        bad = ~(((a >= 0) & (a < count)) | (a == self.stop_action))
        if bad.any():
            b = int(np.flatnonzero(bad)[0])
            raise InvalidActionError(
                f"invalid action {int(a[b])} in environment {b}: it has {int(count[b])} candidates "
                f"(actions 0..{int(count[b]) - 1}) and STOP is {self.stop_action}; use the action mask"
            )
        return a.astype(np.int64)

    def step(self, actions, active=None):
        """Apply ``actions`` to the slots where ``active`` (default all); returns rewards and STOP mask."""
        rows, count = self.candidate_rows()
        a = self.validate(actions, count)
        active = np.ones(self.B, dtype=bool) if active is None else active
        before = self.goal_distance()
        stop = (a == self.stop_action) & active
        move = ~stop & active
        r = rows[self._arange, np.minimum(a, self.K - 1)]
        self.vp = np.where(move, self.world.cand_target[np.maximum(r, 0)], self.vp)
        self.view = np.where(move, self.world.cand_point_id[np.maximum(r, 0)], self.view)
        self.steps = self.steps + active
        t = np.minimum(self.steps, self.history_vp.shape[1] - 1)
        self.history_vp[self._arange, t] = np.where(active, self.vp, self.history_vp[self._arange, t])
        self.history_view[self._arange, t] = np.where(active, self.view, self.history_view[self._arange, t])
        after = self.goal_distance()
        reward = self.reward_fn(before, after, stop, self.world.cfg.success_radius)
        return np.where(active, reward, 0.0).astype(np.float32), stop

    # ------------------------------------------------------------------ observations
    def observe(self, feature_mode: str = "numpy") -> dict:
        """Batched observation dict (see ``envs.spaces.observation_space``)."""
        w = self.world
        rows, count = self.candidate_rows()
        valid = rows >= 0
        safe = np.maximum(rows, 0)
        base = (self.view % HEADING_COUNT).astype(np.float64) * HEADING_INCREMENT
        rel_heading = w.cand_heading[safe] - base[:, None]
        local_targets = np.where(valid, self.local_vp(w.cand_target[safe]), -1)
        mask = np.zeros((self.B, self.K + 1), dtype=np.int8)
        mask[:, : self.K] = valid
        mask[:, self.K] = 1
        obs = {
            "instruction": w.instruction_ids[self.episode],
            "instruction_length": w.instruction_lengths[self.episode][:, None],
            "view_index": self.view[:, None].copy(),
            "candidate_viewpoints": local_targets.astype(np.int64),
            "action_mask": mask,
        }
        point = np.where(valid, w.cand_point_id[safe], 0)
        if feature_mode == "index":
            # Compact: the agent tiles [sin h, cos h, sin e, cos e] and gathers the visual features
            # and the view angle features (envs.angles.VIEW_ANGLE_FEATURES[view % 12]) on its device.
            obs["feature_row"] = w.feature_rows[self.vp][:, None] if w.feature_dim else np.full((self.B, 1), -1)
            obs["candidate_point_ids"] = np.where(valid, point, -1).astype(np.int64)
            elev = w.cand_elevation[safe]
            four = np.stack([np.sin(rel_heading), np.cos(rel_heading), np.sin(elev), np.cos(elev)], -1)
            four[~valid] = 0.0
            obs["candidate_angles"] = four.astype(np.float32)
            return obs
        cand_angles = angle_features(rel_heading, w.cand_elevation[safe])
        cand_angles[~valid] = 0.0
        view_angles = VIEW_ANGLE_FEATURES[self.view % HEADING_COUNT]  # (B, 36, 128)
        D = w.feature_dim
        views = np.zeros((self.B, 36, D + ANGLE_FEATURE_SIZE), dtype=np.float32)
        if D:
            views[:, :, :D] = w.features[w.feature_rows[self.vp]]
        views[:, :, D:] = view_angles
        cands = np.zeros((self.B, self.K, D + ANGLE_FEATURE_SIZE), dtype=np.float32)
        if D:
            cands[:, :, :D] = views[self._arange[:, None], point, :D]
            cands[:, :, :D][~valid] = 0.0
        cands[:, :, D:] = cand_angles
        obs["view_features"] = views
        obs["candidate_features"] = cands
        return obs

    def trajectory(self, b: int) -> list:
        """R2R submission trajectory of slot ``b``: [[viewpoint, heading, elevation], ...]."""
        ids = self.world.viewpoint_ids
        n = int(min(self.steps[b], self.history_vp.shape[1] - 1)) + 1
        return [[ids[vp], _VIEW_HEADING[view], _VIEW_ELEVATION[view]]
                for vp, view in zip(self.history_vp[b, :n].tolist(), self.history_view[b, :n].tolist())]


_VIEW_HEADING = [float(v % HEADING_COUNT) * HEADING_INCREMENT for v in range(36)]
_VIEW_ELEVATION = [(v // HEADING_COUNT - 1) * (np.pi / 6.0) for v in range(36)]
