"""Geometry of Matterport skyboxes: which cube face a direction hits, and where.

Convention (the one MatterSim's OpenGL renderer applies, written out in NumPy):

* A viewpoint has six square images ``<viewpoint>_skybox<k>_sami.jpg``. MatterSim binds them to
  the OpenGL cube-map faces +X = skybox2, -X = skybox4, +Y = skybox0 (ceiling),
  -Y = skybox5 (floor), +Z = skybox1, -Z = skybox3 (NavGraph.cpp ``loadCubemapTextures``).
* Cube-map coordinates live in the *skybox frame*. The pose in the connectivity file (row-major
  4x4) holds a proper rotation ``R``: the camera-to-world rotation of a camera with x right,
  y down and z forward that faces skybox image 3. The skybox frame is *not* that camera frame:
  ``world = -R @ skybox`` (see :func:`skybox_to_world`). Why the minus: MatterSim draws the cube
  with ``ModelView = View * R`` and ``View = Rx(elevation - pi/2) * Rz(pi + heading)``, which
  looks along world ``-(sin h, cos h, 0)`` with right = world ``-(cos h, -sin h, 0)``, and
  ``glReadPixels`` returns the framebuffer bottom row first; all three axes of the stored image
  are therefore negated relative to the physical camera, i.e. a point reflection, folded here
  into the rotation. Check on the real graphs: ``-R.T @ (0, 0, 1)`` (world up) is close to
  skybox +Y (image 0, the ceiling) and ``-R @ (0, 0, -1)`` (image 3) is the camera's forward
  axis, as the connectivity README says ("the camera is facing skybox image 3").
* A direction (x, y, z) in the skybox frame selects its major axis; face coordinates follow the
  OpenGL specification (table "Selection of cube map images"): for +X (sc, tc) = (-z, -y), for -X
  (z, -y), for +Y (x, z), for -Y (x, -z), for +Z (x, -y), for -Z (-x, -y); then
  ``s = (sc / |ma| + 1) / 2`` is the column and ``t = (tc / |ma| + 1) / 2`` the row, both in [0, 1],
  row 0 being the first (top) row of the JPEG (``glTexImage2D`` uploads the first image row at
  t = 0).

``SYNTHETIC_ROTATION`` is the pose rotation the synthetic world writes, built like a real
Matterport pose: a camera at heading 0 (x right = world +x, y down = world -z, z forward =
world +y). Through :func:`skybox_to_world` skybox +Y (ceiling) is world +z and skybox -Z
(image 3) is world +y (heading 0).
"""
from __future__ import annotations

import numpy as np

#: skybox image index k for each OpenGL cube face, in the order +X, -X, +Y, -Y, +Z, -Z.
GL_FACE_TO_SKYBOX = (2, 4, 0, 5, 1, 3)
#: OpenGL cube face (0..5 = +X, -X, +Y, -Y, +Z, -Z) of each skybox image k = 0..5.
SKYBOX_TO_GL_FACE = tuple(GL_FACE_TO_SKYBOX.index(k) for k in range(6))

#: Pose rotation written by the synthetic world (a proper rotation, like real Matterport poses);
#: world = skybox_to_world(SYNTHETIC_ROTATION) @ skybox-frame direction.
SYNTHETIC_ROTATION = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

# For each GL face: (major axis, sign, sc axis, sc sign, tc axis, tc sign).
_FACE_AXES = (
    (0, +1, 2, -1, 1, -1),  # +X
    (0, -1, 2, +1, 1, -1),  # -X
    (1, +1, 0, +1, 2, +1),  # +Y
    (1, -1, 0, +1, 2, -1),  # -Y
    (2, +1, 0, +1, 1, -1),  # +Z
    (2, -1, 0, -1, 1, -1),  # -Z
)


def skybox_to_world(pose_rotation) -> np.ndarray:
    """The matrix ``M`` with ``world = M @ skybox`` for a viewpoint's pose rotation.

    Args:
        pose_rotation: (3, 3) rotation part of the row-major 4x4 ``pose`` of the connectivity
            file (or the whole (4, 4) / (16,) pose).

    Returns:
        (3, 3) float64 ``-R`` (an improper orthogonal matrix: cube maps are left-handed). Matches
        the image MatterSim's ``renderScene`` reads back; see the module docstring.
    """
    r = np.asarray(pose_rotation, dtype=np.float64)
    if r.shape == (16,):
        r = r.reshape(4, 4)
    if r.shape == (4, 4):
        r = r[:3, :3]
    if r.shape != (3, 3):
        raise ValueError(f"pose rotation must be (3, 3), (4, 4) or (16,), got {r.shape}")
    return -r


def face_world_directions(k: int, size: int, pose_rotation) -> np.ndarray:
    """World-frame unit directions through the pixel centres of skybox image ``k``.

    This is what a face renderer (the synthetic world) must paint at ``[row, col]`` so that
    :func:`vln.render.render_view` and MatterSim show it in the right place.

    Returns:
        (size, size, 3) float64.
    """
    return face_pixel_directions(k, size) @ skybox_to_world(pose_rotation).T


def skybox_filename(viewpoint_id: str, k: int) -> str:
    """File name of skybox image ``k`` (0..5) of a viewpoint, as in the Matterport release."""
    return f"{viewpoint_id}_skybox{k}_sami.jpg"


def direction_to_face(dirs: np.ndarray):
    """Map skybox-frame directions to (skybox image, row, column).

    Args:
        dirs: (..., 3) float array of directions in the skybox frame (need not be unit).

    Returns:
        skybox: (...) int, skybox image index k in 0..5.
        t: (...) float in [0, 1], row coordinate (0 = top of the image).
        s: (...) float in [0, 1], column coordinate (0 = left of the image).
    """
    dirs = np.asarray(dirs, dtype=np.float64)
    a = np.abs(dirs)
    major = np.argmax(a, axis=-1)  # ties go to the lower axis, like most GL implementations
    sign = np.take_along_axis(dirs, major[..., None], -1)[..., 0] >= 0
    gl_face = major * 2 + (~sign).astype(np.int64)
    sc = np.empty(dirs.shape[:-1])
    tc = np.empty(dirs.shape[:-1])
    ma = np.take_along_axis(a, major[..., None], -1)[..., 0]
    for f, (_, _, sa, ss, ta, ts) in enumerate(_FACE_AXES):
        m = gl_face == f
        sc[m] = ss * dirs[..., sa][m]
        tc[m] = ts * dirs[..., ta][m]
    s = (sc / ma + 1.0) / 2.0
    t = (tc / ma + 1.0) / 2.0
    skybox = np.asarray(GL_FACE_TO_SKYBOX)[gl_face]
    return skybox, t, s


def face_pixel_directions(k: int, size: int) -> np.ndarray:
    """Unit directions (skybox frame) through the pixel centres of skybox image ``k``.

    Returns:
        (size, size, 3) float64 array; ``[row, col]`` is the direction that pixel shows.
    """
    major, msign, sa, ss, ta, ts = _FACE_AXES[SKYBOX_TO_GL_FACE[k]]
    c = (np.arange(size) + 0.5) / size * 2.0 - 1.0  # pixel centres in [-1, 1]
    tc, sc = np.meshgrid(c, c, indexing="ij")
    d = np.zeros((size, size, 3))
    d[..., major] = msign
    d[..., sa] = sc * ss
    d[..., ta] = tc * ts
    return d / np.linalg.norm(d, axis=-1, keepdims=True)


def view_directions(heading: float, elevation: float, vfov: float, width: int, height: int) -> np.ndarray:
    """World-frame unit rays through the pixel centres of a perspective view.

    Heading is radians clockwise from +y (0 looks along +y, pi/2 along +x); elevation is radians,
    positive up; ``vfov`` is the vertical field of view in radians. Image row 0 is the top.

    Returns:
        (height, width, 3) float64 unit directions in the world frame (z up).
    """
    ch, sh = np.cos(heading), np.sin(heading)
    ce, se = np.cos(elevation), np.sin(elevation)
    forward = np.array([sh * ce, ch * ce, se])
    right = np.array([ch, -sh, 0.0])
    up = np.cross(right, forward)
    ty = np.tan(vfov / 2.0)
    tx = ty * width / height
    u = ((np.arange(width) + 0.5) / width * 2.0 - 1.0) * tx
    v = (1.0 - (np.arange(height) + 0.5) / height * 2.0) * ty
    d = forward[None, None, :] + u[None, :, None] * right[None, None, :] + v[:, None, None] * up[None, None, :]
    return d / np.linalg.norm(d, axis=-1, keepdims=True)
