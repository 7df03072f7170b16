"""Batched torch rendering of the 36 discrete views of many viewpoints from their skyboxes.

The torch twin of :func:`vln.render.render_view` (same geometry, same bilinear clamp-to-edge
sampling; a test checks they agree), built for feature extraction on the GPU: the six faces of a
viewpoint are stacked as a (3, 6, S, S) volume and sampled with one 5-D
``torch.nn.functional.grid_sample`` call whose depth coordinate sits exactly on the selected
face's slice, so bilinear filtering never bleeds across faces and ``padding_mode="border"`` is
OpenGL's ``GL_CLAMP_TO_EDGE``.

View ix = 0..35 has heading (ix % 12) * 30 degrees and elevation (ix // 12 - 1) * 30 degrees
(MatterSim's ``viewIndex`` with discretized views).
"""
from __future__ import annotations

import logging
import math

import numpy as np
import torch
import torch.nn.functional as F

from vln.skybox import GL_FACE_TO_SKYBOX, skybox_to_world, view_directions

logger = logging.getLogger(__name__)

NUM_VIEWS = 36


def view_angles() -> tuple[np.ndarray, np.ndarray]:
    """Headings and elevations of the 36 views.

    Returns:
        headings (36,) float64 radians in [0, 2 pi), elevations (36,) float64 radians.
    """
    ix = np.arange(NUM_VIEWS)
    return (ix % 12) * math.radians(30.0), (ix // 12 - 1) * math.radians(30.0)


# Per OpenGL face (+X, -X, +Y, -Y, +Z, -Z): sc axis, sc sign, tc axis, tc sign (vln.skybox).
_SC_AXIS = (2, 2, 0, 0, 0, 0)
_SC_SIGN = (-1.0, 1.0, 1.0, 1.0, 1.0, -1.0)
_TC_AXIS = (1, 1, 2, 2, 1, 1)
_TC_SIGN = (-1.0, -1.0, 1.0, -1.0, -1.0, -1.0)


class PanoramaRenderer:
    """Renders the 36 views of a batch of viewpoints at one resolution.

    Args:
        height, width: output view size in pixels.
        vfov: vertical field of view, radians.
        device: torch device (default CUDA when available).
    """

    def __init__(self, height: int, width: int, vfov: float, device=None):
        self.height, self.width, self.vfov = int(height), int(width), float(vfov)
        self.device = torch.device(device) if device is not None else torch.device(
            "cuda" if torch.cuda.is_available() else "cpu")
        heads, elevs = view_angles()
        rays = np.stack([view_directions(h, e, vfov, self.width, self.height) for h, e in zip(heads, elevs)])
        #: (36, H, W, 3) float32 world-frame unit rays.
        self.rays = torch.from_numpy(rays.astype(np.float32)).to(self.device)
        t = lambda v, dt=torch.float32: torch.tensor(v, dtype=dt, device=self.device)  # noqa: E731
        self._sc_axis, self._tc_axis = t(_SC_AXIS, torch.int64), t(_TC_AXIS, torch.int64)
        self._sc_sign, self._tc_sign = t(_SC_SIGN), t(_TC_SIGN)
        self._gl_to_k = t(GL_FACE_TO_SKYBOX)

    def grid(self, rotations: torch.Tensor) -> torch.Tensor:
        """``grid_sample`` coordinates for each view pixel of each viewpoint.

        Args:
            rotations: (B, 3, 3) pose rotations (connectivity ``pose`` [:3, :3]).

        Returns:
            (B, 36, H, W, 3) float32 (x = column, y = row, z = face slice) in [-1, 1].
        """
        m = -rotations.to(self.device, torch.float32)  # vln.skybox.skybox_to_world
        sky = torch.einsum("vhwi,bij->bvhwj", self.rays, m)  # skybox = M^T world
        mag, major = sky.abs().max(dim=-1)
        neg = torch.gather(sky, -1, major[..., None])[..., 0] < 0
        gl = major * 2 + neg.long()
        sc = torch.gather(sky, -1, self._sc_axis[gl][..., None])[..., 0] * self._sc_sign[gl]
        tc = torch.gather(sky, -1, self._tc_axis[gl][..., None])[..., 0] * self._tc_sign[gl]
        # s = (sc/ma + 1)/2 in [0, 1] maps to grid x = 2s - 1 = sc/ma (align_corners=False).
        z = (2.0 * self._gl_to_k[gl] + 1.0) / 6.0 - 1.0
        return torch.stack([sc / mag, tc / mag, z], dim=-1)

    def render(self, faces: torch.Tensor, rotations: torch.Tensor, out_dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Render the 36 views of every viewpoint in the batch.

        Args:
            faces: (B, 6, S, S, 3) uint8 RGB skybox faces in skybox order (any device; moved).
            rotations: (B, 3, 3) pose rotations.
            out_dtype: output dtype (float32; float16/bfloat16 halve memory on GPU).

        Returns:
            (B, 36, 3, H, W) pixels in [0, 255] (not rounded), RGB.
        """
        b = faces.shape[0]
        vol = faces.to(self.device, non_blocking=True).permute(0, 4, 1, 2, 3)  # (B, 3, 6, S, S)
        vol = vol.to(torch.float16 if (out_dtype == torch.float16 and vol.is_cuda) else torch.float32)
        g = self.grid(rotations).to(vol.dtype)
        out = F.grid_sample(vol, g.reshape(b, 1, NUM_VIEWS * self.height, self.width, 3),
                            mode="bilinear", padding_mode="border", align_corners=False)
        # out: (B, 3, 1, 36 * H, W) -> (B, 36, 3, H, W)
        out = out.view(b, 3, NUM_VIEWS, self.height, self.width).permute(0, 2, 1, 3, 4)
        return out.to(out_dtype)

    def render_uint8(self, faces: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
        """As :meth:`render`, rounded to (B, 36, H, W, 3) uint8 (comparable to vln.render)."""
        out = self.render(faces, rotations).round().clamp(0, 255).to(torch.uint8)
        return out.permute(0, 1, 3, 4, 2)
