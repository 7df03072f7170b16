"""``navigableLocations`` of one viewpoint, computed as MatterSim's ``populateNavigable``."""
from __future__ import annotations

import numpy as np

from ..graph import ScanGraph
from .geometry import EdgeGeometry
from .state import ViewPoint


def navigable_locations(graph: ScanGraph, ix: int, heading: float, elevation: float,
                        cos_half_hfov: float, restricted: bool) -> tuple:
    """The navigable locations of viewpoint ``ix`` seen from ``heading`` / ``elevation``.

    Matches MatterSim: the current location first (relative fields 0); each included, unobstructed
    neighbour (index order) kept if ``cos_angle >= cos_half_hfov`` (or always when navigation is
    not restricted); the list sorted ascending by ``sqrt(rel_heading^2 + rel_elevation^2)``. The
    sort is stable, as libstdc++'s ``std::sort`` is on lists of up to 16 entries.

    Returns:
        tuple of :class:`ViewPoint`.
    """
    geom = EdgeGeometry.of(graph)
    pos = graph.positions_f32
    ids = graph.viewpoint_ids
    here = ViewPoint(ids[ix], ix, float(pos[ix, 0]), float(pos[ix, 1]), float(pos[ix, 2]))
    edges = np.arange(geom.ptr[ix], geom.ptr[ix + 1])
    keep, rel_heading, re = geom.seen(edges, heading, elevation, cos_half_hfov, restricted)
    if not keep.any():
        return (here,)
    dst = geom.dst[edges[keep]]
    rh = rel_heading.astype(np.float64)
    rd = geom.rel_distance[edges[keep]].astype(np.float64)
    key = np.sqrt(rh * rh + re * re)
    # The current location has key 0 and sorts first among equals (it is first in the list).
    order = np.argsort(key, kind="stable")
    out = [here]
    for k in order:
        j = int(dst[k])
        out.append(ViewPoint(ids[j], j, float(pos[j, 0]), float(pos[j, 1]), float(pos[j, 2]),
                             float(rh[k]), float(re[k]), float(rd[k])))
    return tuple(out)
