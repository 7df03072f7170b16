"""PNG images of the replay viewer: the current view and the 36-view strip, from skybox faces.

Images are rendered with the NumPy renderer of :mod:`vln.render` (MatterSim's cube-map
convention) and cached in memory as PNG bytes. Skybox faces are read only from inside
``scans_dir``: a face whose real path (symlinks followed) leaves that folder counts as missing,
so a crafted symlink cannot make the viewer serve other files.
"""
from __future__ import annotations

import io
import logging
import math
import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..render import load_skybox_faces, render_view, sample_faces, skybox_paths
from ..sim.geometry import NUM_VIEWS, VIEW_ELEVATIONS, VIEW_HEADINGS
from ..skybox import direction_to_face, skybox_to_world, view_directions

logger = logging.getLogger(__name__)

#: Vertical field of view of the rendered views, radians (the R2R camera).
VFOV = math.radians(60)
#: Current view size in pixels (width, height), 4:3 like the R2R camera.
VIEW_SIZE = (320, 240)
#: One tile of the 36-view strip (width, height).
TILE_SIZE = (64, 48)
#: Faces are downscaled to this many pixels before rendering (enough for 320 px views).
FACE_MAX_SIZE = 512


def encode_png(rgb: np.ndarray) -> bytes:
    """(H, W, 3) uint8 RGB -> PNG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def strip_layout(view: int) -> tuple[int, int]:
    """(row, column) of discrete view ``view`` (0..35) in the strip: row 0 looks up (+30 deg)."""
    return 2 - view // 12, view % 12


class ViewRenderer:
    """Renders and caches the viewer's images for viewpoints of a :class:`~vln.graph.NavGraph`.

    Args:
        scans_dir: Matterport ``v1/scans`` root (``<scan>/matterport_skybox_images``), or
            ``None`` when no images exist (every image is then unavailable).
        graphs: the NavGraph the viewpoints belong to (for their pose rotations).
        cache_size: how many PNGs to keep in memory.
    """

    def __init__(self, scans_dir, graphs, cache_size: int = 256):
        self.scans_dir = Path(scans_dir).resolve() if scans_dir is not None else None
        self.graphs = graphs
        self.cache_size = cache_size
        self._png: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def _face_paths(self, scan: str, viewpoint: str) -> list[Path] | None:
        if self.scans_dir is None:
            return None
        paths = skybox_paths(self.scans_dir, scan, viewpoint)
        for p in paths:
            real = Path(os.path.realpath(p))
            if not real.is_file() or not real.is_relative_to(self.scans_dir):
                return None
        return paths

    def available(self, scan: str, viewpoint: str) -> bool:
        """Whether all six skybox faces of the viewpoint exist inside ``scans_dir``."""
        return self._face_paths(scan, viewpoint) is not None

    def _rotation(self, scan: str, viewpoint: str) -> np.ndarray:
        g = self.graphs[scan]
        return g.records.poses[g.vp_index(viewpoint, allow_excluded=True)]

    def _cached(self, key, make) -> bytes | None:
        with self._lock:
            if key in self._png:
                self._png.move_to_end(key)
                return self._png[key]
        if self._face_paths(key[0], key[1]) is None:
            return None
        png = make()
        with self._lock:
            self._png[key] = png
            while len(self._png) > self.cache_size:
                self._png.popitem(last=False)
        return png

    def _faces(self, scan: str, viewpoint: str) -> np.ndarray:
        return load_skybox_faces(self.scans_dir, scan, viewpoint, max_size=FACE_MAX_SIZE)

    def view_png(self, scan: str, viewpoint: str, heading_deg: int) -> bytes | None:
        """PNG of the view at ``heading_deg`` (integer degrees clockwise from +y), elevation 0.

        Returns:
            PNG bytes of a :data:`VIEW_SIZE` image, or ``None`` when the faces are unavailable.
        """
        w, h = VIEW_SIZE

        def make():
            rgb = render_view(self._faces(scan, viewpoint), self._rotation(scan, viewpoint),
                              math.radians(heading_deg), 0.0, VFOV, w, h)
            return encode_png(rgb)

        return self._cached((scan, viewpoint, "view", int(heading_deg) % 360), make)

    def pano_png(self, scan: str, viewpoint: str) -> bytes | None:
        """PNG of the 36 discrete views as a 3 x 12 grid of :data:`TILE_SIZE` tiles.

        Row 0 holds views 24..35 (elevation +30 deg), row 2 views 0..11 (-30 deg); column c is
        heading c * 30 deg, as EnvDrop's view indices. ``None`` when the faces are unavailable.
        """
        w, h = TILE_SIZE

        def make():
            faces = self._faces(scan, viewpoint)
            dirs = np.stack([view_directions(VIEW_HEADINGS[v], VIEW_ELEVATIONS[v], VFOV, w, h) for v in range(NUM_VIEWS)])
            k, t, s = direction_to_face(dirs @ skybox_to_world(self._rotation(scan, viewpoint)))
            tiles = np.clip(np.rint(sample_faces(faces, k, t, s)), 0, 255).astype(np.uint8)  # (36, h, w, 3)
            strip = np.empty((3 * h, 12 * w, 3), dtype=np.uint8)
            for v in range(NUM_VIEWS):
                r, c = strip_layout(v)
                strip[r * h:(r + 1) * h, c * w:(c + 1) * w] = tiles[v]
            return encode_png(strip)

        return self._cached((scan, viewpoint, "pano", 0), make)
