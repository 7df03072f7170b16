"""features.panorama: batched torch rendering of the 36 views agrees with vln.render."""
from __future__ import annotations

import math

import numpy as np
import torch

from features.panorama import NUM_VIEWS, PanoramaRenderer, view_angles
from test_render import REAL_POSE_R, _orthonormal, expected_pixel, marker_faces, red_centroid
from vln.render import render_view
from vln.skybox import SYNTHETIC_ROTATION

VFOV = math.radians(60)


def test_view_angles_follow_mattersim_view_index():
    h, e = view_angles()
    assert h.shape == e.shape == (36,)
    assert math.isclose(h[0], 0) and math.isclose(e[0], -math.pi / 6)
    assert math.isclose(h[13], math.pi / 6) and e[13] == 0
    assert math.isclose(h[35], 11 * math.pi / 6) and math.isclose(e[35], math.pi / 6)


def test_torch_and_numpy_renderers_agree():
    rng = np.random.default_rng(1)
    faces = rng.integers(0, 256, (2, 6, 24, 24, 3), dtype=np.uint8)
    rots = np.stack([SYNTHETIC_ROTATION, _orthonormal(REAL_POSE_R)])
    pr = PanoramaRenderer(12, 16, VFOV, device="cpu")
    out = pr.render_uint8(torch.from_numpy(faces), torch.from_numpy(rots)).numpy()
    assert out.shape == (2, NUM_VIEWS, 12, 16, 3)
    heads, elevs = view_angles()
    for b in range(2):
        for v in range(NUM_VIEWS):
            ref = render_view(faces[b], rots[b], heads[v], elevs[v], VFOV, 16, 12)
            assert np.abs(ref.astype(int) - out[b, v].astype(int)).max() <= 1, (b, v)


def test_marker_appears_at_expected_pixel_in_expected_views():
    """A marker at heading 65, elevation 10 degrees lands at its projected pixel in exactly the
    views whose frustum holds it (14, 15, 26, 27) and nowhere else."""
    rot = _orthonormal(REAL_POSE_R)
    h, e = math.radians(65), math.radians(10)
    direction = np.array([math.sin(h) * math.cos(e), math.cos(h) * math.cos(e), math.sin(e)])
    faces = marker_faces(rot, direction, size=96, radius_deg=2.0)
    pr = PanoramaRenderer(48, 48, VFOV, device="cpu")
    views = pr.render_uint8(torch.from_numpy(faces)[None], torch.from_numpy(rot)[None])[0].numpy()
    heads, elevs = view_angles()
    seen = []
    for v in range(36):
        fwd = np.array([math.sin(heads[v]) * math.cos(elevs[v]), math.cos(heads[v]) * math.cos(elevs[v]),
                        math.sin(elevs[v])])
        red = (views[v][..., 0] > 180) & (views[v][..., 1] < 80)
        er, ec = expected_pixel(direction, heads[v], elevs[v], 48, 48) if direction @ fwd > 0 else (-99, -99)
        if 3 <= er <= 44 and 3 <= ec <= 44:
            r, c = red_centroid(views[v])
            assert abs(r - er) < 0.75 and abs(c - ec) < 0.75, v
            seen.append(v)
        elif not (-3 <= er <= 50 and -3 <= ec <= 50):
            assert not red.any(), v
    assert seen == [14, 15, 26, 27]


def test_render_is_float_in_pixel_range_and_batched():
    faces = torch.full((3, 6, 8, 8, 3), 200, dtype=torch.uint8)
    rots = torch.from_numpy(np.stack([SYNTHETIC_ROTATION] * 3))
    out = PanoramaRenderer(4, 6, VFOV, device="cpu").render(faces, rots)
    assert out.shape == (3, 36, 3, 4, 6) and out.dtype == torch.float32
    assert torch.allclose(out, torch.full_like(out, 200.0))
