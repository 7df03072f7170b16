"""A vectorised NumPy ray caster of synthetic houses, and the skybox faces it renders.

The scene is a set of axis-aligned boxes (wall linings, door lintels, floors, ceilings, stairs and
objects), each owned by one room. A ray is tested only against the boxes of the room it is in
(slab test, vectorised over all rays of that room and all its boxes); rays that leave the room
without hitting anything went through a doorway or the stairwell, and continue in the room they
enter. Walls run floor to ceiling, so this room-by-room walk gives exactly the nearest hit of a
brute-force test against every box while touching ~15 boxes per ray instead of hundreds.

Skybox faces follow :mod:`vln.skybox` (``face_world_directions`` with the pose rotation
``SYNTHETIC_ROTATION`` that the graphs record), the one convention the view renderer also reads.
Whole skyboxes are cast by :func:`vln.synthetic.skycast.cast_skyboxes` (same hits as
:func:`cast`, several times faster: it exploits that skybox rays are axis-aligned per face);
:func:`cast` serves arbitrary rays and is the reference.
"""
from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field
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
        portal_lo, portal_hi: (P, 3) float64 openings on room boundaries (flat rectangles: a
            doorway in its wall plane, the stairwell in the plane between the floors).
        portal_rooms: (P, 2) int64 the two rooms each opening joins.
        cache: per-scene tables of :mod:`vln.synthetic.skycast` (derived data, built on demand).
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
    portal_lo: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    portal_hi: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    portal_rooms: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    cache: dict = field(default_factory=dict, repr=False)


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
    portals = []  # (lo, hi, room a, room b)
    for d in house.doors:
        z0 = house.rooms[d.a].z0
        lo, hi = [d.pos, d.centre - DOOR_WIDTH / 2, z0], [d.pos, d.centre + DOOR_WIDTH / 2, z0 + DOOR_HEIGHT]
        if d.axis == 1:
            lo[:2], hi[:2] = lo[1::-1], hi[1::-1]
        portals.append((lo, hi, d.a, d.b))
    if hole is not None:
        portals.append(((hole[0], hole[1], STOREY), (hole[2], hole[3], STOREY), house.stairs.lower_room,
                        house.stairs.upper_room))
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
        portal_lo=np.array([p[0] for p in portals], dtype=np.float64).reshape(-1, 3),
        portal_hi=np.array([p[1] for p in portals], dtype=np.float64).reshape(-1, 3),
        portal_rooms=np.array([p[2:] for p in portals], dtype=np.int64).reshape(-1, 2),
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


def shade_hits(rgb: np.ndarray, t: np.ndarray, box: np.ndarray, axis: np.ndarray, wx: np.ndarray,
               wy: np.ndarray) -> np.ndarray:
    """Colour of hit points from what was hit: base colour, face orientation, floor checker, fog.

    Args:
        rgb: (B, 3) float32 base colour of each box.
        t: (...) float32 distance to the hit (metres; anything where ``box`` is -1).
        box: (...) int box hit, -1 for a miss (black).
        axis: (...) int axis (0 x, 1 y, 2 z) of the normal of the face hit.
        wx, wy: (...) float32 world x, y of the hit point (metres; the checker of floors/ceilings).

    Returns:
        (..., 3) uint8.
    """
    hit = box >= 0
    th = np.where(hit, t, np.float32(0.0)).astype(np.float32, copy=False)
    gain = np.take(_SHADE, axis)
    gain /= np.float32(1.0) + np.float32(0.035) * th
    # checker: squares of 0.5 m; parity of floor(2x) + floor(2y) in integers (float remainder is slow)
    cell = np.floor(wx * np.float32(2.0)).astype(np.int32)
    cell += np.floor(wy * np.float32(2.0)).astype(np.int32)
    dark = (cell & 1) == 0
    dark &= axis == 2
    gain *= np.float32(1.0) - np.float32(0.12) * dark
    # channel by channel (an (n, 3) * (n, 1) broadcast is slow); box -1 reads the black row
    planes = np.vstack([np.asarray(rgb, dtype=np.float32), np.zeros((1, 3), np.float32)]).T.copy()
    out = np.empty(np.shape(box) + (3,), dtype=np.uint8)
    for c in range(3):
        ch = np.take(planes[c], box)
        ch *= gain
        ch += np.float32(0.5)
        np.minimum(ch, np.float32(255.0), out=ch)
        out[..., c] = ch
    return out


def shade(scene: Scene, origin: np.ndarray, dirs: np.ndarray, t: np.ndarray, box: np.ndarray) -> np.ndarray:
    """RGB (n, 3) uint8 of the hits of rays ``dirs`` ((n, 3) unit) from ``origin`` (see :func:`shade_hits`).

    The face hit is the one of box ``box`` nearest to the hit point. Misses are black.
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
    return shade_hits(scene.rgb, th, box, axis, p[:, 0] + np.float32(origin[0]), p[:, 1] + np.float32(origin[1]))


@lru_cache(maxsize=8)
def skybox_rays(size: int) -> np.ndarray:
    """(6 * size * size, 3) float64 world-frame unit rays of the six skybox faces, face k = 0..5."""
    faces = [face_world_directions(k, size, SYNTHETIC_ROTATION).reshape(-1, 3) for k in range(6)]
    return np.concatenate(faces)


def render_skyboxes(scene: Scene, origins: np.ndarray, size: int):
    """Render the six skybox faces of cameras at ``origins`` ((V, 3) metres).

    Returns:
        rgb: (V, 6, size, size, 3) uint8, face k is ``<viewpoint>_skybox<k>_sami.jpg``.
        box: (V, 6, size, size) int32 index of the box each pixel shows (-1 for none).
    """
    from .skycast import cast_skyboxes  # skycast builds on this module

    origins = np.asarray(origins, dtype=np.float64).reshape(-1, 3)
    t, box, axis = cast_skyboxes(scene, origins, size)
    hit = box >= 0
    th = np.where(hit, t, np.float32(0.0))
    dirs = skybox_rays(size).reshape(6, size, size, 3).astype(np.float32)
    wx = th * dirs[..., 0] + origins[:, 0, None, None, None].astype(np.float32)
    wy = th * dirs[..., 1] + origins[:, 1, None, None, None].astype(np.float32)
    return shade_hits(scene.rgb, th, box, axis, wx, wy), box


def render_skybox(scene: Scene, origin: np.ndarray, size: int):
    """Render the six skybox faces of one camera at ``origin`` ((3,) metres).

    Returns:
        rgb: (6, size, size, 3) uint8, face k is ``<viewpoint>_skybox<k>_sami.jpg``.
        box: (6, size, size) int32 index of the box each pixel shows (-1 for none).
    """
    rgb, box = render_skyboxes(scene, np.asarray(origin, dtype=np.float64)[None], size)
    return rgb[0], box[0]


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of an (H, W, 3) uint8 image (deterministic for the same pixels)."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


_RESTART = re.compile(rb"\xff[\xd0-\xd7]")  # RST0..RST7; 0xFF in entropy-coded data is stuffed as FF 00
_STACKING_WORKS = True  # cleared if this Pillow does not write the restart markers encode_jpegs asks for


def encode_jpegs(images: np.ndarray, quality: int = 90) -> list[bytes]:
    """JPEG bytes of each of ``images`` ((N, S, S, 3) uint8), the same bytes as :func:`encode_jpeg`.

    Encoding one image per call costs ~50 us of PIL overhead at 32 px; instead, when ``S`` is a
    multiple of 16 (the 4:2:0 MCU), the images are stacked into one tall image encoded with a
    restart marker after every image's MCUs, so each image's entropy-coded data is an
    independent segment. Each file is then the stack's headers (SOF0 height set to ``S``, the
    restart interval dropped) + its segment + EOI: byte for byte what encoding it alone gives.
    """
    global _STACKING_WORKS
    images = np.ascontiguousarray(images, dtype=np.uint8)
    n, h, w = images.shape[:3]
    if n == 0:
        return []
    if h != w or h % 16 or n == 1 or not _STACKING_WORKS:
        return [encode_jpeg(im, quality) for im in images]
    buf = io.BytesIO()
    Image.fromarray(images.reshape(n * h, w, 3)).save(buf, format="JPEG", quality=quality,
                                                      restart_marker_blocks=(h // 16) * (w // 16))
    data = buf.getvalue()
    head, pos = bytearray(b"\xff\xd8"), 2
    while True:  # marker segments up to and including SOS
        marker, length = data[pos + 1], int.from_bytes(data[pos + 2:pos + 4], "big")
        seg = bytearray(data[pos:pos + 2 + length])
        pos += 2 + length
        if marker == 0xC0:  # SOF0: P(1) Y(2) X(2) ...
            seg[5:7] = h.to_bytes(2, "big")
        if marker != 0xDD:  # DRI: the restart interval
            head += seg
        if marker == 0xDA:
            break
    if not data.endswith(b"\xff\xd9"):
        raise RuntimeError("PIL wrote a JPEG without EOI")
    parts = _RESTART.split(data[pos:-2])
    if len(parts) != n:  # e.g. a Pillow without restart_marker_blocks: one call per image from now on
        logger.info("stacked JPEG has %d restart segments for %d images; encoding images one by one", len(parts), n)
        _STACKING_WORKS = False
        return [encode_jpeg(im, quality) for im in images]
    head = bytes(head)
    return [head + part + b"\xff\xd9" for part in parts]


def segment_blocked(scene: Scene, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether the straight segments from ``a`` to each ``b`` ((n, 3) metres) hit any box.

    ``a`` is one (3,) point (a camera); see :func:`segments_blocked` for many segments at once.
    """
    b = np.asarray(b, float).reshape(-1, 3)
    return segments_blocked(scene, np.broadcast_to(np.asarray(a, float), b.shape), b)


_SEGMENT_CHUNK = 1024  # segments per brute-force test: (chunk, boxes) temporaries stay in cache


def segments_blocked(scene: Scene, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether each straight segment ``a[i]`` -> ``b[i]`` ((n, 3) metres each) hits a box.

    A segment is blocked when some box is entered more than 0.1 mm after ``a`` and more than
    0.1 mm before ``b`` (what :func:`cast` from ``a`` toward ``b`` finds as its first hit). Tested
    against every box at once (float64), which for the few hundred segments of a house costs
    less than walking rooms from each camera; used to decide graph edges and ``visible``.

    Returns:
        (n,) bool.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 3)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 3)
    if a.shape != b.shape:
        raise ValueError(f"segment ends must have the same shape, got {a.shape} and {b.shape}")
    v = b - a
    length = np.linalg.norm(v, axis=1)
    d = v / np.maximum(length, 1e-12)[:, None]
    d = np.where(np.abs(d) < 1e-12, 1e-12, d)
    inv = 1.0 / d
    out = np.zeros(len(a), dtype=bool)
    for s in range(0, len(a), _SEGMENT_CHUNK):
        sl = slice(s, s + _SEGMENT_CHUNK)
        tn = tf = None
        for ax in range(3):
            t0 = (scene.lo[None, :, ax] - a[sl, ax, None]) * inv[sl, ax, None]
            t1 = (scene.hi[None, :, ax] - a[sl, ax, None]) * inv[sl, ax, None]
            near, far = np.minimum(t0, t1), np.maximum(t0, t1)
            tn = near if tn is None else np.maximum(tn, near, out=tn)
            tf = far if tf is None else np.minimum(tf, far, out=tf)
        hit = (tn <= tf) & (tn > _EPS) & (tn < (length[sl] - 1e-4)[:, None])
        out[sl] = hit.any(axis=1)
    return out


__all__ = ["Scene", "build_scene", "cast", "cast_brute_force", "render_skybox", "render_skyboxes", "encode_jpeg",
           "encode_jpegs", "shade", "shade_hits", "skybox_rays",
           "segment_blocked", "segments_blocked", "locate", "CLASSES"]
