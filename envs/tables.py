"""Per-viewpoint step tables: everything a batch step or observation needs, padded to K slots.

:class:`StepTables` turns the global CSR candidate table of a :class:`envs.world.NavWorld` into
(N, K) arrays indexed by global viewpoint id, so that the candidates, the action mask, the
candidate angles and the teacher's next action of a whole batch are each one gather
(:mod:`envs.batch`). Every entry equals what the per-step computation it replaces gives.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vln.sim import libm
from vln.sim.geometry import HEADING_COUNT, HEADING_INCREMENT


@dataclass(frozen=True, eq=False)
class StepTables:
    """Padded candidate tables of N global viewpoints with up to K candidates each.

    Attributes:
        rows: (N, K) int64 row of each candidate in the world's global candidate table, -1 = padding.
        count: (N,) int64 number of candidates.
        target: (N, K) int64 global viewpoint id of each candidate, -1 = padding.
        local_target: (N, K) int64 scan-local viewpoint index of each candidate, -1 = padding.
        point: (N, K) int64 view 0..35 in which each candidate is seen (EnvDrop ``pointId``),
            -1 = padding.
        action_mask: (N, K+1) int8, 1 for the candidates and for STOP (the last column).
        angles: (C+1, 12, 4) float32 ``[sin h, cos h, sin e, cos e]`` of candidate row ``c``
            seen by an agent at heading step ``s`` (h = candidate heading - s * 30 deg, e = its
            elevation, radians); row C is zeros (the padding row).
        angle_rows: (N, K) int64 = ``rows`` with padding mapped to C (the zero row of ``angles``).
        distance: (N, K) float32 distance in metres to each candidate (MatterSim's
            ``rel_distance``), 0 = padding.
        pair_row: (N,) int64 ``pair_base[scan] + local * scan_size[scan]`` of each viewpoint: its
            row in the world's flattened all-pairs tables (``pair_distance``), so that the entry
            of a (viewpoint, scan-local goal) pair is ``pair_row[vp] + goal``.
        teacher: (sum of squared scan sizes,) int16 shortest-path action (candidate slot, or K =
            STOP) from viewpoint to goal, at ``pair_row[vp] + goal``.
    """

    rows: np.ndarray
    count: np.ndarray
    target: np.ndarray
    local_target: np.ndarray
    point: np.ndarray
    action_mask: np.ndarray
    angles: np.ndarray
    angle_rows: np.ndarray
    distance: np.ndarray
    pair_row: np.ndarray
    teacher: np.ndarray

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, f).nbytes for f in self.__dataclass_fields__)


def candidate_angles(heading: np.ndarray, elevation: np.ndarray) -> np.ndarray:
    """(C, 12, 4) float32 ``[sin h, cos h, sin e, cos e]`` of C candidates at every heading step.

    Args:
        heading: (C,) float64 absolute candidate headings (radians).
        elevation: (C,) float64 candidate elevations (radians).
    """
    base = np.arange(HEADING_COUNT).astype(np.float64) * HEADING_INCREMENT
    rel = heading[:, None] - base[None, :]  # (C, 12), as EnvDrop: normalized_heading - view % 12 * 30deg
    elev = np.broadcast_to(elevation[:, None], rel.shape)
    # The C library's sin/cos, as EnvDrop's math.sin/math.cos (NumPy's may use SIMD kernels).
    return np.stack([libm.sin(rel), libm.cos(rel), libm.sin(elev), libm.cos(elev)], -1).astype(np.float32)


def teacher_table(local_target: np.ndarray, predecessors: np.ndarray, stop_action: int) -> np.ndarray:
    """(n, n) int16 next action from every viewpoint (rows) to every goal (columns) of one scan.

    The action is the first candidate slot whose viewpoint is the next hop of a shortest path
    (the Dijkstra predecessor of the viewpoint in the tree rooted at the goal); STOP at the goal
    or where no candidate leads to the next hop.

    Args:
        local_target: (n, K) scan-local candidate viewpoints of the scan's viewpoints, -1 = padding.
        predecessors: (n, n) predecessors[goal, v] = next viewpoint from v towards goal, -1 = none.
        stop_action: K.
    """
    nxt = predecessors.T  # nxt[v, goal]
    hit = (local_target[:, None, :] == nxt[:, :, None]) & (local_target >= 0)[:, None, :] & (nxt >= 0)[:, :, None]
    action = np.argmax(hit, axis=2)
    stop = ~hit.any(axis=2)
    np.fill_diagonal(stop, True)
    return np.where(stop, stop_action, action).astype(np.int16)


def build_step_tables(world) -> StepTables:
    """The :class:`StepTables` of a world's graph tables (``cand_*``, ``scan_*``, ``pair_*``)."""
    K = int(world.cfg.max_candidates)
    if K + 1 > np.iinfo(np.int16).max:
        raise ValueError(f"max_candidates={K} is too large (at most {np.iinfo(np.int16).max - 1})")
    ptr = world.cand_ptr
    count = np.diff(ptr).astype(np.int64)
    n_rows = len(world.cand_target)
    slots = np.arange(K)[None, :]
    valid = slots < count[:, None]
    padded = np.where(valid, ptr[:-1, None] + slots, n_rows)  # padding -> a sentinel row appended below

    def pad(column, fill):
        return np.append(column, fill)[padded]

    target = world.cand_target
    cand_local = target - world.scan_offset[world.scan_of_global[target]]
    action_mask = np.ones((len(count), K + 1), dtype=np.int8)
    action_mask[:, :K] = valid
    angles = np.zeros((n_rows + 1, HEADING_COUNT, 4), dtype=np.float32)
    angles[:n_rows] = candidate_angles(world.cand_heading, world.cand_elevation)
    tables = dict(rows=np.where(valid, padded, -1), count=count, target=pad(target, -1),
                  local_target=pad(cand_local, -1), point=pad(world.cand_point_id, -1), action_mask=action_mask,
                  angles=angles, angle_rows=padded, distance=pad(world.cand_distance, 0.0).astype(np.float32))
    scan = world.scan_of_global
    vp_local = np.arange(len(count)) - world.scan_offset[scan]
    pair_row = world.pair_base[scan] + vp_local * world.scan_size[scan]
    teacher = np.empty(len(world.pair_predecessor), dtype=np.int16)
    for off, size, base in zip(world.scan_offset.tolist(), world.scan_size.tolist(), world.pair_base.tolist()):
        pred = world.pair_predecessor[base: base + size * size].reshape(size, size)
        teacher[base: base + size * size] = teacher_table(tables["local_target"][off: off + size], pred, K).ravel()
    return StepTables(**tables, pair_row=pair_row, teacher=teacher)
