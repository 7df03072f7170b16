"""Viewpoints and navigation edges of a synthetic house, as Matterport connectivity records.

Viewpoints are: one in every doorway, three on the staircase (foot, middle, top) and a
Poisson-disc sample (>= 1.8 m apart, so about 2 m) of the free floor of every room. Positions
are jittered by a few centimetres so that no two routes have exactly the same length (shortest
paths are then unique). Two viewpoints on the same floor are joined when they are at most
``MAX_EDGE`` apart and the straight line between them is clear of walls and objects at camera
height and at knee height; the staircase viewpoints are chained. A few extra viewpoints are
written with ``included: false`` and no edges, as in the real data.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from ..skybox import SYNTHETIC_ROTATION
from .layout import CAMERA_HEIGHT, STOREY, WALL_MOUNTED, House, stair_viewpoints
from .render import Scene, segments_blocked

logger = logging.getLogger(__name__)

MAX_EDGE = 3.5  #: longest edge on one floor (m)
MIN_SPACING = 1.8  #: Poisson-disc radius of room viewpoints (m)
CLEARANCE = 0.45  #: distance a viewpoint keeps from objects and the stairwell (m)
WALL_MARGIN = 0.55  #: distance a viewpoint keeps from walls (m)
KNEE = 0.3  #: height above the floor of the second obstacle test (m)


@dataclass
class Viewpoint:
    """A panorama location. ``kind`` is ``room``, ``door`` or ``stairs``; ``door`` holds the two rooms."""

    id: str
    pos: np.ndarray
    room: int
    floor: int
    kind: str
    included: bool = True
    door: tuple | None = None


def _new_id(rng: np.random.Generator, taken: set) -> str:
    while True:
        vid = rng.bytes(16).hex()
        if vid not in taken:
            taken.add(vid)
            return vid


def _obstacles(house: House, floor: int) -> list[tuple]:
    """Footprints (x0, y0, x1, y1) on ``floor`` that viewpoints keep clear of."""
    out = [(o.lo[0], o.lo[1], o.hi[0], o.hi[1]) for o in house.objects
           if house.rooms[o.room].floor == floor and o.type not in WALL_MOUNTED]
    if house.stairs is not None:
        s = house.stairs
        out.append((s.x0, s.y0, s.x1, s.y1))
    return out


def _candidates(house: House, room, step: float = 0.25) -> np.ndarray:
    """(n, 2) free floor points of ``room`` on a ``step`` lattice, clear of walls and obstacles."""
    xs = np.arange(room.x0 + WALL_MARGIN, room.x1 - WALL_MARGIN + 1e-9, step)
    ys = np.arange(room.y0 + WALL_MARGIN, room.y1 - WALL_MARGIN + 1e-9, step)
    pts = np.stack(np.meshgrid(xs, ys, indexing="ij"), -1).reshape(-1, 2)
    obs = np.array(_obstacles(house, room.floor), dtype=np.float64).reshape(-1, 4)
    px, py = pts[:, 0, None], pts[:, 1, None]
    dx = np.maximum(np.maximum(obs[:, 0] - px, px - obs[:, 2]), 0)
    dy = np.maximum(np.maximum(obs[:, 1] - py, py - obs[:, 3]), 0)
    return pts[(np.hypot(dx, dy) > CLEARANCE).all(axis=1)]


def place_viewpoints(rng: np.random.Generator, house: House, n_excluded: int = 2) -> list[Viewpoint] | None:
    """Doorway, staircase and room viewpoints (plus ``n_excluded`` excluded ones); None if a room has no room."""
    taken: set = set()
    vps: list[Viewpoint] = []
    if house.stairs is not None:
        s = house.stairs
        for k, (x, y, z) in enumerate(stair_viewpoints(s)):
            room = s.upper_room if k == 2 else s.lower_room
            vps.append(Viewpoint(_new_id(rng, taken), np.array([x, y, z]), room, 1 if k == 2 else 0, "stairs"))
    for d in house.doors:
        x, y = d.xy
        jitter = rng.uniform(-0.04, 0.04, 2)
        vps.append(Viewpoint(_new_id(rng, taken), np.array([x + jitter[0], y + jitter[1], d.floor * STOREY + CAMERA_HEIGHT]),
                             d.a, d.floor, "door", door=(d.a, d.b)))
    left_pts, left_room = [], []  # every room's candidates, in drawing order
    for room in house.rooms:
        cand = _candidates(house, room)
        if not len(cand):
            return None
        cand = cand[rng.permutation(len(cand))] + rng.uniform(-0.05, 0.05, (len(cand), 2))
        placed = np.array([v.pos[:2] for v in vps if v.floor == room.floor]).reshape(-1, 2)
        # Greedy Poisson disc: take candidates in order, each at least MIN_SPACING from all placed
        # ones; a placement rules out its whole neighbourhood at once instead of testing later
        # candidates one by one.
        free = ~(np.hypot(cand[None, :, 0] - placed[:, None, 0], cand[None, :, 1] - placed[:, None, 1])
                 < MIN_SPACING).any(axis=0)
        mine = 0
        k = 0
        while True:
            nxt = np.flatnonzero(free[k:])
            if not len(nxt):
                break
            k += int(nxt[0])
            p = cand[k]
            vps.append(Viewpoint(_new_id(rng, taken), np.array([p[0], p[1], room.z0 + CAMERA_HEIGHT]), room.id, room.floor, "room"))
            placed = np.vstack([placed, p])
            free &= ~(np.hypot(*(cand - p).T) < MIN_SPACING)
            mine += 1
        if mine == 0:  # a small room squeezed by doorway viewpoints still gets its own panorama
            dist = np.min(np.hypot(*(placed[None] - cand[:, None]).transpose(2, 0, 1)), axis=1)
            p = cand[int(np.argmax(dist))]
            vps.append(Viewpoint(_new_id(rng, taken), np.array([p[0], p[1], room.z0 + CAMERA_HEIGHT]), room.id, room.floor, "room"))
        left_pts.append(cand)
        left_room += [room.id] * len(cand)
    left_pts = np.concatenate(left_pts)
    # Excluded viewpoints: the first leftovers, in a random order, more than 0.9 m from every
    # viewpoint of their floor (those placed here included).
    order = rng.permutation(len(left_room))
    left_floor = np.array([house.rooms[r].floor for r in left_room])
    vp_xy = np.array([v.pos[:2] for v in vps])
    vp_floor = np.array([v.floor for v in vps])
    clearance = np.full(len(left_room), np.inf)
    for f in np.unique(left_floor):
        sel = left_floor == f
        q, pts = vp_xy[vp_floor == f], left_pts[sel]
        clearance[sel] = np.hypot(q[:, None, 0] - pts[None, :, 0], q[:, None, 1] - pts[None, :, 1]).min(axis=0)
    at = 0
    while n_excluded > 0:
        ok = np.flatnonzero(clearance[order[at:]] > 0.9)
        if not len(ok):
            break
        at += int(ok[0])
        k = order[at]
        room, p = house.rooms[left_room[k]], left_pts[k]
        vps.append(Viewpoint(_new_id(rng, taken), np.array([p[0], p[1], room.z0 + CAMERA_HEIGHT]), room.id, room.floor,
                             "room", included=False))
        n_excluded -= 1
        sel = left_floor == room.floor
        clearance[sel] = np.minimum(clearance[sel], np.hypot(*(p - left_pts[sel]).T))
        at += 1
    for v in vps:
        v.pos = np.round(v.pos, 4)
    return vps


def connect(scene: Scene, vps: list[Viewpoint]) -> tuple[np.ndarray, np.ndarray]:
    """Navigability and line of sight between viewpoints.

    Returns:
        unobstructed: (N, N) bool, symmetric; edges between included viewpoints only.
        visible: (N, N) bool, symmetric; clear line of sight at camera height on one floor.
    """
    n = len(vps)
    pos = np.array([v.pos for v in vps])
    level = np.array([v.floor if v.kind != "stairs" or v.pos[2] - v.floor * STOREY < CAMERA_HEIGHT + 0.01 else -1 for v in vps])
    included = np.array([v.included for v in vps])
    unob = np.zeros((n, n), dtype=bool)
    vis = np.zeros((n, n), dtype=bool)
    knee = np.array([0.0, 0.0, KNEE - CAMERA_HEIGHT])
    i, j = np.triu_indices(n, 1)
    same = (level[i] == level[j]) & (level[i] >= 0)
    i, j = i[same], j[same]
    clear = ~segments_blocked(scene, pos[i], pos[j])
    vis[i[clear], j[clear]] = True
    near = np.hypot(*(pos[j, :2] - pos[i, :2]).T) <= MAX_EDGE
    cand = clear & near & included[i] & included[j]
    i, j = i[cand], j[cand]
    walkable = ~segments_blocked(scene, pos[i] + knee, pos[j] + knee)
    unob[i[walkable], j[walkable]] = True
    stairs = [i for i, v in enumerate(vps) if v.kind == "stairs"]
    for a, b in zip(stairs, stairs[1:]):
        unob[a, b] = vis[a, b] = True
    unob |= unob.T
    vis |= vis.T
    return unob, vis


def is_connected(vps: list[Viewpoint], unob: np.ndarray) -> bool:
    """Whether the included viewpoints form one connected component."""
    inc = np.flatnonzero([v.included for v in vps])
    n_comp, _ = connected_components(csr_matrix(unob[np.ix_(inc, inc)]), directed=False)
    return n_comp == 1


def connectivity_records(vps: list[Viewpoint], unob: np.ndarray, vis: np.ndarray) -> list[dict]:
    """The JSON records of ``<scan>_connectivity.json`` (pose: row-major 4x4 camera-to-world)."""
    out = []
    for i, v in enumerate(vps):
        pose = np.eye(4)
        pose[:3, :3] = SYNTHETIC_ROTATION
        pose[:3, 3] = v.pos
        out.append({
            "image_id": v.id,
            "pose": [float(x) for x in pose.reshape(-1)],
            "included": bool(v.included),
            "visible": [bool(x) for x in vis[i]],
            "unobstructed": [bool(x) for x in unob[i]],
            "height": CAMERA_HEIGHT,
        })
    return out
