"""Sampling R2R-style paths on a navigation graph: unique shortest paths of 4-7 edges.

Paths come from :class:`vln.graph.ScanGraph` (SciPy Dijkstra over the written connectivity file,
the code path every consumer uses); a path is kept only when no other route between its ends has
the same length (within ``TIE_TOLERANCE``), so "the" shortest path is well defined.
"""
from __future__ import annotations

import logging

import numpy as np

from ..graph import ScanGraph

logger = logging.getLogger(__name__)

MIN_EDGES, MAX_EDGES = 4, 7
TIE_TOLERANCE = 1e-3  #: metres; routes closer than this in length count as ties


def is_unique_shortest(graph: ScanGraph, path: list[int]) -> bool:
    """Whether ``path`` (indices) is the only shortest path between its ends.

    Every viewpoint after the start must have exactly one neighbour through which a shortest
    route from the start reaches it.
    """
    dist = graph.distances[path[0]]
    for v in path[1:]:
        nbrs = graph.neighbour_indices(v)
        lengths = np.linalg.norm(graph.positions[nbrs] - graph.positions[v], axis=1)
        on_shortest = np.abs(dist[nbrs] + lengths - dist[v]) < TIE_TOLERANCE
        if int(on_shortest.sum()) != 1:
            return False
    return True


def sample_paths(graph: ScanGraph, rng: np.random.Generator, n: int, exclude: set | None = None,
                 min_edges: int = MIN_EDGES, max_edges: int = MAX_EDGES) -> list[list[int]]:
    """Draw up to ``n`` unique shortest paths of ``min_edges..max_edges`` edges between included viewpoints.

    Start/goal pairs are visited in a random order; no two paths share a (start, goal) pair and
    none uses a pair in ``exclude``.

    Args:
        graph: the scan's graph.
        rng: the generator's random stream.
        n: how many paths.
        exclude: (start, goal) index pairs already used (updated in place).

    Returns:
        paths as viewpoint index lists (fewer than ``n`` if the house is too small).
    """
    exclude = set() if exclude is None else exclude
    inc = np.flatnonzero(graph.included)
    dist = graph.distances
    out = []
    for k in rng.permutation(len(inc) * len(inc)):
        a, b = int(inc[k // len(inc)]), int(inc[k % len(inc)])
        if a == b or (a, b) in exclude or not np.isfinite(dist[a, b]):
            continue
        p = graph.shortest_path_indices(a, b)
        if not (min_edges <= len(p) - 1 <= max_edges and is_unique_shortest(graph, p)):
            continue
        exclude.add((a, b))
        out.append(p)
        if len(out) == n:
            break
    if len(out) < n:
        logger.debug("scan %s: only %d of %d paths available", graph.scan_id, len(out), n)
    return out


def path_length(graph: ScanGraph, path: list[int]) -> float:
    """Length in metres of a path of viewpoint indices (float64 positions, as the evaluation uses)."""
    p = graph.positions[path]
    return float(np.sum(np.linalg.norm(np.diff(p, axis=0), axis=1)))
