"""EnvDrop panoramic candidates of every viewpoint, precomputed with vectorised NumPy.

The original R2R-EnvDrop code builds the candidates of a viewpoint by stepping MatterSim through
the 36 discrete views (newEpisode at heading 0 and elevation -30deg, then one +30deg turn per
view and one +30deg elevation step after every 12 views) and keeping, for every neighbour seen,
the view in which it is closest to the view centre (``sqrt(rel_heading^2 + rel_elevation^2)``,
strict ``<`` so the earliest view wins ties). Candidates are listed in the order they were first
seen. :func:`candidate_table` computes the same for all viewpoints of a scan at once, with the
simulator's float32 arithmetic (R2R camera: 640x480, VFOV 60deg); :func:`stepped_candidates`
is the original loop over a :class:`~vln.sim.Simulator`, kept as the reference and baseline.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .graph import ScanGraph
from .sim.geometry import NUM_VIEWS, VIEW_ELEVATIONS, VIEW_HEADINGS, EdgeGeometry, ViewLists, cos_half_hfov

#: The camera of the R2R feature files: 640x480 pixels, 60 degree vertical field of view.
R2R_CAMERA = dict(width=640, height=480, vfov=math.radians(60))


@dataclass(frozen=True, eq=False)
class CandidateTable:
    """Panoramic candidates of every viewpoint of one scan (CSR layout).

    The candidates of viewpoint ``i`` are rows ``ptr[i]:ptr[i+1]`` in EnvDrop's order.

    Attributes:
        scan_id: the scan.
        ptr: (N+1,) int64 offsets.
        viewpoint: (C,) int64 index of the candidate viewpoint.
        point_id: (C,) int64 view 0..35 in which the candidate is best seen (EnvDrop ``pointId``).
        nav_index: (C,) int64 its index in ``navigableLocations`` of that view (EnvDrop ``idx``).
        normalized_heading: (C,) float64 absolute heading of the candidate, radians; subtract
            the agent's ``viewIndex % 12 * 30deg`` to get EnvDrop's relative ``heading``.
        elevation: (C,) float64 elevation of the candidate, radians (absolute, as in EnvDrop).
        distance: (C,) float64 angular distance from the centre of view ``point_id``, radians.
        rel_distance: (C,) float64 holding float32 values: MatterSim's ``rel_distance`` of the
            candidate, the 3-D distance in metres from the viewpoint to it.
    """

    scan_id: str
    ptr: np.ndarray
    viewpoint: np.ndarray
    point_id: np.ndarray
    nav_index: np.ndarray
    normalized_heading: np.ndarray
    elevation: np.ndarray
    distance: np.ndarray
    rel_distance: np.ndarray

    def rows(self, ix: int) -> slice:
        """Row range of the candidates of viewpoint ``ix``."""
        return slice(int(self.ptr[ix]), int(self.ptr[ix + 1]))

    def counts(self) -> np.ndarray:
        """(N,) number of candidates per viewpoint."""
        return np.diff(self.ptr)

    def as_dicts(self, graph: ScanGraph, ix: int) -> list[dict]:
        """Candidates of viewpoint ``ix`` as EnvDrop's cached dicts (for inspection and tests)."""
        r = self.rows(ix)
        return [
            dict(viewpointId=graph.viewpoint_ids[v], pointId=int(p), idx=int(k), normalized_heading=float(h),
                 elevation=float(e), distance=float(d))
            for v, p, k, h, e, d in zip(self.viewpoint[r], self.point_id[r], self.nav_index[r],
                                        self.normalized_heading[r], self.elevation[r], self.distance[r])
        ]


def candidate_table(graph: ScanGraph, width: int = R2R_CAMERA["width"], height: int = R2R_CAMERA["height"],
                    vfov: float = R2R_CAMERA["vfov"]) -> CandidateTable:
    """Vectorised EnvDrop candidates of every viewpoint of ``graph`` (cached per camera)."""
    cache = graph.__dict__.setdefault("_candidate_tables", {})
    if (width, height, vfov) in cache:
        return cache[width, height, vfov]
    geom = EdgeGeometry.of(graph)
    lists = ViewLists.of(graph, cos_half_hfov(vfov, width, height))
    n_edges = len(geom.src)
    # (view, edge) -> angular distance and rank in that view's navigable list; inf / -1 if unseen.
    dist = np.full((NUM_VIEWS, n_edges), np.inf)
    dist[lists.view, lists.edge] = lists.key
    rank = np.full((NUM_VIEWS, n_edges), -1, dtype=np.int64)
    rank[lists.view, lists.edge] = lists.rank()
    seen = np.isfinite(dist)
    best_view = np.argmin(dist, axis=0)  # first minimum: EnvDrop replaces only on strict '<'
    first_view = np.argmax(seen, axis=0)
    keep = np.flatnonzero(seen.any(axis=0))
    keep = keep[np.lexsort((rank[first_view[keep], keep], first_view[keep], geom.src[keep]))]

    bv = best_view[keep]
    view_elev = VIEW_ELEVATIONS[bv]
    rel_heading = np.full((NUM_VIEWS, n_edges), np.nan)
    rel_heading[lists.view, lists.edge] = lists.rel_heading
    rh = rel_heading[bv, keep]
    table = CandidateTable(
        scan_id=graph.scan_id,
        ptr=np.searchsorted(geom.src[keep], np.arange(len(graph) + 1)).astype(np.int64),
        viewpoint=geom.dst[keep],
        point_id=bv.astype(np.int64),
        nav_index=rank[bv, keep] + 1,
        normalized_heading=VIEW_HEADINGS[bv] + rh,
        elevation=view_elev + (geom.elevation_angle[keep] - view_elev),
        # EnvDrop writes ``rel_heading ** 2`` (C pow), which can differ from x * x in the last bit.
        distance=np.array([math.sqrt(h ** 2 + (a - e) ** 2) for h, a, e in
                           zip(rh.tolist(), geom.elevation_angle[keep].tolist(), view_elev.tolist())]),
        rel_distance=geom.rel_distance[keep].astype(np.float64),
    )
    cache[width, height, vfov] = table
    return table


def stepped_candidates(sim, scan_id: str, viewpoint_id: str) -> list[dict]:
    """EnvDrop's original candidate loop: step ``sim`` through the 36 views of a viewpoint.

    ``sim`` must be a batch-1 simulator with discretised views and the R2R camera. Returns dicts
    with ``viewpointId, pointId, idx, normalized_heading, elevation, distance`` in EnvDrop's order.
    """
    adj: dict[str, dict] = {}
    for ix in range(NUM_VIEWS):
        if ix == 0:
            sim.newEpisode([scan_id], [viewpoint_id], [0], [math.radians(-30)])
        elif ix % 12 == 0:
            sim.makeAction([0], [1.0], [1.0])
        else:
            sim.makeAction([0], [1.0], [0])
        state = sim.getState()[0]
        assert state.viewIndex == ix, (state.viewIndex, ix)
        for j, loc in enumerate(state.navigableLocations[1:]):
            distance = math.sqrt(loc.rel_heading ** 2 + loc.rel_elevation ** 2)
            if loc.viewpointId not in adj or distance < adj[loc.viewpointId]["distance"]:
                adj[loc.viewpointId] = dict(
                    viewpointId=loc.viewpointId, pointId=ix, idx=j + 1,
                    normalized_heading=state.heading + loc.rel_heading,
                    elevation=state.elevation + loc.rel_elevation, distance=distance,
                )
    return list(adj.values())
