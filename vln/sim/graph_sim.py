"""A pure-Python drop-in for ``MatterSim.Simulator`` over the navigation graph.

Same method names, arguments, state fields, values and ordering as the C++ simulator
(``shared/reference/mattersim_semantics.md``). Discretised views (the R2R setting) are served
from a per-(viewpoint, view) cache of navigable lists, so a step is a few dictionary look-ups;
continuous headings compute the list with vectorised float32 NumPy.
"""
from __future__ import annotations

import math
import random
import warnings
from functools import lru_cache
from pathlib import Path

from ..errors import (ExcludedViewpointError, InvalidActionError, SimulatorStateError, UnknownScanError,
                      UnknownViewpointError)
from ..graph import NavGraph, ScanGraph
from .geometry import (ELEVATION_INCREMENT, HEADING_COUNT, HEADING_INCREMENT, cos_half_hfov, snap_elevation,
                       snap_heading, wrap_heading)
from .geometry import ViewLists
from .navigable import navigable_locations
from .state import SimState, ViewPoint


@lru_cache(maxsize=16)
def shared_navgraph(path: str) -> NavGraph:
    """One :class:`NavGraph` per connectivity directory, shared by simulators and environments."""
    return NavGraph(path)


def _step_tables():
    """Exact results of MatterSim's discretised turn arithmetic, per (step, sign) and (level, sign).

    In discretised mode the heading is always ``step * 30deg`` and the elevation one of three
    values, so ``setHeadingElevation(heading +/- 30deg, elevation +/- 30deg)`` is a pure function of
    the current step/level and the sign of the delta; computing it once with the real arithmetic
    keeps every float operation of the C++ code.
    """
    heading_next = {}
    for step in range(HEADING_COUNT):
        h = float(step) * HEADING_INCREMENT
        for sign in (-1, 0, 1):
            heading_next[step, sign] = snap_heading(h + sign * HEADING_INCREMENT)[0]
    levels = (-ELEVATION_INCREMENT, 0.0, ELEVATION_INCREMENT)
    level_next = {}
    for level, e in enumerate(levels):
        for sign in (-1, 0, 1):
            level_next[level, sign] = snap_elevation(e + sign * ELEVATION_INCREMENT)[0]
    return heading_next, level_next


_HEADING_NEXT, _LEVEL_NEXT = _step_tables()
_HEADINGS = tuple(float(s) * HEADING_INCREMENT for s in range(HEADING_COUNT))
_ELEVATIONS = (-ELEVATION_INCREMENT, 0.0, ELEVATION_INCREMENT)


def r2r_simulator(connectivity_dir, batch_size: int = 1) -> "Simulator":
    """An initialised simulator with the R2R / EnvDrop settings.

    Rendering off, discretised views, a 640x480 camera with a 60 degree vertical field of view
    (so a neighbour is navigable within 40 degrees of the heading).
    """
    sim = Simulator()
    sim.setNavGraphPath(str(connectivity_dir))
    sim.setRenderingEnabled(False)
    sim.setDiscretizedViewingAngles(True)
    sim.setCameraResolution(640, 480)
    sim.setCameraVFOV(math.radians(60))
    sim.setBatchSize(batch_size)
    sim.initialize()
    return sim


def _sign(x) -> int:
    return 1 if x > 0.0 else (-1 if x < 0.0 else 0)


class Simulator:
    """Batched navigation-graph simulator with the interface of ``MatterSim.Simulator``.

    Defaults are MatterSim's: camera 320x240, VFOV 0.8 rad, elevation limits [-0.94, 0.94],
    discretised views off, restricted navigation on, rendering on, batch size 1. R2R code uses
    640x480, VFOV 60 degrees and discretised views.
    """

    def __init__(self):
        self.width, self.height = 320, 240
        self.vfov = 0.8
        self.minElevation, self.maxElevation = -0.94, 0.94
        self.navGraphPath = "./connectivity"
        self.datasetPath = "./data/v1/scans/"
        self.renderingEnabled = True
        self.discretizeViews = False
        self.restrictedNavigation = True
        self.preloadImages = False
        self.renderDepth = False
        self.batchSize = 1
        self.randomSeed = 1
        self.cacheSize = 200
        self.initialized = False
        self._graph: NavGraph | None = None
        self._states: list[SimState] = []
        self._rng = None
        self._faces = {}

    # ------------------------------------------------------------------ settings
    def _setting(self, name, value):
        if self.initialized:
            warnings.warn(f"Simulator.{name} after initialize() has no effect (as in MatterSim)", stacklevel=3)
            return
        setattr(self, name, value)

    def setCameraResolution(self, width: int, height: int) -> None:
        """Camera size in pixels (MatterSim applies it at any time)."""
        if width <= 0 or height <= 0:
            raise ValueError(f"camera resolution must be positive, got {width}x{height}")
        self.width, self.height = int(width), int(height)

    def setCameraVFOV(self, vfov: float) -> None:
        """Vertical field of view in radians (MatterSim applies it at any time)."""
        self.vfov = float(vfov)

    def setElevationLimits(self, min: float, max: float) -> bool:  # noqa: A002 - MatterSim's names
        """Elevation limits in radians for continuous views; returns False (unchanged) if invalid."""
        if min < 0.0 and min > -math.pi / 2.0 and max > 0.0 and max < math.pi / 2.0:
            self.minElevation, self.maxElevation = float(min), float(max)
            return True
        return False

    def setNavGraphPath(self, path: str) -> None:
        self._setting("navGraphPath", str(path))

    def setDatasetPath(self, path: str) -> None:
        self._setting("datasetPath", str(path))

    def setRenderingEnabled(self, value: bool) -> None:
        self._setting("renderingEnabled", bool(value))

    def setDiscretizedViewingAngles(self, value: bool) -> None:
        self._setting("discretizeViews", bool(value))

    def setRestrictedNavigation(self, value: bool) -> None:
        self._setting("restrictedNavigation", bool(value))

    def setPreloadingEnabled(self, value: bool) -> None:
        self._setting("preloadImages", bool(value))

    def setDepthEnabled(self, value: bool) -> None:
        self._setting("renderDepth", bool(value))

    def setBatchSize(self, size: int) -> None:
        if int(size) < 1:
            raise ValueError(f"batch size must be at least 1, got {size}")
        self._setting("batchSize", int(size))

    def setSeed(self, seed: int) -> None:
        self._setting("randomSeed", int(seed))

    def setCacheSize(self, size: int) -> None:
        self._setting("cacheSize", int(size))

    # ------------------------------------------------------------------ lifecycle
    def initialize(self) -> None:
        """Load the navigation graph index; further settings (but camera ones) are ignored."""
        if self.initialized:
            return
        path = Path(self.navGraphPath)
        if not (path / "scans.txt").exists():
            raise FileNotFoundError(f"MatterSim: Could not open list of scans at: {path / 'scans.txt'}, is path valid?")
        self._graph = shared_navgraph(str(path.resolve()))
        self._scans = set(self._graph.scan_ids)
        self._rng = random.Random(self.randomSeed)
        self.initialized = True

    def close(self) -> None:
        self.initialized = False
        self._states = []
        self._faces = {}

    @property
    def navgraph(self) -> NavGraph:
        """The :class:`NavGraph` behind the simulator (after :meth:`initialize`)."""
        if self._graph is None:
            raise SimulatorStateError("call initialize() or newEpisode() first")
        return self._graph

    def _scan(self, scan_id: str) -> ScanGraph:
        if scan_id not in self._scans:
            raise UnknownScanError(
                f"MatterSim: unknown scanId {scan_id!r}: not listed in {Path(self.navGraphPath) / 'scans.txt'}"
            )
        return self._graph[scan_id]

    def _check_batch(self, name: str, values) -> list:
        if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
            raise TypeError(f"{name} must be a list with one entry per episode of the batch, got {values!r}")
        if len(values) != self.batchSize:
            raise SimulatorStateError(
                f"{name} has {len(values)} entries but the batch size is {self.batchSize} (setBatchSize)"
            )
        return list(values)

    # ------------------------------------------------------------------ navigation
    def _navigable(self, graph: ScanGraph, ix: int, heading: float, elevation: float, view_key=None):
        """Navigable list; with discretised views, cached per (viewpoint, view) from :class:`ViewLists`."""
        if view_key is None:
            return navigable_locations(graph, ix, heading, elevation, self._cos_hfov(), self.restrictedNavigation)
        cache = self._view_cache(graph)
        nav = cache.get((ix, view_key))
        if nav is None:
            nav = cache[ix, view_key] = self._listed(graph, ix, view_key)
        return nav

    def _listed(self, graph: ScanGraph, ix: int, view: int) -> tuple:
        lists = ViewLists.of(graph, self._cos_hfov(), self.restrictedNavigation)
        g = view * len(graph) + ix
        a, b = int(lists.ptr[g]), int(lists.ptr[g + 1])
        pos = graph.positions_f32
        ids = graph.viewpoint_ids
        x, y, z = (float(v) for v in pos[ix])
        out = [ViewPoint(ids[ix], ix, x, y, z)]
        for j, rh, re, rd in zip(lists.dst[a:b].tolist(), lists.rel_heading[a:b].tolist(),
                                 lists.rel_elevation[a:b].tolist(), lists.rel_distance[a:b].tolist()):
            x, y, z = (float(v) for v in pos[j])
            out.append(ViewPoint(ids[j], j, x, y, z, rh, re, rd))
        return tuple(out)

    def _cos_hfov(self) -> float:
        return cos_half_hfov(self.vfov, self.width, self.height)

    def _view_cache(self, graph: ScanGraph) -> dict:
        caches = graph.__dict__.setdefault("_navigable_cache", {})
        return caches.setdefault((self._cos_hfov(), self.restrictedNavigation), {})

    def _place(self, scan_id: str, viewpoint_id: str, heading: float, elevation: float) -> SimState:
        graph = self._scan(scan_id)
        ix = graph.index.get(viewpoint_id)
        if ix is None:
            raise UnknownViewpointError(f"MatterSim: Could not find viewpointId: {viewpoint_id}, is viewpoint id valid?"
                                        f" (scan {scan_id})")
        if not graph.included[ix]:
            raise ExcludedViewpointError(
                f"MatterSim: ViewpointId: {viewpoint_id}, is excluded from the connectivity graph. (scan {scan_id})"
            )
        heading = float(heading)
        elevation = float(elevation)
        if not (math.isfinite(heading) and math.isfinite(elevation)):
            raise ValueError(f"heading and elevation must be finite, got {heading}, {elevation}")
        if self.discretizeViews:
            step, heading = snap_heading(heading)
            level, elevation = snap_elevation(elevation)
            view_index = step + HEADING_COUNT * level
            nav = self._navigable(graph, ix, heading, elevation, view_index)
        else:
            heading = wrap_heading(heading)
            elevation = max(min(elevation, self.maxElevation), self.minElevation)
            view_index = 0
            nav = self._navigable(graph, ix, heading, elevation)
        return SimState(self, scan_id, nav[0], heading, elevation, view_index, nav)

    def newEpisode(self, scanIds, viewpointIds, headings, elevations) -> None:
        """Start one episode per batch entry (lists of equal length = batch size)."""
        if not self.initialized:
            self.initialize()
        scanIds = self._check_batch("scanIds", scanIds)
        viewpointIds = self._check_batch("viewpointIds", viewpointIds)
        headings = self._check_batch("headings", headings)
        elevations = self._check_batch("elevations", elevations)
        self._states = [self._place(s, v, h, e) for s, v, h, e in zip(scanIds, viewpointIds, headings, elevations)]

    def newRandomEpisode(self, scanIds) -> None:
        """Start episodes at random included viewpoints with random headings (seeded by setSeed)."""
        if not self.initialized:
            self.initialize()
        scanIds = self._check_batch("scanIds", scanIds)
        vps, headings = [], []
        for s in scanIds:
            g = self._scan(s)
            choices = [v for v, inc in zip(g.viewpoint_ids, g.included) if inc]
            if not choices:
                raise SimulatorStateError(f"MatterSim: ScanId: {s} has no included viewpoints!")
            vps.append(self._rng.choice(choices))
            headings.append(self._rng.uniform(0.0, 2.0 * math.pi))
        self.newEpisode(scanIds, vps, headings, [0.0] * len(scanIds))

    def getState(self) -> list:
        """The list of :class:`SimState`, one per batch entry (the same objects are updated)."""
        if not self._states:
            raise SimulatorStateError("MatterSim: newEpisode must be called before getState")
        return list(self._states)

    def makeAction(self, indices, headings, elevations) -> None:
        """Move each agent to ``navigableLocations[index]`` and turn by the given deltas.

        Raises:
            InvalidActionError: an index outside ``navigableLocations`` (nothing is changed).
        """
        if not self._states:
            raise SimulatorStateError("MatterSim: newEpisode must be called before makeAction")
        states = self._states
        n = len(states)
        if len(indices) != n or len(headings) != n or len(elevations) != n:
            raise SimulatorStateError(
                f"makeAction got {len(indices)} indices, {len(headings)} headings and {len(elevations)} "
                f"elevations for a batch of {n}"
            )
        for i in range(n):
            k = indices[i]
            nav_len = len(states[i].navigableLocations)
            if not (0 <= k < nav_len) or k != int(k):
                raise InvalidActionError(
                    f"MatterSim: Invalid action index: {k} in environment {i} of {n} "
                    f"(it has {nav_len} navigable locations)"
                )
        if self.discretizeViews:
            for i in range(n):
                st = states[i]
                loc = st.navigableLocations[int(indices[i])]
                vi = st.viewIndex
                step = _HEADING_NEXT[vi % HEADING_COUNT, _sign(headings[i])]
                level = _LEVEL_NEXT[vi // HEADING_COUNT, _sign(elevations[i])]
                view_index = step + HEADING_COUNT * level
                graph = self._graph[st.scanId]
                cache = self._view_cache(graph)
                nav = cache.get((loc.ix, view_index))
                if nav is None:
                    nav = cache[loc.ix, view_index] = self._listed(graph, loc.ix, view_index)
                st.location = nav[0]
                st.heading = _HEADINGS[step]
                st.elevation = _ELEVATIONS[level]
                st.viewIndex = view_index
                st.navigableLocations = nav
                st.step += 1
                st._rgb = None
        else:
            for i in range(n):
                st = states[i]
                loc = st.navigableLocations[int(indices[i])]
                heading = wrap_heading(st.heading + float(headings[i]))
                elevation = max(min(st.elevation + float(elevations[i]), self.maxElevation), self.minElevation)
                nav = self._navigable(self._graph[st.scanId], loc.ix, heading, elevation)
                st.location = nav[0]
                st.heading = heading
                st.elevation = elevation
                st.navigableLocations = nav
                st.step += 1
                st._rgb = None

    # ------------------------------------------------------------------ rendering
    def _render(self, state: SimState):
        """BGR image of the current view (MatterSim's ``state.rgb``), from the skybox faces."""
        import numpy as np

        if not self.renderingEnabled:
            return np.zeros((self.height, self.width, 3), dtype=np.uint8)
        from ..render import load_skybox_faces, render_view

        key = (state.scanId, state.location.viewpointId)
        faces = self._faces.get(key)
        if faces is None:
            faces = load_skybox_faces(self.datasetPath, state.scanId, state.location.viewpointId)
            if len(self._faces) >= max(self.cacheSize, 1):
                self._faces.pop(next(iter(self._faces)))
            self._faces[key] = faces
        pose = self._graph[state.scanId].records.poses[state.location.ix].reshape(4, 4)
        rgb = render_view(faces, pose[:3, :3], state.heading, state.elevation, self.vfov, self.width, self.height)
        return np.ascontiguousarray(rgb[..., ::-1])
