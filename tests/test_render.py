"""vln.render: the NumPy single-view renderer and skybox loading, checked on synthetic cube maps."""
from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from vln.render import load_skybox_faces, render_view, skybox_paths
from vln.skybox import SYNTHETIC_ROTATION, direction_to_face, face_world_directions, skybox_to_world

VFOV = math.radians(60)
# Rotation part of a real Matterport pose (17DRP5sb8fy, first viewpoint), rounded.
REAL_POSE_R = np.array([[-0.934, -0.001, -0.357], [0.357, -0.020, -0.934], [-0.006, -1.000, 0.019]])


def _orthonormal(r):
    u, _, vt = np.linalg.svd(r)
    return u @ vt


def marker_faces(rotation, direction, size=64, radius_deg=2.0):
    """Grey cube map with a red disc painted around world ``direction``."""
    faces = np.full((6, size, size, 3), 100, dtype=np.uint8)
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    for k in range(6):
        dirs = face_world_directions(k, size, rotation)
        hit = dirs @ d > math.cos(math.radians(radius_deg))
        faces[k][hit] = (255, 0, 0)
    return faces


def expected_pixel(direction, heading, elevation, width, height, vfov=VFOV):
    """(row, col) where a world direction projects in a pinhole view (pixel-centre units)."""
    ch, sh, ce, se = math.cos(heading), math.sin(heading), math.cos(elevation), math.sin(elevation)
    fwd = np.array([sh * ce, ch * ce, se])
    right = np.array([ch, -sh, 0.0])
    up = np.cross(right, fwd)
    d = np.asarray(direction, float)
    x, y, z = d @ right, d @ up, d @ fwd
    ty = math.tan(vfov / 2)
    tx = ty * width / height
    col = (x / z / tx + 1) / 2 * width - 0.5
    row = (1 - y / z / ty) / 2 * height - 0.5
    return row, col


def red_centroid(img):
    mask = (img[..., 0] > 180) & (img[..., 1] < 80)
    assert mask.sum() > 0, "marker not visible"
    rows, cols = np.nonzero(mask)
    return rows.mean(), cols.mean()


@pytest.mark.parametrize("rotation", [SYNTHETIC_ROTATION, _orthonormal(REAL_POSE_R)], ids=["synthetic", "real-pose"])
@pytest.mark.parametrize("heading,elevation,marker", [
    (0.0, 0.0, (math.radians(20), math.radians(10))),
    (math.radians(90), math.radians(-30), (math.radians(75), math.radians(-40))),
    (math.radians(210), math.radians(30), (math.radians(200), math.radians(45))),
])
def test_marker_appears_at_projected_pixel(rotation, heading, elevation, marker):
    mh, me = marker
    direction = (math.sin(mh) * math.cos(me), math.cos(mh) * math.cos(me), math.sin(me))
    faces = marker_faces(rotation, direction)
    img = render_view(faces, rotation, heading, elevation, VFOV, 80, 60)
    row, col = red_centroid(img)
    er, ec = expected_pixel(direction, heading, elevation, 80, 60)
    assert abs(row - er) < 1.0 and abs(col - ec) < 1.0


def test_real_pose_sees_ceiling_up_and_image3_ahead_unmirrored():
    """With a real pose, looking up shows skybox0 (ceiling), looking along the camera's z axis
    shows skybox3 upright and not mirrored (the connectivity README: camera faces image 3)."""
    r = _orthonormal(REAL_POSE_R)
    size = 32
    faces = np.zeros((6, size, size, 3), dtype=np.uint8)
    for k in range(6):
        faces[k, ..., 2] = 40 * k  # face id in blue
    faces[3, :, : size // 2, 0] = 255  # left half of image 3 red
    faces[3, : size // 2, :, 1] = 255  # top half of image 3 green
    up = render_view(faces, r, 0.0, math.radians(89.9), math.radians(20), 8, 8)
    assert (up[..., 2] == 0).all()  # skybox0
    fwd = r[:, 2]
    heading = math.atan2(fwd[0], fwd[1])
    view = render_view(faces, r, heading, 0.0, math.radians(40), 16, 16)
    assert (view[..., 2] == 120).all()  # skybox3 fills the view
    assert view[8, 2, 0] == 255 and view[8, 13, 0] == 0  # left stays left
    assert view[2, 8, 1] == 255 and view[13, 8, 1] == 0  # top stays top


def test_skybox_to_world_maps_real_ceiling_to_up():
    r = _orthonormal(REAL_POSE_R)
    k, _, _ = direction_to_face(skybox_to_world(r).T @ np.array([0.0, 0.0, 1.0]))
    assert int(k) == 0
    k, _, _ = direction_to_face(skybox_to_world(r).T @ np.array([0.0, 0.0, -1.0]))
    assert int(k) == 5


def test_uniform_faces_render_uniform_and_shape():
    faces = np.full((6, 16, 16, 3), 77, dtype=np.uint8)
    img = render_view(faces, SYNTHETIC_ROTATION, 1.0, 0.2, VFOV, 40, 30)
    assert img.shape == (30, 40, 3) and img.dtype == np.uint8
    assert (img == 77).all()


def test_bad_faces_shape_rejected():
    with pytest.raises(ValueError, match=r"\(6, S, S, C\)"):
        render_view(np.zeros((5, 8, 8, 3), np.uint8), SYNTHETIC_ROTATION, 0, 0, VFOV, 8, 8)


def write_faces(scans_dir, scan, vp, faces):
    for k, path in enumerate(skybox_paths(scans_dir, scan, vp)):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(faces[k]).save(path)


def test_load_skybox_faces_round_trip_and_downscale(tmp_path):
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
    for k, path in enumerate(skybox_paths(tmp_path, "scanA", "vp1")):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(faces[k]).save(path, format="PNG")  # lossless, despite the .jpg name
    got = load_skybox_faces(tmp_path, "scanA", "vp1")
    assert got.shape == (6, 16, 16, 3) and (got == faces).all()
    small = load_skybox_faces(tmp_path, "scanA", "vp1", max_size=8)
    assert small.shape == (6, 8, 8, 3)
    np.testing.assert_allclose(small[2, 0, 0], faces[2, :2, :2].reshape(-1, 3).mean(0), atol=1)


def test_missing_face_names_the_file(tmp_path):
    faces = np.zeros((6, 8, 8, 3), np.uint8)
    write_faces(tmp_path, "scanA", "vp1", faces)
    skybox_paths(tmp_path, "scanA", "vp1")[4].unlink()
    with pytest.raises(FileNotFoundError, match="vp1_skybox4_sami.jpg"):
        load_skybox_faces(tmp_path, "scanA", "vp1")


def test_corrupt_face_names_record(tmp_path):
    write_faces(tmp_path, "scanA", "vp1", np.zeros((6, 8, 8, 3), np.uint8))
    skybox_paths(tmp_path, "scanA", "vp1")[2].write_bytes(b"not a jpeg")
    from vln.errors import DataFormatError

    with pytest.raises(DataFormatError, match="skybox2"):
        load_skybox_faces(tmp_path, "scanA", "vp1")
