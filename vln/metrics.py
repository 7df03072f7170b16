"""Navigation metrics: path length, navigation and oracle error, success, SPL, nDTW, sDTW and CLS.

Every function is pure and works on a scan's all-pairs distance matrix ``distances`` ((N, N)
float64 metres, row = Dijkstra source, as :attr:`vln.graph.ScanGraph.distances`) and integer
viewpoint indices into it. :func:`episode_metrics` is the convenience entry point over a
:class:`~vln.graph.ScanGraph` and viewpoint ids.

Which reference each metric reproduces (to the last bit, where the reference is deterministic):

* R2R (Matterport3DSimulator ``tasks/R2R/eval.py``): ``nav_error = d[final][goal]``,
  ``oracle_error = min_v d[v][goal]``, ``trajectory_length = sum d[prev][curr]`` accumulated left
  to right, ``success = nav_error < 3.0`` (strict), ``steps = len(trajectory) - 1``.
* SPL (EnvDrop ``eval.py``): ``success * d[start][goal] / max(length, d[start][goal])``; where the
  shortest distance is 0 (start == goal) we return ``float(success)`` instead of EnvDrop's
  ``0 / 0.01 = 0``.
* nDTW / sDTW (google-research ``r4r/dtw.py``): exact DTW with local cost ``d[p][r]`` (row =
  prediction node), ``nDTW = exp(-DTW / (3.0 * |R|))``, sDTW counts success as
  ``d[last p][last r] <= 3.0`` (``<=``, unlike R2R success).
* CLS (google-research ``r4r/cls.py``): coverage ``mean_r exp(-min_p d[r][p] / 3.0)``, path
  lengths summed with ``np.sum`` over consecutive graph distances. Where the reference divides
  0 by 0 (a zero expected length and a zero trajectory length) we take the length score as 1.

Turning in place repeats a viewpoint in a trajectory; DTW and CLS collapse consecutive repeats
first (the reference code takes node sequences and would count them twice).
"""
from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from .errors import ExcludedViewpointError, NotConnectedError, UnknownViewpointError

logger = logging.getLogger(__name__)

#: R2R success radius in metres (``nav_error < SUCCESS_DISTANCE``).
SUCCESS_DISTANCE = 3.0
#: nDTW / sDTW / CLS distance threshold ``d_th`` in metres.
DTW_THRESHOLD = 3.0

#: Keys of the dictionary returned by :func:`metrics_from_indices` / :func:`episode_metrics`.
EPISODE_KEYS = (
    "trajectory_length", "nav_error", "oracle_error", "success", "oracle_success", "spl",
    "ndtw", "sdtw", "cls", "dtw", "steps", "shortest_length",
)


# ------------------------------------------------------------------ trajectories
def viewpoint_of(entry) -> str:
    """The viewpoint id of a trajectory entry: a bare id or a ``[viewpoint, heading, elevation]``."""
    if isinstance(entry, str):
        return entry
    if isinstance(entry, (list, tuple)) and entry and isinstance(entry[0], str):
        return entry[0]
    raise TypeError(f"a trajectory entry must be a viewpoint id or [viewpoint, heading, elevation], got {entry!r}")


def collapse_repeats(nodes) -> np.ndarray:
    """Drop consecutive repeats of a node sequence ([a, a, b, a] -> [a, b, a]); (K,) int64."""
    nodes = np.asarray(nodes, dtype=np.int64)
    if len(nodes) < 2:
        return nodes
    keep = np.empty(len(nodes), dtype=bool)
    keep[0] = True
    np.not_equal(nodes[1:], nodes[:-1], out=keep[1:])
    return nodes[keep]


def trajectory_indices(graph, trajectory: Sequence, where: str = "trajectory") -> np.ndarray:
    """Viewpoint indices of a trajectory, checked against the graph.

    Args:
        graph: the scan's :class:`~vln.graph.ScanGraph`.
        trajectory: viewpoint ids or ``[viewpoint, heading, elevation]`` entries (non-empty).
        where: names the trajectory in error messages (e.g. ``"instr_id 12_0"``).

    Returns:
        (T,) int64 indices, one per entry (repeats kept).

    Raises:
        ValueError: the trajectory is empty.
        UnknownViewpointError, ExcludedViewpointError: a viewpoint is not usable.
        NotConnectedError: two consecutive different viewpoints are not joined by an edge.
    """
    if len(trajectory) == 0:
        raise ValueError(f"{where}: the trajectory is empty")
    out = np.empty(len(trajectory), dtype=np.int64)
    for k, entry in enumerate(trajectory):
        vp = viewpoint_of(entry)
        try:
            out[k] = graph.vp_index(vp)
        except (UnknownViewpointError, ExcludedViewpointError) as e:
            raise type(e)(f"{where}, step {k}: {e}") from None
    check_connected(graph, out, where)
    return out


def check_connected(graph, nodes: np.ndarray, where: str = "trajectory") -> None:
    """Raise :class:`NotConnectedError` unless consecutive different nodes share an edge.

    Args:
        graph: the scan's :class:`~vln.graph.ScanGraph`.
        nodes: (T,) int viewpoint indices.
        where: names the trajectory in the message.
    """
    a, b = nodes[:-1], nodes[1:]
    bad = np.flatnonzero((a != b) & ~graph.adjacency[a, b])
    if len(bad):
        k = int(bad[0])
        raise NotConnectedError(
            f"{where}: viewpoints {graph.viewpoint_ids[a[k]]} and {graph.viewpoint_ids[b[k]]} (steps {k} and {k + 1}) "
            f"are not connected in scan {graph.scan_id}"
        )


# ------------------------------------------------------------------ R2R metrics
def trajectory_length(distances: np.ndarray, trajectory) -> float:
    """Length in metres of a trajectory: ``d[prev][curr]`` summed left to right (repeats add 0).

    Args:
        distances: (N, N) float64 all-pairs distances in metres.
        trajectory: (T,) int viewpoint indices.
    """
    t = np.asarray(trajectory, dtype=np.int64)
    if len(t) < 2:
        return 0.0
    # cumsum adds left to right like the reference's Python loop (np.sum would pair terms up).
    return float(np.cumsum(distances[t[:-1], t[1:]])[-1])


def path_length(distances: np.ndarray, nodes) -> float:
    """Length in metres of a node sequence as CLS measures it: ``np.sum`` of consecutive distances."""
    n = np.asarray(nodes, dtype=np.int64)
    return float(np.sum(distances[n[:-1], n[1:]]))


def nav_error(distances: np.ndarray, trajectory, goal: int) -> float:
    """Shortest-path distance in metres from the trajectory's last viewpoint to ``goal``."""
    return float(distances[int(trajectory[-1]), goal])


def oracle_error(distances: np.ndarray, trajectory, goal: int) -> float:
    """Smallest shortest-path distance in metres from any viewpoint of the trajectory to ``goal``."""
    return float(distances[np.asarray(trajectory, dtype=np.int64), goal].min())


def success(error: float, radius: float = SUCCESS_DISTANCE) -> bool:
    """R2R success: the navigation error is strictly below ``radius`` metres (3.0 m is a failure)."""
    return bool(error < radius)


def oracle_success(error: float, radius: float = SUCCESS_DISTANCE) -> bool:
    """Oracle success: some visited viewpoint is strictly within ``radius`` metres of the goal."""
    return bool(error < radius)


def spl(succeeded: bool, shortest: float, length: float) -> float:
    """Success weighted by path length: ``success * shortest / max(length, shortest)``.

    Args:
        succeeded: whether the episode succeeded.
        shortest: shortest-path distance start -> goal in metres.
        length: trajectory length in metres.

    Returns:
        a float in [0, 1]; ``float(succeeded)`` when ``shortest == 0``.
    """
    if shortest == 0.0:
        return float(succeeded)
    return float(float(succeeded) * shortest / max(length, shortest))


# ------------------------------------------------------------------ fidelity metrics
def dtw(distances: np.ndarray, prediction, reference) -> float:
    """Exact dynamic-time-warping cost (metres) between two node sequences.

    Consecutive repeats are collapsed first. The local cost of aligning prediction node ``p``
    with reference node ``r`` is ``distances[p, r]``; the recursion is
    ``D[i][j] = cost[i][j] + min(D[i-1][j], D[i][j-1], D[i-1][j-1])`` with ``D[0][0] = 0``,
    an O(|P| |R|) dynamic program (as ``r4r/dtw.py``, not the fastdtw approximation).

    Args:
        distances: (N, N) float64 all-pairs distances in metres.
        prediction: (P,) int viewpoint indices of the trajectory.
        reference: (R,) int viewpoint indices of the reference path.
    """
    return _dtw(distances, collapse_repeats(prediction), collapse_repeats(reference))


def _dtw(distances: np.ndarray, p: np.ndarray, r: np.ndarray) -> float:
    """:func:`dtw` of sequences already free of consecutive repeats."""
    cost = distances[p[:, None], r].tolist()
    inf = float("inf")
    prev = [0.0] + [inf] * len(r)  # row i-1 of D, with D[0][0] = 0
    for row in cost:
        cur = [inf]
        for j, c in enumerate(row):
            # Same operands, same order as the reference: cost + min(up, left, diagonal).
            cur.append(c + min(prev[j + 1], cur[j], prev[j]))
        prev = cur
    return prev[-1]


def ndtw(distances: np.ndarray, prediction, reference, threshold: float = DTW_THRESHOLD) -> float:
    """Normalised DTW ``exp(-DTW / (threshold * |R|))`` in (0, 1]; 1 for a perfect path."""
    n = len(collapse_repeats(reference))
    return float(np.exp(-dtw(distances, prediction, reference) / (threshold * n)))


def sdtw(distances: np.ndarray, prediction, reference, threshold: float = DTW_THRESHOLD) -> float:
    """Success-weighted nDTW: nDTW if ``d[last prediction][last reference] <= threshold``, else 0."""
    if not distances[int(prediction[-1]), int(reference[-1])] <= threshold:
        return 0.0
    return ndtw(distances, prediction, reference, threshold)


def cls(distances: np.ndarray, prediction, reference, threshold: float = DTW_THRESHOLD) -> float:
    """Coverage weighted by length score (Jain et al. 2019) in [0, 1].

    ``PC = mean_r exp(-min_p d[r, p] / threshold)``, ``EPL = PC * PL(R)``,
    ``LS = EPL / (EPL + |EPL - PL(P)|)`` and ``CLS = PC * LS``, with ``PL`` from
    :func:`path_length` on the collapsed sequences.
    """
    return _cls(distances, collapse_repeats(prediction), collapse_repeats(reference), threshold)


def _cls(distances: np.ndarray, p: np.ndarray, r: np.ndarray, threshold: float) -> float:
    """:func:`cls` of sequences already free of consecutive repeats."""
    coverage = np.mean(np.exp(-distances[r[:, None], p].min(axis=1) / threshold))
    expected = coverage * path_length(distances, r)
    denominator = expected + abs(expected - path_length(distances, p))
    score = expected / denominator if denominator > 0 else 1.0
    return float(coverage * score)


# ------------------------------------------------------------------ per episode
def metrics_from_indices(
    distances: np.ndarray,
    trajectory,
    reference,
    success_distance: float = SUCCESS_DISTANCE,
    threshold: float = DTW_THRESHOLD,
) -> dict:
    """All metrics of one episode from viewpoint indices (no graph checks).

    Args:
        distances: (N, N) float64 all-pairs distances in metres.
        trajectory: (T,) int indices of the agent's trajectory, repeats allowed, starting at the
            reference's start.
        reference: (R,) int indices of the reference path (start ... goal).
        success_distance: success radius in metres (strict ``<``).
        threshold: nDTW / sDTW / CLS threshold in metres.

    Returns:
        dict with the keys of :data:`EPISODE_KEYS`: lengths and errors in metres (float),
        ``success`` / ``oracle_success`` (bool), ``spl``, ``ndtw``, ``sdtw``, ``cls`` in [0, 1],
        ``dtw`` in metres, ``steps`` = ``len(trajectory) - 1`` (int).
    """
    t = np.asarray(trajectory, dtype=np.int64)
    r = np.asarray(reference, dtype=np.int64)
    start, goal = int(r[0]), int(r[-1])
    length = trajectory_length(distances, t)
    err = nav_error(distances, t, goal)
    oerr = oracle_error(distances, t, goal)
    shortest = float(distances[start, goal])
    ok = success(err, success_distance)
    pc, rc = collapse_repeats(t), collapse_repeats(r)
    cost = _dtw(distances, pc, rc)
    nd = float(np.exp(-cost / (threshold * len(rc))))
    return {
        "trajectory_length": length,
        "nav_error": err,
        "oracle_error": oerr,
        "success": ok,
        "oracle_success": oracle_success(oerr, success_distance),
        "spl": spl(ok, shortest, length),
        "ndtw": nd,
        "sdtw": nd if distances[int(t[-1]), goal] <= threshold else 0.0,
        "cls": _cls(distances, pc, rc, threshold),
        "dtw": cost,
        "steps": len(t) - 1,
        "shortest_length": shortest,
    }


def episode_metrics(
    graph,
    reference_path: Sequence[str],
    trajectory: Sequence,
    where: str = "trajectory",
    success_distance: float = SUCCESS_DISTANCE,
    threshold: float = DTW_THRESHOLD,
) -> dict:
    """All metrics of one episode on a scan graph.

    Args:
        graph: the scan's :class:`~vln.graph.ScanGraph` (its cached ``distances`` are used).
        reference_path: viewpoint ids of the reference path, start to goal.
        trajectory: the agent's trajectory as viewpoint ids or ``[viewpoint, heading,
            elevation]`` entries (headings and elevations are ignored), starting at the start.
        where: names the episode in error messages.
        success_distance, threshold: see :func:`metrics_from_indices`.

    Returns:
        the dict of :func:`metrics_from_indices`.

    Raises:
        ValueError: empty trajectory or one that does not start at the reference's start.
        UnknownViewpointError, ExcludedViewpointError, NotConnectedError: see
            :func:`trajectory_indices`.
    """
    ref = trajectory_indices(graph, reference_path, f"{where} (reference path)")
    traj = trajectory_indices(graph, trajectory, where)
    if traj[0] != ref[0]:
        raise ValueError(
            f"{where}: the trajectory starts at {graph.viewpoint_ids[traj[0]]}, "
            f"not at the episode's start {graph.viewpoint_ids[ref[0]]}"
        )
    return metrics_from_indices(graph.distances, traj, ref, success_distance, threshold)


# ------------------------------------------------------------------ many episodes at once
def _pad(seqs: list, fill: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(E, L) int64 rows padded with ``fill`` and their (E,) lengths."""
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    out = np.full((len(seqs), max(int(lengths.max()), 1)), fill, dtype=np.int64)
    for k, s in enumerate(seqs):
        out[k, : len(s)] = s
    return out, lengths


def _row_reduce(values: np.ndarray, lengths: np.ndarray, how: str) -> np.ndarray:
    """``np.sum`` / ``np.mean`` of ``values[e, :lengths[e]]`` per row, bit-equal to the 1-D call.

    Rows are grouped by length so that every reduction runs over a contiguous row of exactly that
    length (NumPy's pairwise summation groups terms by length).
    """
    out = np.zeros(len(values))
    for n in np.unique(lengths):
        if n == 0:
            continue
        rows = np.flatnonzero(lengths == n)
        block = np.ascontiguousarray(values[rows, :n])
        out[rows] = block.mean(axis=1) if how == "mean" else block.sum(axis=1)
    return out


def batch_metrics(
    distances: Sequence[np.ndarray],
    scan_of,
    trajectories: Sequence,
    references: Sequence,
    success_distance: float = SUCCESS_DISTANCE,
    threshold: float = DTW_THRESHOLD,
) -> list[dict]:
    """:func:`metrics_from_indices` for many episodes at once, with bit-equal results.

    The dynamic program runs once over a padded batch (one NumPy operation per cell, over all
    episodes) instead of once per episode.

    Args:
        distances: K distance matrices ((N_k, N_k) float64, metres), one per scan.
        scan_of: (E,) int, which matrix each episode uses.
        trajectories: E int index sequences (repeats allowed), each starting at its reference's start.
        references: E int index sequences, start to goal.
        success_distance, threshold: see :func:`metrics_from_indices`.

    Returns:
        E dicts with the keys of :data:`EPISODE_KEYS`, in input order.
    """
    if len(trajectories) == 0:
        return []
    sizes = np.array([len(d) for d in distances], dtype=np.int64)
    flat = np.concatenate([np.ascontiguousarray(d, dtype=np.float64).ravel() for d in distances])
    base = np.concatenate([[0], np.cumsum(sizes * sizes)[:-1]])
    scan_of = np.asarray(scan_of, dtype=np.int64)
    eb, en = base[scan_of], sizes[scan_of]

    def dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """d[a, b] of each episode's own scan; a, b broadcast against (E, ...)."""
        shape = (-1,) + (1,) * (max(a.ndim, b.ndim) - 1)
        return flat[eb.reshape(shape) + a * en.reshape(shape) + b]

    T, tl = _pad(trajectories)
    P, pl = _pad([collapse_repeats(t) for t in trajectories])
    R, rl = _pad([collapse_repeats(r) for r in references])
    e = np.arange(len(T))
    start, goal, last = R[:, 0], R[e, rl - 1], T[e, tl - 1]

    err = dist(last, goal)
    to_goal = np.where(np.arange(T.shape[1]) < tl[:, None], dist(T, goal[:, None]), np.inf)
    oerr = to_goal.min(axis=1)
    shortest = dist(start, goal)
    steps = np.where(np.arange(1, T.shape[1]) < tl[:, None], dist(T[:, :-1], T[:, 1:]), 0.0)
    # cumsum adds left to right like the reference loop; trailing zeros leave the sum unchanged.
    length = np.cumsum(steps, axis=1)[:, -1] if steps.shape[1] else np.zeros(len(T))
    ok = err < success_distance
    safe = np.where(shortest == 0.0, 1.0, np.maximum(length, shortest))
    spl_ = np.where(shortest == 0.0, ok.astype(np.float64), ok.astype(np.float64) * shortest / safe)

    # DTW, laid out (i, j, episode) so each cell update is one contiguous vector operation.
    cost = np.ascontiguousarray(dist(P[:, :, None], R[:, None, :]).transpose(1, 2, 0))
    table = np.full((P.shape[1] + 1, R.shape[1] + 1, len(T)), np.inf)
    table[0, 0] = 0.0
    for i in range(1, P.shape[1] + 1):
        up_or_diag = np.minimum(table[i - 1, 1:], table[i - 1, :-1])
        row = table[i]
        for j in range(1, R.shape[1] + 1):
            row[j] = cost[i - 1, j - 1] + np.minimum(up_or_diag[j - 1], row[j - 1])
    dtw_ = table[pl, rl, e]
    nd = np.exp(-dtw_ / (threshold * rl))
    sd = np.where(err <= threshold, nd, 0.0)

    p_valid = np.arange(P.shape[1])[None, None, :] < pl[:, None, None]
    near = np.where(p_valid, dist(R[:, :, None], P[:, None, :]), np.inf).min(axis=2)
    coverage = _row_reduce(np.exp(-near / threshold), rl, "mean")
    pl_r = _row_reduce(dist(R[:, :-1], R[:, 1:]), rl - 1, "sum")
    pl_p = _row_reduce(dist(P[:, :-1], P[:, 1:]), pl - 1, "sum")
    expected = coverage * pl_r
    denominator = expected + np.abs(expected - pl_p)
    score = np.divide(expected, denominator, out=np.ones_like(expected), where=denominator > 0)
    cls_ = coverage * score

    cols = dict(trajectory_length=length, nav_error=err, oracle_error=oerr, success=ok, oracle_success=oerr < success_distance,
                spl=spl_, ndtw=nd, sdtw=sd, cls=cls_, dtw=dtw_, steps=tl - 1, shortest_length=shortest)
    lists = {k: v.tolist() for k, v in cols.items()}
    return [{k: lists[k][n] for k in EPISODE_KEYS} for n in range(len(T))]
