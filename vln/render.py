"""NumPy perspective rendering of one view from a viewpoint's six skybox faces.

This is the CPU reference renderer behind the simulator's ``state.rgb`` and the envs'
``render("rgb_array")``; :mod:`features.panorama` is its batched torch twin for feature
extraction (a test checks they agree). The geometry is :mod:`vln.skybox` (MatterSim's cube-map
convention); sampling is bilinear with clamp-to-edge inside each face, like MatterSim's
``GL_LINEAR`` / ``GL_CLAMP_TO_EDGE`` texture.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from .skybox import direction_to_face, skybox_filename, skybox_to_world, view_directions

logger = logging.getLogger(__name__)


def skybox_dir(scans_dir: str | os.PathLike, scan: str) -> Path:
    """The folder holding a scan's skybox JPEGs: ``<scans_dir>/<scan>/matterport_skybox_images``."""
    return Path(scans_dir) / scan / "matterport_skybox_images"


def skybox_paths(scans_dir: str | os.PathLike, scan: str, viewpoint: str) -> list[Path]:
    """The six face files of a viewpoint, in skybox index order k = 0..5."""
    d = skybox_dir(scans_dir, scan)
    return [d / skybox_filename(viewpoint, k) for k in range(6)]


def load_skybox_faces(scans_dir: str | os.PathLike, scan: str, viewpoint: str, max_size: int | None = None) -> np.ndarray:
    """Decode the six skybox images of a viewpoint.

    Args:
        scans_dir: the Matterport ``v1/scans`` root (``<scan>/matterport_skybox_images/...``).
        scan: scan id.
        viewpoint: viewpoint id.
        max_size: if given, faces larger than this are downscaled to ``max_size`` square
            (area-averaging), like MatterSim's ``downsize_skybox.py`` (512).

    Returns:
        (6, S, S, 3) uint8 RGB, face k = ``<viewpoint>_skybox<k>_sami.jpg``.

    Raises:
        FileNotFoundError: naming the missing file.
        DataFormatError: a face that cannot be decoded or is not square / not the same size.
    """
    from PIL import Image

    from .errors import DataFormatError

    faces = []
    for k, path in enumerate(skybox_paths(scans_dir, scan, viewpoint)):
        if not path.exists():
            raise FileNotFoundError(
                f"skybox face {k} of viewpoint {viewpoint} (scan {scan}) not found: {path} "
                f"(expected the Matterport layout <scans_dir>/<scan>/matterport_skybox_images/)"
            )
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                if max_size is not None and im.width > max_size:
                    im = im.resize((max_size, max_size), Image.BOX)
                arr = np.asarray(im, dtype=np.uint8)
        except OSError as e:
            raise DataFormatError(path, f"{scan}/{viewpoint}", f"skybox{k}", f"cannot be decoded ({e})") from None
        if arr.shape[0] != arr.shape[1] or (faces and arr.shape != faces[0].shape):
            raise DataFormatError(path, f"{scan}/{viewpoint}", f"skybox{k}",
                                  f"faces must be square and equal in size, got {arr.shape[:2]}")
        faces.append(arr)
    return np.stack(faces)


def sample_faces(faces: np.ndarray, skybox: np.ndarray, t: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Bilinearly sample the cube map at (face, row, column) with clamp-to-edge per face.

    Args:
        faces: (6, S, S, C) array.
        skybox, t, s: (...) face index and [0, 1] row / column coordinates (from
            :func:`vln.skybox.direction_to_face`).

    Returns:
        (..., C) float64. Pixel centres sit at (i + 0.5) / S, as in OpenGL and
        ``torch.nn.functional.grid_sample(align_corners=False)``.
    """
    size = faces.shape[1]
    y = np.clip(t * size - 0.5, 0.0, size - 1)
    x = np.clip(s * size - 0.5, 0.0, size - 1)
    y0 = np.floor(y).astype(np.int64)
    x0 = np.floor(x).astype(np.int64)
    y1 = np.minimum(y0 + 1, size - 1)
    x1 = np.minimum(x0 + 1, size - 1)
    wy = (y - y0)[..., None]
    wx = (x - x0)[..., None]
    f = faces.astype(np.float64, copy=False)
    top = f[skybox, y0, x0] * (1 - wx) + f[skybox, y0, x1] * wx
    bottom = f[skybox, y1, x0] * (1 - wx) + f[skybox, y1, x1] * wx
    return top * (1 - wy) + bottom * wy


def render_view(faces: np.ndarray, rotation, heading: float, elevation: float, vfov: float,
                width: int, height: int) -> np.ndarray:
    """Render a perspective view from a viewpoint's skybox, as MatterSim's ``state.rgb`` shows it.

    Args:
        faces: (6, S, S, 3) uint8 RGB faces in skybox order (from :func:`load_skybox_faces`).
        rotation: (3, 3) rotation part of the viewpoint's connectivity ``pose`` (row-major).
        heading: radians clockwise from world +y.
        elevation: radians, positive up.
        vfov: vertical field of view, radians.
        width, height: output size in pixels.

    Returns:
        (height, width, 3) uint8 RGB (row 0 = top). MatterSim's ``state.rgb`` is BGR:
        reverse the last axis for that.
    """
    faces = np.asarray(faces)
    if faces.ndim != 4 or faces.shape[0] != 6 or faces.shape[1] != faces.shape[2]:
        raise ValueError(f"faces must be (6, S, S, C), got {faces.shape}")
    world = view_directions(heading, elevation, vfov, width, height)
    sky = world @ skybox_to_world(rotation)  # row vectors: (M^T w)^T = w^T M
    k, t, s = direction_to_face(sky)
    rgb = sample_faces(faces, k, t, s)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
