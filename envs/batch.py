"""The batched navigation core: B episodes stepped together with array indexing only.

State per episode: global viewpoint id, view index (heading step + 12 * elevation level, as the
simulator's ``viewIndex``), step count, and goal. A move turns the agent to the candidate's view
and steps to it, exactly as EnvDrop's ``make_equiv_action`` leaves the simulator (checked against
:class:`vln.sim.Simulator` in the tests).
"""
from __future__ import annotations

import numpy as np

from vln.errors import InvalidActionError
from vln.sim.geometry import HEADING_COUNT, NUM_VIEWS as N_VIEWS

from .angles import ANGLE_FEATURE_SIZE, VIEW_ANGLE_FEATURES
from .rewards import REWARDS
from .world import NavWorld


def integer_actions(actions, n: int) -> np.ndarray:
    """(n,) int64 actions from integers or integral floats (a scalar applies to all n).

    Raises:
        InvalidActionError: non-integral, non-finite or non-numeric actions (1.7 is never read as 1).
    """
    a = np.asarray(actions)
    if a.dtype.kind in "iu":
        a = a.astype(np.int64, copy=False)
    elif a.dtype.kind == "f" and np.isfinite(a).all() and (a == np.trunc(a)).all():
        a = a.astype(np.int64)
    else:
        raise InvalidActionError(f"actions must be integers (a candidate slot or STOP), got {actions!r}")
    if a.shape != (n,):
        try:
            a = np.broadcast_to(a, (n,))
        except ValueError:
            raise InvalidActionError(f"expected {n} actions, got an array of shape {a.shape}") from None
    return a


class NavBatch:
    """B navigation episodes over one :class:`NavWorld`.

    Actions: ``0 <= a < n_candidates[b]`` moves to candidate ``a``; ``a == K`` (``stop_action``)
    stops. Anything else raises :class:`InvalidActionError`.

    Candidates, action masks, candidate angles, distances and teacher actions are gathers from
    the world's per-viewpoint :class:`envs.tables.StepTables`. State arrays (``vp``, ``goal``...)
    are replaced, not modified in place, when the state changes (values derived from them are
    cached per ``vp``/``goal`` object).
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
        # Pose history, one key per step: global viewpoint * 36 + view index.
        self.history = np.zeros((B, T + 1), dtype=np.int64)
        self.tables = world.step_tables
        self._arange = np.arange(B)
        self._cache_vp = self._cache_goal = None
        self._cache_values: dict = {}

    # ------------------------------------------------------------------ reset
    def reset_envs(self, envs: np.ndarray, episodes: np.ndarray) -> None:
        """Start ``episodes`` (indices into ``world.episodes``) in batch slots ``envs``."""
        w = self.world
        envs = np.asarray(envs, dtype=np.int64)
        episodes = np.asarray(episodes, dtype=np.int64)
        if episodes.size and episodes.view(np.uint64).max() >= len(w.episodes):  # negatives wrap to huge
            raise IndexError(f"episode indices must be in [0, {len(w.episodes)}), got {episodes.tolist()}")
        scan = w.episode_scan[episodes]
        start = w.scan_offset[scan] + w.episode_start[episodes]
        view = w.episode_view[episodes]
        self.episode[envs] = episodes
        self.scan[envs] = scan
        self.vp = self.vp.copy()  # a new array: invalidates the per-state cache
        self.vp[envs] = start
        self.goal[envs] = w.episode_goal[episodes]
        self.view[envs] = view
        self.steps[envs] = 0
        self.history[envs, 0] = start * N_VIEWS + view

    # ------------------------------------------------------------------ candidates
    def _cache(self) -> dict:
        """Values derived from the current viewpoints and goals, emptied when they change.

        ``step`` and ``reset_envs`` replace the ``vp`` array (never modify it in place), as must
        a caller who sets the state, so the cache belongs to one (``vp``, ``goal``) pair of objects.
        """
        if self._cache_vp is not self.vp or self._cache_goal is not self.goal:
            self._cache_vp, self._cache_goal, self._cache_values = self.vp, self.goal, {}
        return self._cache_values

    def candidate_rows(self):
        """(B, K) rows into the global candidate table (-1 padding) and (B,) counts (cached per state)."""
        c = self._cache()
        if "rows" not in c:
            t = self.tables
            c["rows"] = (t.rows.take(self.vp, axis=0), t.count.take(self.vp))
        return c["rows"]

    def local_vp(self, vp=None) -> np.ndarray:
        vp = self.vp if vp is None else vp
        return vp - self.world.scan_offset[self.world.scan_of_global[vp]]

    def _pair_index(self) -> np.ndarray:
        """(B,) entry of (current viewpoint, goal) in the world's flattened all-pairs tables."""
        c = self._cache()
        if "pair" not in c:
            c["pair"] = self.tables.pair_row.take(self.vp) + self.goal
        return c["pair"]

    def _goal_distance(self) -> np.ndarray:
        c = self._cache()
        if "distance" not in c:
            c["distance"] = self.world.pair_distance.take(self._pair_index())
        return c["distance"]

    def goal_distance(self) -> np.ndarray:
        """(B,) float64 shortest-path distance in metres from the current viewpoint to the goal."""
        return self._goal_distance().copy()

    def teacher_actions(self, rows=None, count=None) -> np.ndarray:
        """(B,) int64 next action on the shortest path to the goal (STOP at the goal).

        The first candidate slot leading to the next hop of a shortest path (the Dijkstra
        predecessor of the current viewpoint in the tree rooted at the goal), looked up in
        ``world.step_tables.teacher``; ``rows`` and ``count`` are accepted for compatibility.
        """
        return self.tables.teacher.take(self._pair_index()).astype(np.int64)

    def action_mask(self) -> np.ndarray:
        """(B, K+1) int8: 1 for the candidates and for STOP (the last column)."""
        return self.tables.action_mask.take(self.vp, axis=0)

    # ------------------------------------------------------------------ step
    def validate(self, actions, count) -> np.ndarray:
        a = np.asarray(actions)
        if a.shape != (self.B,) or a.dtype.kind not in "iu":
            raise InvalidActionError(f"expected {self.B} integer actions, got {a!r}")
        ok = (a >= 0) & (a < count)
        ok |= a == self.stop_action
        if not ok.all():
            b = int(np.argmin(ok))
            raise InvalidActionError(
                f"invalid action {int(a[b])} in environment {b}: it has {int(count[b])} candidates "
                f"(actions 0..{int(count[b]) - 1}) and STOP is {self.stop_action}; use the action mask"
            )
        return a.astype(np.int64, copy=False)

    def step(self, actions, active=None):
        """Apply ``actions`` to the slots where ``active`` (default all); returns rewards and STOP mask.

        Returns:
            (B,) float32 rewards (0 where inactive) and the (B,) bool STOP mask.
        """
        t = self.tables
        vp = self.vp
        a = self.validate(actions, t.count.take(vp))
        before = self._goal_distance()
        stop = a == self.stop_action
        if active is None:
            move = ~stop
        else:
            active = np.asarray(active, dtype=bool)
            stop &= active
            move = active & ~stop
        cell = vp * self.K + np.minimum(a, self.K - 1)  # a >= 0: validated
        self.vp = np.where(move, t.target.reshape(-1).take(cell), vp)
        self.view = np.where(move, t.point.reshape(-1).take(cell), self.view)
        last = self.history.shape[1] - 1
        key = self.vp * N_VIEWS + self.view
        if active is None:
            self.steps = self.steps + 1
            self.history[self._arange, np.minimum(self.steps, last)] = key
        else:
            self.steps = self.steps + active
            b = active.nonzero()[0]
            self.history[b, np.minimum(self.steps[b], last)] = key[b]
        after = self._goal_distance()
        reward = self.reward_fn(before, after, stop, self.world.cfg.success_radius)
        if active is not None:
            reward = np.where(active, reward, 0.0)
        return reward.astype(np.float32, copy=False), stop

    # ------------------------------------------------------------------ observations
    def observe(self, feature_mode: str = "numpy", out: dict | None = None) -> dict:
        """Batched observation dict (see ``envs.spaces.observation_space``), arrays with a leading B.

        Args:
            feature_mode: ``"numpy"`` (view and candidate features in the observation) or
                ``"index"`` (feature rows, candidate view ids and the 4 candidate angles).
            out: None for new arrays (the caller may keep them), or a dict returned by an earlier
                call of this batch with the same mode, overwritten in place and returned (no
                allocation of the (B, 36, D+128) features per step; earlier results change).
        """
        if feature_mode not in ("numpy", "index"):
            raise ValueError(f"feature_mode must be 'numpy' or 'index', got {feature_mode!r}")
        w, t = self.world, self.tables
        vp, view = self.vp, self.view
        step = view % HEADING_COUNT
        o = {} if out is None else out
        _take(w.instruction_ids, self.episode, o, "instruction")
        _take(w.instruction_lengths, self.episode[:, None], o, "instruction_length")
        _take(view, self._arange[:, None], o, "view_index")
        _take(t.local_target, vp, o, "candidate_viewpoints")
        _take(t.action_mask, vp, o, "action_mask")
        _take(t.distance, vp, o, "candidate_distances")
        # (B, K) rows of the flattened (C+1) * 12 candidate-angle table: padding gives the zero row.
        angle_ix = t.angle_rows.take(vp, axis=0) * HEADING_COUNT + step[:, None]
        angles4 = t.angles.reshape(-1, 4)
        if feature_mode == "index":
            # Compact: the agent tiles [sin h, cos h, sin e, cos e] and gathers the visual features
            # and the view angle features (envs.angles.VIEW_ANGLE_FEATURES[view % 12]) on its device.
            _take(w.feature_rows, vp[:, None], o, "feature_row")
            _take(t.point, vp, o, "candidate_point_ids")
            _take(w.candidate_feature_rows, vp, o, "candidate_feature_rows")
            _take(angles4, angle_ix, o, "candidate_angles")
            return o
        D, A = w.feature_dim, ANGLE_FEATURE_SIZE
        if out is None:
            o["view_features"] = np.empty((self.B, 36, D + A), dtype=np.float32)
            o["candidate_features"] = np.empty((self.B, self.K, D + A), dtype=np.float32)
        views, cands = o["view_features"], o["candidate_features"]
        four = angles4.take(angle_ix, axis=0)  # (B, K, 4), zeros for padding
        if D % 4 == 0:
            # Angle columns as 16-byte items ([sin h, cos h, sin e, cos e] each): the candidates'
            # broadcast over the A/4 repeats and the views' gather copy whole items.
            cands.view(_QUAD)[:, :, D // 4:] = four.view(_QUAD)
            views.view(_QUAD)[:, :, D // 4:] = _VIEW_ANGLE_QUADS.take(step, axis=0)
        else:
            cands[:, :, D:] = np.tile(four, A // 4)
            views[:, :, D:] = VIEW_ANGLE_FEATURES.take(step, axis=0)
        if D:
            # One viewpoint at a time: no (B, 36, D) temporary between the table and the output.
            _, count = self.candidate_rows()
            feats, point = w.features, t.point
            for b, (row, n, v) in enumerate(zip(w.feature_rows.take(vp).tolist(), count.tolist(), vp.tolist())):
                f = feats[row]
                views[b, :, :D] = f
                cands[b, :n, :D] = f[point[v, :n]]
                cands[b, n:, :D] = 0.0
        return o

    @property
    def history_vp(self) -> np.ndarray:
        """(B, T+1) global viewpoint ids visited (entries past ``steps`` are stale)."""
        return self.history // N_VIEWS

    @property
    def history_view(self) -> np.ndarray:
        """(B, T+1) view indices after each step (entries past ``steps`` are stale)."""
        return self.history % N_VIEWS

    def trajectory(self, b: int) -> list:
        """R2R submission trajectory of slot ``b``: [(viewpoint, heading, elevation), ...].

        Entries are tuples, as EnvDrop's ``traj["path"]`` (JSON writes them as lists); equal
        poses share one tuple (``world.pose_entries``).
        """
        return self.trajectories([b])[0]

    def trajectories(self, slots) -> list:
        """Trajectories (as :meth:`trajectory`) of the batch slots ``slots``, one list each."""
        slots = np.asarray(slots, dtype=np.int64)
        n = np.minimum(self.steps.take(slots), self.history.shape[1] - 1) + 1
        entry = self.world.pose_entries.__getitem__
        return [list(map(entry, keys[:k])) for keys, k in
                zip(self.history[slots, :int(n.max(initial=0))].tolist(), n.tolist())]


_QUAD = np.dtype((np.void, 16))  # four float32
_VIEW_ANGLE_QUADS = VIEW_ANGLE_FEATURES.view(_QUAD)  # (12, 36, A/4)


def _take(table: np.ndarray, index: np.ndarray, out: dict, key: str) -> None:
    """``out[key] = table[index]`` along axis 0, into the existing array when there is one.

    ``np.take`` (several times faster than fancy indexing for these small gathers); into an
    existing array with ``mode="clip"`` (``mode="raise"`` buffers the copy), which is exact here:
    every index comes from the batch state, whose episodes ``reset_envs`` checks and whose
    viewpoints come from the tables.
    """
    if key in out:
        table.take(index, axis=0, out=out[key], mode="clip")
    else:
        out[key] = table.take(index, axis=0)
