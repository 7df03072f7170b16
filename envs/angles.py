"""EnvDrop's angle features: [sin h, cos h, sin e, cos e] repeated to 128 dimensions."""
from __future__ import annotations

import math

import numpy as np

from vln.sim import libm
from vln.sim.geometry import NUM_VIEWS, VIEW_ELEVATIONS, VIEW_HEADINGS

ANGLE_FEATURE_SIZE = 128


def angle_features(heading, elevation, size: int = ANGLE_FEATURE_SIZE) -> np.ndarray:
    """Angle features of headings/elevations (radians), shape ``heading.shape + (size,)`` float32.

    Matches EnvDrop ``utils.angle_feature``: ``[sin h, cos h, sin e, cos e] * (size // 4)``, with the
    C library's ``sin``/``cos`` as its ``math.sin``/``math.cos`` (see :mod:`vln.sim.libm`).
    """
    if np.ndim(heading) == 0 and np.ndim(elevation) == 0:  # EnvDrop's own scalar code, same bits
        h, e = float(heading), float(elevation)
        return np.array([math.sin(h), math.cos(h), math.sin(e), math.cos(e)] * (size // 4), dtype=np.float32)
    h = np.asarray(heading, dtype=np.float64)
    e = np.asarray(elevation, dtype=np.float64)
    four = np.stack([libm.sin(h), libm.cos(h), libm.sin(e), libm.cos(e)], axis=-1)
    return np.tile(four, size // 4).astype(np.float32)


#: (12, 36, 128): angle features of the 36 views relative to an agent at heading step 0..11
#: (EnvDrop ``get_point_angle_feature``; only the heading of the agent's view matters).
VIEW_ANGLE_FEATURES = np.stack([
    angle_features(VIEW_HEADINGS - VIEW_HEADINGS[step], VIEW_ELEVATIONS) for step in range(12)
])
assert VIEW_ANGLE_FEATURES.shape == (12, NUM_VIEWS, ANGLE_FEATURE_SIZE)
