"""Augmentation paths for back-translation: sampled shortest paths on the training scans.

As in the Speaker-Follower / EnvDrop augmentation data, a path joins a start and a goal whose
shortest path in the navigation graph has 4 to 6 edges. Paths are written in the R2R format with
``instructions: []`` (the speaker writes them during training). Edge counts are those of the
path :meth:`vln.graph.ScanGraph.shortest_path` returns, found for all pairs at once by walking the
Dijkstra predecessor matrix level by level, not by a Python loop over pairs.
"""
from __future__ import annotations

import logging
import math
from typing import Sequence

import numpy as np

from .r2r import PathRecord

logger = logging.getLogger(__name__)

#: Edge-count bounds of the original augmentation data.
MIN_EDGES, MAX_EDGES = 4, 6
#: First path_id of sampled paths, above every R2R path_id (the largest is 7323).
FIRST_PATH_ID = 1_000_000


def shortest_path_edge_counts(predecessors: np.ndarray) -> np.ndarray:
    """Number of edges of every shortest path encoded by a predecessor matrix.

    Args:
        predecessors: (N, N) int Dijkstra predecessor matrix (row = source; negative = none), as
            :attr:`vln.graph.ScanGraph.predecessors`.

    Returns:
        (N, N) int64: edges of the path from row to column; 0 on the diagonal, -1 where there is
        no path. Each round settles the targets one edge further from their source than the last
        round, so the loop runs once per level of the deepest shortest-path tree.
    """
    pred = np.asarray(predecessors, dtype=np.int64)
    n = pred.shape[0]
    hops = np.full((n, n), -1, dtype=np.int64)
    hops[np.arange(n), np.arange(n)] = 0
    has_pred = pred >= 0
    parent = np.where(has_pred, pred, 0)
    pending = has_pred.copy()
    while pending.any():
        parent_hops = np.take_along_axis(hops, parent, axis=1)
        ready = pending & (parent_hops >= 0)
        if not ready.any():  # pragma: no cover - only for a corrupt (cyclic) predecessor matrix
            raise ValueError("predecessor matrix has cycles")
        hops[ready] = parent_hops[ready] + 1
        pending &= ~ready
    return hops


def candidate_pairs(scan_graph, min_edges: int = MIN_EDGES, max_edges: int = MAX_EDGES) -> np.ndarray:
    """(M, 2) int64 (start, goal) index pairs of one scan whose shortest path has
    ``min_edges..max_edges`` edges, in row-major order. Both ends are included viewpoints."""
    hops = shortest_path_edge_counts(scan_graph.predecessors)
    ok = (hops >= min_edges) & (hops <= max_edges)
    ok &= scan_graph.included[:, None] & scan_graph.included[None, :]
    return np.argwhere(ok).astype(np.int64)


def sample_aug_paths(nav_graph, scans: Sequence[str], num: int | None, seed: int,
                     min_edges: int = MIN_EDGES, max_edges: int = MAX_EDGES,
                     first_path_id: int = FIRST_PATH_ID, clip: bool = False) -> list[PathRecord]:
    """Sample start/goal pairs on ``scans`` and return their shortest paths as R2R records.

    Args:
        nav_graph: :class:`vln.graph.NavGraph`.
        scans: scan ids to sample on (the training scans); order and duplicates do not matter.
        num: number of paths, drawn without replacement from all candidate (start, goal) pairs of
            all scans (ordered pairs: A->B and B->A are different paths); ``None`` takes them all.
        seed: seed of the ``numpy.random.Generator``; equal arguments give equal output.
        min_edges, max_edges: bounds on the edge count of the shortest path (inclusive).
        first_path_id: path_ids are ``first_path_id, first_path_id + 1, ...`` in output order.
        clip: when ``num`` exceeds the number of candidate pairs, take them all instead of raising.

    Returns:
        list of :class:`PathRecord` with ``instructions=()``, ``distance`` = the path length in
        metres (float64 sum of its edge lengths) and ``heading`` uniform in [0, 2*pi) radians.

    Raises:
        ValueError: bad bounds, or ``num`` exceeds the number of candidate pairs (without ``clip``).
    """
    if not 1 <= min_edges <= max_edges:
        raise ValueError(f"need 1 <= min_edges <= max_edges, got {min_edges}, {max_edges}")
    scans = sorted(set(scans))
    if not scans:
        raise ValueError("no scans to sample on")
    per_scan = [candidate_pairs(nav_graph[s], min_edges, max_edges) for s in scans]
    counts = np.array([len(p) for p in per_scan], dtype=np.int64)
    total = int(counts.sum())
    if num is None or (clip and num > total):
        num = total
    if not 0 <= num <= total:
        raise ValueError(f"asked for {num} paths but the {len(scans)} scans have only {total} start/goal pairs "
                         f"with {min_edges}-{max_edges} edges")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(total, size=num, replace=False) if num < total else rng.permutation(total)
    headings = rng.uniform(0.0, 2.0 * math.pi, size=num)
    scan_of = np.searchsorted(np.cumsum(counts), chosen, side="right")
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out = []
    for k, (flat, si) in enumerate(zip(chosen.tolist(), scan_of.tolist())):
        g = nav_graph[scans[si]]
        a, b = per_scan[si][flat - offsets[si]]
        idx = g.shortest_path_indices(int(a), int(b))
        steps = np.diff(g.positions[idx], axis=0)
        distance = float(np.sqrt((steps ** 2).sum(axis=1)).sum())
        out.append(PathRecord(first_path_id + k, g.scan_id, tuple(g.viewpoint_ids[i] for i in idx),
                              float(headings[k]), (), distance))
    logger.info("sampled %d of %d candidate paths on %d scans", num, total, len(scans))
    return out
