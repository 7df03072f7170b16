"""Per-edge geometry of a scan, with the arithmetic of the C++ MatterSim, to the last bit.

MatterSim (``Simulator::populateNavigable``) stores positions as ``glm::vec3`` (float32),
subtracts, normalises and takes dot products in float32; the camera direction is the double
``cos``/``sin`` of ``pi/2 - heading`` rounded to float32. We reproduce that arithmetic with NumPy
float32 arrays (each operation rounds to float32 as IEEE single precision does), so that
field-of-view decisions at the boundary and the sort order of ``navigableLocations`` match.

The angles come from the C library, as in MatterSim (:mod:`vln.sim.libm`):

* ``rel_heading = atan2f(h.x*c.y - h.y*c.x, h.x*c.x + h.y*c.y)``: the single-precision
  ``atan2f`` of the float32 operands (C++ picks the float overload), widened to double;
* ``rel_elevation = atan2(double(d.z), double(|h|)) - elevation``: the double ``atan2``;
* ``rel_distance = |d|`` and the position fields are float32 values.

These are bit-exact against MatterSim built on the same machine (same libm ``atan2f``/``atan2``/
``cos``/``sin``, no FMA contraction); on another platform the C library's last bits, and
therefore ours and MatterSim's together, may differ.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..graph import ScanGraph
from . import libm

#: Discretised views: 12 headings of 30 degrees and elevation steps of 30 degrees (MatterSim).
HEADING_COUNT = 12
HEADING_INCREMENT = math.pi * 2.0 / HEADING_COUNT
ELEVATION_INCREMENT = math.pi / 6.0


def lround(x: float) -> int:
    """C ``lround``: round half away from zero (Python's ``round`` rounds half to even)."""
    t = math.trunc(x)
    if abs(x - t) >= 0.5:
        t += 1 if x > 0 else -1
    return int(t)


def wrap_heading(heading: float) -> float:
    """``fmod(heading, 2*pi)`` made non-negative, with MatterSim's arithmetic."""
    h = math.fmod(heading, math.pi * 2.0)
    while h < 0.0:
        h += math.pi * 2.0
    return h


def snap_heading(heading: float) -> tuple[int, float]:
    """Snap a heading to a discrete step as MatterSim's ``setHeadingElevation`` does.

    Returns:
        (step in 0..11, heading in radians = step * 30 degrees).
    """
    step = lround(wrap_heading(heading) / HEADING_INCREMENT)
    if step == HEADING_COUNT:
        step = 0
    return step, float(step) * HEADING_INCREMENT


def snap_elevation(elevation: float) -> tuple[int, float]:
    """Snap an elevation to a discrete level (0 = -30deg, 1 = 0, 2 = +30deg), ignoring limits."""
    if elevation < -ELEVATION_INCREMENT / 2.0:
        return 0, -ELEVATION_INCREMENT
    if elevation > ELEVATION_INCREMENT / 2.0:
        return 2, ELEVATION_INCREMENT
    return 1, 0.0


def cos_half_hfov(vfov: float, width: int, height: int) -> float:
    """``cos(vfov * width / height / 2.0)``, evaluated in MatterSim's order (double)."""
    return math.cos(vfov * width / height / 2.0)


def horizon_direction(heading) -> tuple[np.ndarray, np.ndarray]:
    """float32 (cos, sin) of ``pi/2 - heading``: MatterSim's ``camera_horizon_dir`` x and y.

    Uses the C library's scalar ``cos``/``sin`` (as the C++ code does): NumPy's vectorised
    transcendental loops may differ in the last bit, which can flip a float32 rounding.
    """
    adj = np.pi / 2.0 - np.asarray(heading, dtype=np.float64)
    flat = adj.ravel().tolist()
    c = np.array([math.cos(a) for a in flat], dtype=np.float64).reshape(adj.shape)
    s = np.array([math.sin(a) for a in flat], dtype=np.float64).reshape(adj.shape)
    return c.astype(np.float32), s.astype(np.float32)


@dataclass(frozen=True, eq=False)
class EdgeGeometry:
    """float32 geometry of every directed navigable edge of a scan, grouped by source.

    Edges are sorted by (source, target) index, so the targets of source ``i`` are
    ``dst[ptr[i]:ptr[i+1]]`` in index order, the order in which MatterSim visits neighbours.

    Attributes:
        src, dst: (E,) int64 viewpoint indices.
        ptr: (N+1,) int64 CSR offsets into the edge arrays.
        dx, dy: (E,) float32, horizontal components of ``pos[dst] - pos[src]`` (metres).
        rel_distance: (E,) float32, 3D length (glm::length in float32).
        elevation_angle: (E,) float64, C library ``atan2(dz, horizontal length)`` (radians).
        nx, ny: (E,) float32, the normalised horizontal direction (NaN for a vertical edge).
    """

    src: np.ndarray
    dst: np.ndarray
    ptr: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    rel_distance: np.ndarray
    elevation_angle: np.ndarray
    nx: np.ndarray
    ny: np.ndarray

    @classmethod
    def of(cls, graph: ScanGraph) -> "EdgeGeometry":
        """Compute (and cache on ``graph``) the geometry of all its edges."""
        cached = graph.__dict__.get("_edge_geometry")
        if cached is not None:
            return cached
        src, dst = np.nonzero(graph.adjacency)
        p = graph.positions_f32
        d = p[dst] - p[src]  # float32, like glm::vec3 subtraction
        dx, dy, dz = d[:, 0], d[:, 1], d[:, 2]
        hor2 = dx * dx + dy * dy  # float32 dot of the projected vector (z term is +0)
        rel_distance = np.sqrt(hor2 + dz * dz)
        hor_len = np.sqrt(hor2)
        # MatterSim: atan2(double tar_z, float glm::length) -> the C library's double atan2.
        elevation_angle = libm.atan2(dz.astype(np.float64), hor_len.astype(np.float64))
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = np.float32(1.0) / hor_len  # glm::inversesqrt = 1 / sqrt in float32
            nx, ny = dx * inv, dy * inv
        ptr = np.searchsorted(src, np.arange(len(graph) + 1)).astype(np.int64)
        geom = cls(src.astype(np.int64), dst.astype(np.int64), ptr, dx, dy, rel_distance, elevation_angle, nx, ny)
        graph.__dict__["_edge_geometry"] = geom
        return geom

    def seen(self, edges: np.ndarray, heading, elevation, cos_half_hfov: float, restricted: bool = True):
        """MatterSim's field-of-view test of ``edges`` from ``heading``, and the angles of those kept.

        Args:
            edges: (E,) int64 edge indices.
            heading: radians, a scalar or an array broadcasting against ``edges`` (e.g. (H, 1)).
            elevation: radians (scalar), the camera elevation subtracted from ``elevation_angle``.
            cos_half_hfov: ``cos(HFOV / 2)``; an edge is kept if the float32 cosine of its horizontal
                angle to the heading is ``>=`` it (always, when ``restricted`` is False).
            restricted: MatterSim's ``restrictedNavigation``.

        Returns:
            keep: bool mask of the broadcast shape of ``heading`` and ``edges``;
            rel_heading: (K,) float32, the C library's ``atan2f`` (positive to the right), for the
            kept entries in ``np.nonzero(keep)`` order; rel_elevation: (K,) float64.
        """
        cx, cy = horizon_direction(heading)
        nx, ny, dx, dy = self.nx[edges], self.ny[edges], self.dx[edges], self.dy[edges]
        if restricted:
            with np.errstate(invalid="ignore"):
                keep = (nx * cx + ny * cy).astype(np.float64) >= cos_half_hfov
        else:
            keep = np.ones(np.broadcast_shapes(cx.shape, dx.shape), dtype=bool)
        angle = self.elevation_angle[edges]
        if keep.shape == dx.shape:  # one heading (the simulator's step): the camera direction stays scalar
            dx, dy, angle = dx[keep], dy[keep], angle[keep]
        else:
            cx, cy, dx, dy, angle = (np.broadcast_to(a, keep.shape)[keep] for a in (cx, cy, dx, dy, angle))
        # MatterSim: atan2 of two float expressions -> the C library's single-precision atan2f
        # (not the double atan2 rounded to float32, which differs in the last bit).
        rel_heading = libm.atan2f(dx * cy - dy * cx, dx * cx + dy * cy)
        return keep, rel_heading, angle - elevation


#: State heading (radians) and elevation of each of the 36 discrete views, as the simulator sets
#: them: view = level * 12 + step, heading = step * 30deg, elevation = (level - 1) * 30deg.
NUM_VIEWS = 3 * HEADING_COUNT
VIEW_HEADINGS = np.array([float(v % HEADING_COUNT) * HEADING_INCREMENT for v in range(NUM_VIEWS)])
VIEW_ELEVATIONS = np.array([(-ELEVATION_INCREMENT, 0.0, ELEVATION_INCREMENT)[v // HEADING_COUNT]
                            for v in range(NUM_VIEWS)])


@dataclass(frozen=True, eq=False)
class ViewLists:
    """The sorted ``navigableLocations`` (current location excluded) of every (view, viewpoint).

    Group ``g = view * N + viewpoint`` holds entries ``ptr[g]:ptr[g+1]``, already in MatterSim's
    order (ascending angular distance, ties in neighbour index order).

    Attributes:
        ptr: (36*N+1,) int64 offsets.
        edge: (M,) int64 index into :class:`EdgeGeometry` arrays.
        dst: (M,) int64 neighbour viewpoint index.
        view: (M,) int64 view 0..35 of the entry.
        rel_heading: (M,) float64 holding float32 values (radians).
        rel_elevation: (M,) float64 (radians).
        rel_distance: (M,) float64 holding float32 values (metres).
        key: (M,) float64 ``sqrt(rel_heading^2 + rel_elevation^2)``.
    """

    ptr: np.ndarray
    edge: np.ndarray
    dst: np.ndarray
    view: np.ndarray
    rel_heading: np.ndarray
    rel_elevation: np.ndarray
    rel_distance: np.ndarray
    key: np.ndarray

    @classmethod
    def of(cls, graph: ScanGraph, cos_half_hfov: float, restricted: bool = True) -> "ViewLists":
        """All 36 x N navigable lists of ``graph`` in one vectorised pass (cached on ``graph``)."""
        cache = graph.__dict__.setdefault("_view_lists", {})
        if (cos_half_hfov, restricted) in cache:
            return cache[cos_half_hfov, restricted]
        geom = EdgeGeometry.of(graph)
        n, n_edges = len(graph), len(geom.src)
        headings = np.arange(HEADING_COUNT, dtype=np.float64) * HEADING_INCREMENT
        visible, rh_visible, _ = geom.seen(np.arange(n_edges), headings[:, None], 0.0, cos_half_hfov, restricted)
        rel_heading = np.full(visible.shape, np.nan)  # (12, E)
        rel_heading[visible] = rh_visible
        view_ix, edge_ix = np.nonzero(np.tile(visible, (3, 1)))  # (36, E): view = level * 12 + step
        rh = rel_heading[view_ix % HEADING_COUNT, edge_ix]
        re = geom.elevation_angle[edge_ix] - VIEW_ELEVATIONS[view_ix]
        key = np.sqrt(rh * rh + re * re)
        src = geom.src[edge_ix]
        order = np.lexsort((edge_ix, key, src, view_ix))
        view_ix, edge_ix, src = view_ix[order], edge_ix[order], src[order]
        lists = cls(
            ptr=np.searchsorted(view_ix * n + src, np.arange(NUM_VIEWS * n + 1)).astype(np.int64),
            edge=edge_ix, dst=geom.dst[edge_ix], view=view_ix, rel_heading=rh[order], rel_elevation=re[order],
            rel_distance=geom.rel_distance[edge_ix].astype(np.float64), key=key[order],
        )
        cache[cos_half_hfov, restricted] = lists
        return lists

    def rank(self) -> np.ndarray:
        """(M,) position of each entry inside its list (0 = first neighbour)."""
        return np.arange(len(self.edge)) - np.repeat(self.ptr[:-1], np.diff(self.ptr))
