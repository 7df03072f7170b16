"""The records ``getState()`` returns, with MatterSim's field names."""
from __future__ import annotations

import numpy as np


class ViewPoint:
    """A location: the agent's own, or one entry of ``navigableLocations``.

    Attributes (as MatterSim's ``Viewpoint``):
        viewpointId: the 32-character id.
        ix: index of the viewpoint in the scan's connectivity file.
        x, y, z: position in metres (float32 values, as MatterSim stores them).
        rel_heading: radians to the right of the camera heading (float32 value of the C
            library's ``atan2f``, as MatterSim computes it; see :mod:`vln.sim.libm`).
        rel_elevation: radians above the camera elevation (double; the C library's ``atan2``).
        rel_distance: metres from the agent (float32 value).

    Instances are immutable because the simulator shares them between states.
    """

    __slots__ = ("viewpointId", "ix", "x", "y", "z", "rel_heading", "rel_elevation", "rel_distance")

    def __init__(self, viewpointId, ix, x, y, z, rel_heading=0.0, rel_elevation=0.0, rel_distance=0.0):
        s = object.__setattr__
        s(self, "viewpointId", viewpointId)
        s(self, "ix", ix)
        s(self, "x", x)
        s(self, "y", y)
        s(self, "z", z)
        s(self, "rel_heading", rel_heading)
        s(self, "rel_elevation", rel_elevation)
        s(self, "rel_distance", rel_distance)

    def __setattr__(self, name, value):
        raise AttributeError("ViewPoint is read-only (it is shared between simulator states)")

    def __eq__(self, other):
        return isinstance(other, ViewPoint) and all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __hash__(self):
        return hash((self.viewpointId, self.rel_heading, self.rel_elevation))

    def __repr__(self):
        return (
            f"ViewPoint({self.viewpointId}, ix={self.ix}, rel_heading={self.rel_heading:.4f}, "
            f"rel_elevation={self.rel_elevation:.4f}, rel_distance={self.rel_distance:.3f})"
        )


class SimState:
    """The state of one episode of the batch (MatterSim's ``SimState``).

    Attributes:
        scanId: building id.
        step: actions taken since ``newEpisode``.
        location: the agent's :class:`ViewPoint` (relative fields all 0).
        heading: radians clockwise from +y, in [0, 2*pi).
        elevation: radians, positive up.
        viewIndex: 0..35 with discretised views (0..11 look down, 12..23 level, 24..35 up).
        navigableLocations: tuple of :class:`ViewPoint`; index 0 is the current location, the rest
            sorted by angular distance from the view centre.
        rgb: (height, width, 3) uint8 BGR image (rendered on first access when rendering is on).
        depth: (height, width, 1) uint16 (zeros: depth rendering is not implemented).
    """

    __slots__ = ("scanId", "step", "location", "heading", "elevation", "viewIndex", "navigableLocations",
                 "_sim", "_rgb")

    def __init__(self, sim, scanId, location, heading, elevation, viewIndex, navigableLocations):
        self._sim = sim
        self.scanId = scanId
        self.step = 0
        self.location = location
        self.heading = heading
        self.elevation = elevation
        self.viewIndex = viewIndex
        self.navigableLocations = navigableLocations
        self._rgb = None

    @property
    def rgb(self) -> np.ndarray:
        if self._rgb is None:
            self._rgb = self._sim._render(self)
        return self._rgb

    @property
    def depth(self) -> np.ndarray:
        return np.zeros((self._sim.height, self._sim.width, 1), dtype=np.uint16)

    def __repr__(self):
        return (
            f"SimState(scanId={self.scanId}, viewpoint={self.location.viewpointId}, step={self.step}, "
            f"heading={self.heading:.4f}, elevation={self.elevation:.4f}, viewIndex={self.viewIndex}, "
            f"navigable={len(self.navigableLocations)})"
        )
