"""A vectorised NumPy ray caster of synthetic houses, and the skybox faces it renders.

The scene is a set of axis-aligned boxes (wall linings, door lintels, floors, ceilings, stairs and
objects), each owned by one room. A ray is tested only against the boxes of the room it is in
(slab test, vectorised over all rays of that room and all its boxes); rays that leave the room
without hitting anything went through a doorway or the stairwell, and continue in the room they
enter. Walls run floor to ceiling, so this room-by-room walk gives exactly the nearest hit of a
brute-force test against every box while touching ~15 boxes per ray instead of hundreds.

Skybox faces follow :mod:`vln.skybox` (``face_world_directions`` with the pose rotation
``SYNTHETIC_ROTATION`` that the graphs record), the one convention the view renderer also reads.
"""
from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from ..skybox import SYNTHETIC_ROTATION, face_world_directions
from .layout import CEILING, DOOR_HEIGHT, DOOR_WIDTH, STAIR_RISE, STAIR_RUN, STAIR_STEPS, STOREY, WALL, House
from .vocab import (CLASSES, COLOURS, DOOR_COLOUR, ROOM_COLOURS, STAIRS_COLOUR, colour_class, object_class,
                    room_class)

logger = logging.getLogger(__name__)

_EPS = 1e-4
#: Brightness of a surface by the axis of its normal (x-facing, y-facing, z-facing).
_SHADE = np.array([0.82, 0.68, 1.0], dtype=np.float32)


@dataclass(frozen=True, eq=False)
class Scene:
    """The boxes of one house, grouped by room.

    Attributes:
        lo, hi: (B, 3) float64 box corners (metres).
        rgb: (B, 3) float32 base colour in [0, 255].
        cls: (B,) int64 semantic class (``room:*`` or ``object:*`` column of :data:`CLASSES`).
        colour_cls: (B,) int64 ``colour:*`` column for objects, -1 for walls/floors/ceilings.
        instance: (B,) int64 object id (``House.objects`` index), -1 for structure.
        room_lo, room_hi: (R, 3) float64 room volumes.
        room_boxes: R arrays of box indices, the boxes inside each room volume.
    """

    lo: np.ndarray
    hi: np.ndarray
    rgb: np.ndarray
    cls: np.ndarray
    colour_cls: np.ndarray
    instance: np.ndarray
    room_lo: np.ndarray
    room_hi: np.ndarray
    room_boxes: tuple


def _minus_rect(rect, hole):
    """``rect`` minus ``hole`` (both (x0, y0, x1, y1)) as up to four rectangles."""
    x0, y0, x1, y1 = rect
    hx0, hy0, hx1, hy1 = max(hole[0], x0), max(hole[1], y0), min(hole[2], x1), min(hole[3], y1)
    if hx0 >= hx1 or hy0 >= hy1:
        return [rect]
    parts = [(x0, y0, hx0, y1), (hx1, y0, x1, y1), (hx0, y0, hx1, hy0), (hx0, hy1, hx1, y1)]
    return [p for p in parts if p[2] - p[0] > 1e-6 and p[3] - p[1] > 1e-6]


def build_scene(house: House) -> Scene:
    """Turn a house into boxes: per room, wall linings with door gaps, lintels, floor, ceiling, objects."""
    boxes = []  # (room, lo, hi, rgb, cls, colour_cls, instance)

    def add(room, lo, hi, rgb, cls, ccls=-1, inst=-1):
        boxes.append((room, lo, hi, rgb, cls, ccls, inst))

    door_rgb = COLOURS[DOOR_COLOUR]
    hole = None
    if house.stairs is not None:
        s = house.stairs
        hole = (s.x0 - 0.05, s.y0, s.x1 + 0.05, s.y1)
    for r in house.rooms:
        base = np.array(ROOM_COLOURS[r.type], dtype=np.float32)
        rc = room_class(r.type)
        z0, zc = r.z0, r.z0 + CEILING
        floor_rgb, ceil_rgb = base * 0.55, base * 0.35 + 160.0
        floor_rects = [(r.x0, r.y0, r.x1, r.y1)]
        ceil_rects = [(r.x0, r.y0, r.x1, r.y1)]
        if hole is not None and r.id == house.stairs.upper_room:
            floor_rects = _minus_rect(floor_rects[0], hole)
        if hole is not None and r.id == house.stairs.lower_room:
            ceil_rects = _minus_rect(ceil_rects[0], hole)
        for x0, y0, x1, y1 in floor_rects:
            add(r.id, (x0, y0, z0), (x1, y1, z0 + 0.02), floor_rgb, rc)
        for x0, y0, x1, y1 in ceil_rects:
            add(r.id, (x0, y0, zc), (x1, y1, z0 + STOREY), ceil_rgb, rc)
        # four wall linings: (axis of the wall's normal, position, inward sign)
        for axis, pos, inward in ((0, r.x0, 1), (0, r.x1, -1), (1, r.y0, 1), (1, r.y1, -1)):
            span = (r.y0, r.y1) if axis == 0 else (r.x0, r.x1)
            gaps = sorted(d.centre for d in house.doors if r.id in (d.a, d.b) and d.axis == axis and abs(d.pos - pos) < 1e-6)
            cuts = [span[0]] + [c for g in gaps for c in (g - DOOR_WIDTH / 2, g + DOOR_WIDTH / 2)] + [span[1]]
            t0, t1 = sorted((pos, pos + inward * WALL))
            for k in range(0, len(cuts), 2):
                a, b = cuts[k], cuts[k + 1]
                lo, hi = ((t0, a, z0), (t1, b, zc)) if axis == 0 else ((a, t0, z0), (b, t1, zc))
                add(r.id, lo, hi, base, rc)
            for g in gaps:
                a, b = g - DOOR_WIDTH / 2, g + DOOR_WIDTH / 2
                lo, hi = ((t0, a, z0 + DOOR_HEIGHT), (t1, b, zc)) if axis == 0 else ((a, t0, z0 + DOOR_HEIGHT), (b, t1, zc))
                add(r.id, lo, hi, door_rgb, object_class("door"), colour_class(DOOR_COLOUR))
    if house.stairs is not None:
        s = house.stairs
        for i in range(STAIR_STEPS):
            add(s.lower_room, (s.x0, s.y0 + i * STAIR_RUN, 0.0), (s.x1, s.y0 + (i + 1) * STAIR_RUN, (i + 1) * STAIR_RISE),
                np.array(COLOURS[STAIRS_COLOUR], np.float32) * (0.85 + 0.15 * (i % 2)), object_class("stairs"),
                colour_class(STAIRS_COLOUR))
    for o in house.objects:
        add(o.room, o.lo, o.hi, COLOURS[o.colour], object_class(o.type), colour_class(o.colour), o.id)
    room_of = np.array([b[0] for b in boxes])
    return Scene(
        lo=np.array([b[1] for b in boxes], dtype=np.float64),
        hi=np.array([b[2] for b in boxes], dtype=np.float64),
        rgb=np.array([b[3] for b in boxes], dtype=np.float32),
        cls=np.array([b[4] for b in boxes], dtype=np.int64),
        colour_cls=np.array([b[5] for b in boxes], dtype=np.int64),
        instance=np.array([b[6] for b in boxes], dtype=np.int64),
        room_lo=np.array([(r.x0, r.y0, r.z0) for r in house.rooms], dtype=np.float64),
        room_hi=np.array([(r.x1, r.y1, r.z0 + STOREY) for r in house.rooms], dtype=np.float64),
        room_boxes=tuple(np.flatnonzero(room_of == r.id) for r in house.rooms),
    )


def locate(scene: Scene, points: np.ndarray) -> np.ndarray:
    """Room index containing each point ((n, 3) metres), -1 outside every room; first room wins."""
    inside = np.ones((len(points), len(scene.room_lo)), dtype=bool)
    for a in range(3):  # per axis: a reduction over a length-3 axis is slow in numpy
        inside &= (points[:, a, None] >= scene.room_lo[None, :, a] - 1e-9) & (points[:, a, None] <= scene.room_hi[None, :, a] + 1e-9)
    return np.where(inside.any(axis=1), inside.argmax(axis=1), -1)


def _slabs(origin, dirs, lo, hi):
    """Entry and exit distances of rays ``origin + t * dirs`` through boxes: two (n, m) float32 arrays.

    Works axis by axis in float32 (coordinates relative to the origin, so precision is ~1e-6 m
    over a house) because a (n, m, 3) float64 broadcast is an order of magnitude slower.
    """
    d = np.where(np.abs(dirs) < 1e-12, 1e-12, dirs)
    inv = (1.0 / d).astype(np.float32)
    lo = (np.asarray(lo) - origin).astype(np.float32)
    hi = (np.asarray(hi) - origin).astype(np.float32)
    tn = tf = None
    for a in range(3):
        t0 = np.multiply.outer(inv[:, a], lo[:, a])
        t1 = np.multiply.outer(inv[:, a], hi[:, a])
        near = np.minimum(t0, t1)
        far = np.maximum(t0, t1, out=t1)
        if tn is None:
            tn, tf = near, far
        else:
            np.maximum(tn, near, out=tn)
            np.minimum(tf, far, out=tf)
    return tn, tf


_CHUNK = 4096  # rays per slab test: keeps the (rays, boxes) temporaries in cache (about 3x faster)


def _nearest(origin: np.ndarray, dirs: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """Nearest box hit by each ray: (t (n,) float64, inf for none; k (n,) int64 box position in ``lo``)."""
    n = len(dirs)
    t_out = np.full(n, np.inf)
    k_out = np.zeros(n, dtype=np.int64)
    for s in range(0, n, _CHUNK):
        tn, tf = _slabs(origin, dirs[s:s + _CHUNK], lo, hi)
        tn[(tn > tf) | (tn <= _EPS)] = np.inf
        k = tn.argmin(axis=1)
        k_out[s:s + _CHUNK] = k
        t_out[s:s + _CHUNK] = tn[np.arange(len(k)), k]
    return t_out, k_out


def cast_brute_force(scene: Scene, origin: np.ndarray, dirs: np.ndarray):
    """Nearest hit of every ray against every box (the reference :func:`cast` must agree with)."""
    t, k = _nearest(np.asarray(origin, float), np.asarray(dirs, float), scene.lo, scene.hi)
    return t, np.where(np.isfinite(t), k, -1)


def cast(scene: Scene, origin: np.ndarray, dirs: np.ndarray, max_rooms: int = 12):
    """Cast rays from one origin, room by room.

    Args:
        scene: the house.
        origin: (3,) ray origin in metres (a camera position).
        dirs: (n, 3) ray directions (unit for ``t`` to be a distance in metres).
        max_rooms: the most rooms a ray may cross before it is reported as a miss.

    Returns:
        t: (n,) float64 distance along each ray to its first hit (inf for a miss).
        box: (n,) int64 index of the box hit, -1 for a miss.
    """
    origin = np.asarray(origin, dtype=np.float64)
    dirs = np.asarray(dirs, dtype=np.float64)
    n = len(dirs)
    t_hit = np.full(n, np.inf)
    box = np.full(n, -1, dtype=np.int64)
    room = np.full(n, int(locate(scene, origin[None])[0]))
    active = np.flatnonzero(room >= 0)
    for _ in range(max_rooms):
        if not len(active):
            break
        escaped = []
        for r in np.unique(room[active]):
            sel = active[room[active] == r]
            ids = scene.room_boxes[r]
            t, k = _nearest(origin, dirs[sel], scene.lo[ids], scene.hi[ids])
            hit = np.isfinite(t)
            t_hit[sel[hit]] = t[hit]
            box[sel[hit]] = ids[k[hit]]
            out = sel[~hit]
            if len(out):
                # Nothing in this room: the ray left through a doorway or the stairwell.
                _, t_exit = _slabs(origin, dirs[out], scene.room_lo[r:r + 1], scene.room_hi[r:r + 1])
                p = origin + (t_exit[:, 0, None] + 1e-4) * dirs[out]
                room[out] = locate(scene, p)
                escaped.append(out[room[out] >= 0])
        active = np.concatenate(escaped) if escaped else np.empty(0, dtype=np.int64)
    return t_hit, box


def shade(scene: Scene, origin: np.ndarray, dirs: np.ndarray, t: np.ndarray, box: np.ndarray) -> np.ndarray:
    """RGB (n, 3) uint8 of hit points: base colour, face orientation, a floor checker and distance fog.

    Misses are black. Works on all rays at once with ``np.take`` (faster than boolean masks).
    """
    hit = box >= 0
    b = np.where(hit, box, 0)
    th = np.where(hit, t, 0.0).astype(np.float32)
    p = th[:, None] * dirs.astype(np.float32)  # hit point relative to the origin
    lo = np.take((scene.lo - origin).astype(np.float32), b, axis=0)
    hi = np.take((scene.hi - origin).astype(np.float32), b, axis=0)
    gap = np.minimum(np.abs(p - lo), np.abs(p - hi))
    # The normal's axis is the one whose face the hit point lies on (argmin written out: numpy's
    # reductions over a length-3 axis are slow).
    axis = np.where((gap[:, 0] <= gap[:, 1]) & (gap[:, 0] <= gap[:, 2]), 0, np.where(gap[:, 1] <= gap[:, 2], 1, 2))
    gain = _SHADE[axis] / (1.0 + 0.035 * th)
    wx = p[:, 0] + np.float32(origin[0])
    wy = p[:, 1] + np.float32(origin[1])
    checker = (axis == 2) & ((np.floor(wx * 2) + np.floor(wy * 2)) % 2 == 0)
    gain *= np.where(checker, np.float32(0.88), np.float32(1.0))
    gain *= hit
    return np.clip(np.take(scene.rgb, b, axis=0) * gain[:, None] + 0.5, 0, 255).astype(np.uint8)


@lru_cache(maxsize=8)
def skybox_rays(size: int) -> np.ndarray:
    """(6 * size * size, 3) float64 world-frame unit rays of the six skybox faces, face k = 0..5."""
    faces = [face_world_directions(k, size, SYNTHETIC_ROTATION).reshape(-1, 3) for k in range(6)]
    return np.concatenate(faces)


def render_skybox(scene: Scene, origin: np.ndarray, size: int):
    """Render the six skybox faces of a camera at ``origin``.

    Returns:
        rgb: (6, size, size, 3) uint8, face k is ``<viewpoint>_skybox<k>_sami.jpg``.
        box: (6, size, size) int64 index of the box each pixel shows (-1 for none).
    """
    dirs = skybox_rays(size)
    t, box = cast(scene, origin, dirs)
    rgb = shade(scene, np.asarray(origin, float), dirs, t, box)
    return rgb.reshape(6, size, size, 3), box.reshape(6, size, size)


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of an (H, W, 3) uint8 image (deterministic for the same pixels)."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def segment_blocked(scene: Scene, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether the straight segments from ``a`` to each ``b`` ((n, 3) metres) hit any box.

    ``a`` is one (3,) point (a camera); used to decide graph edges and ``visible``.
    """
    a = np.asarray(a, float)
    v = np.asarray(b, float) - a
    length = np.linalg.norm(v, axis=1)
    t, _ = cast(scene, a, v / np.maximum(length, 1e-12)[:, None])
    return t < length - 1e-4


__all__ = ["Scene", "build_scene", "cast", "cast_brute_force", "render_skybox", "encode_jpeg", "skybox_rays",
           "segment_blocked", "locate", "CLASSES"]
