"""Synthetic houses: floors, rooms, doors, stairs and objects (pure geometry, no rendering).

A house is a rectangular footprint split into axis-aligned rectangular rooms (binary space
partition). Two-floor houses get a stair hall: a strip of the footprint, the same on both floors,
holding a straight staircase and a hole in the upper floor above it. Rooms that share a long
enough wall are joined by doors (a random spanning tree plus a few extra doors), and objects
typical of each room type stand against the walls.

Units are metres, world z is up; floor ``f`` lies at ``z = f * STOREY``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from .vocab import COLOUR_NAMES, OBJECT_SIZES, ROOM_OBJECTS, ROOM_TYPES, WALL_MOUNTED

logger = logging.getLogger(__name__)

STOREY = 3.0  #: floor-to-floor height (m)
CEILING = 2.8  #: floor-to-ceiling height (m); the 0.2 m above is the slab of the next floor
WALL = 0.06  #: thickness of the wall lining on each side of a room boundary (m)
DOOR_WIDTH = 1.0
DOOR_HEIGHT = 2.1
CAMERA_HEIGHT = 1.5  #: camera above the floor (m), written as ``height`` in the graphs
MIN_ROOM_SIDE = 2.6
MIN_DOOR_OVERLAP = 1.6  #: shortest shared wall that gets a door (m)
HALL_WIDTH = 2.6  #: width of the stair hall strip of two-floor houses (m)
STAIR_RUN, STAIR_RISE, STAIR_STEPS, STAIR_WIDTH = 0.3, 0.25, 12, 1.0


@dataclass
class Room:
    """An axis-aligned room; its volume is ``[x0, x1] x [y0, y1] x [floor*STOREY, (floor+1)*STOREY]``."""

    id: int
    type: str
    floor: int
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def z0(self) -> float:
        return self.floor * STOREY

    def contains_xy(self, x: float, y: float, margin: float = 0.0) -> bool:
        return self.x0 + margin <= x <= self.x1 - margin and self.y0 + margin <= y <= self.y1 - margin


@dataclass
class Door:
    """A doorway between rooms ``a`` and ``b`` in a wall at ``x = pos`` (axis 0) or ``y = pos`` (axis 1).

    ``centre`` is the coordinate of the gap centre along the wall.
    """

    a: int
    b: int
    floor: int
    axis: int
    pos: float
    centre: float

    @property
    def xy(self) -> tuple[float, float]:
        return (self.pos, self.centre) if self.axis == 0 else (self.centre, self.pos)


@dataclass
class Obj:
    """A solid object: an axis-aligned box ``lo``..``hi`` (metres) of one type and colour."""

    id: int
    type: str
    colour: str
    room: int
    lo: tuple
    hi: tuple


@dataclass
class Stairs:
    """A straight staircase in the stair hall, climbing along +y from floor 0 to floor 1.

    ``x0..x1`` and ``y0..y1`` are its footprint; the upper floor has a hole over it.
    """

    lower_room: int
    upper_room: int
    x0: float
    x1: float
    y0: float
    y1: float


@dataclass
class House:
    """One synthetic building (a scan)."""

    scan_id: str
    floors: int
    width: float
    depth: float
    rooms: list = field(default_factory=list)
    doors: list = field(default_factory=list)
    objects: list = field(default_factory=list)
    stairs: Stairs | None = None


def _bsp(rng: np.random.Generator, rect, n: int) -> list[tuple]:
    """Split ``rect`` (x0, y0, x1, y1) into up to ``n`` rectangles, largest first."""
    rects = [rect]
    while len(rects) < n:
        order = sorted(range(len(rects)), key=lambda i: -(rects[i][2] - rects[i][0]) * (rects[i][3] - rects[i][1]))
        for i in order:
            x0, y0, x1, y1 = rects[i]
            w, d = x1 - x0, y1 - y0
            axis = 0 if w >= d else 1
            length = w if axis == 0 else d
            if length < 2 * MIN_ROOM_SIDE:
                axis = 1 - axis
                length = d if axis == 1 else w
                if length < 2 * MIN_ROOM_SIDE:
                    continue
            lo = max(0.35, MIN_ROOM_SIDE / length)
            cut = round(float(rng.uniform(lo, 1.0 - lo)) * length, 2)
            if axis == 0:
                rects[i:i + 1] = [(x0, y0, x0 + cut, y1), (x0 + cut, y0, x1, y1)]
            else:
                rects[i:i + 1] = [(x0, y0, x1, y0 + cut), (x0, y0 + cut, x1, y1)]
            break
        else:
            break
    return rects


def _adjacent(a: Room, b: Room):
    """(axis, wall position, overlap start, overlap end) of the wall ``a`` and ``b`` share, or None."""
    if a.floor != b.floor:
        return None
    for axis, (a_hi, b_lo, a_lo, b_hi) in enumerate(((a.x1, b.x0, a.x0, b.x1), (a.y1, b.y0, a.y0, b.y1))):
        if abs(a_hi - b_lo) < 1e-6 or abs(b_hi - a_lo) < 1e-6:
            pos = a_hi if abs(a_hi - b_lo) < 1e-6 else a_lo
            s0, s1 = (max(a.y0, b.y0), min(a.y1, b.y1)) if axis == 0 else (max(a.x0, b.x0), min(a.x1, b.x1))
            if s1 - s0 >= MIN_DOOR_OVERLAP:
                return axis, pos, s0, s1
    return None


def _place_doors(rng: np.random.Generator, rooms: list[Room]) -> list[Door]:
    """A random spanning tree of the room-adjacency graph of each floor, plus ~25% extra doors."""
    pairs = [(a, b, w) for i, a in enumerate(rooms) for b in rooms[i + 1:] if (w := _adjacent(a, b))]
    order = rng.permutation(len(pairs))
    parent = list(range(len(rooms)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    doors = []
    for k in order:
        a, b, (axis, pos, s0, s1) = pairs[k]
        ra, rb = find(a.id), find(b.id)
        extra = rng.random() < 0.25
        if ra != rb or extra:
            parent[ra] = rb
            centre = round(float(rng.uniform(s0 + 0.7, s1 - 0.7)), 3)
            doors.append(Door(a.id, b.id, a.floor, axis, pos, centre))
    return sorted(doors, key=lambda d: (d.a, d.b))


def _room_types(rng: np.random.Generator, n: int) -> list[str]:
    """Mostly distinct room types (a permutation), repeating only when there are more rooms than types."""
    types = [t for t in ROOM_TYPES if t != "hallway"]
    out = [types[i] for i in rng.permutation(len(types))]
    while len(out) < n:
        out.append(types[int(rng.integers(len(types)))])
    return out[:n]


def _free(rect, blockers, gap: float) -> bool:
    x0, y0, x1, y1 = rect
    return all(x1 + gap <= b[0] or b[2] + gap <= x0 or y1 + gap <= b[1] or b[3] + gap <= y0 for b in blockers)


def _place_objects(rng: np.random.Generator, house: House, keep_clear: list[list]) -> None:
    """Objects against the walls of each room, clear of doorways, stairs and each other."""
    for room in house.rooms:
        names = ROOM_OBJECTS[room.type]
        k = min(len(names), int(rng.integers(2, 5)))
        blockers = list(keep_clear[room.floor])
        for name in (names[i] for i in rng.permutation(len(names))[:k]):
            w, d, h = (s * float(rng.uniform(0.9, 1.1)) for s in OBJECT_SIZES[name])
            colour = COLOUR_NAMES[int(rng.integers(len(COLOUR_NAMES)))]
            for _ in range(20):
                side = int(rng.integers(4))  # 0: x0 wall, 1: x1 wall, 2: y0 wall, 3: y1 wall
                along = (room.y0, room.y1) if side < 2 else (room.x0, room.x1)
                if along[1] - along[0] < w + 2 * WALL + 0.1:
                    continue
                c = float(rng.uniform(along[0] + WALL + w / 2, along[1] - WALL - w / 2))
                if side == 0:
                    rect = (room.x0 + WALL, c - w / 2, room.x0 + WALL + d, c + w / 2)
                elif side == 1:
                    rect = (room.x1 - WALL - d, c - w / 2, room.x1 - WALL, c + w / 2)
                elif side == 2:
                    rect = (c - w / 2, room.y0 + WALL, c + w / 2, room.y0 + WALL + d)
                else:
                    rect = (c - w / 2, room.y1 - WALL - d, c + w / 2, room.y1 - WALL)
                if rect[2] - rect[0] > room.x1 - room.x0 - 1.2 or rect[3] - rect[1] > room.y1 - room.y0 - 1.2:
                    continue  # leave a walkable strip across the room
                if not _free(rect, blockers, 0.1):
                    continue
                z0 = room.z0 + WALL_MOUNTED.get(name, 0.0)
                rect = tuple(round(v, 3) for v in rect)
                house.objects.append(Obj(len(house.objects), name, colour, room.id,
                                         (rect[0], rect[1], round(z0, 3)), (rect[2], rect[3], round(z0 + h, 3))))
                blockers.append(rect)
                break


def door_clearance(door: Door, depth: float = 1.2) -> list:
    """Footprint (x0, y0, x1, y1) in front of and behind a doorway that must stay walkable."""
    half = DOOR_WIDTH / 2 + 0.2
    if door.axis == 0:
        return [door.pos - depth, door.centre - half, door.pos + depth, door.centre + half]
    return [door.centre - half, door.pos - depth, door.centre + half, door.pos + depth]


def stair_viewpoints(stairs: Stairs) -> list[tuple[float, float, float]]:
    """Camera positions at the foot, the middle and the top of the staircase (metres)."""
    x = (stairs.x0 + stairs.x1) / 2
    mid_step = STAIR_STEPS // 2
    mid_y = stairs.y0 + (mid_step + 0.5) * STAIR_RUN
    return [
        (x, stairs.y0 - 0.75, CAMERA_HEIGHT),
        (x, mid_y, (mid_step + 1) * STAIR_RISE + CAMERA_HEIGHT),
        (x, stairs.y1 + 0.75, STOREY + CAMERA_HEIGHT),
    ]


def make_house(rng: np.random.Generator, scan_id: str) -> House:
    """Draw one house: 1 or 2 floors, 5-12 rooms, doors, stairs and objects."""
    two_floors = rng.random() < 0.4
    rooms: list[Room] = []
    if not two_floors:
        n = int(rng.integers(5, 10))
        area = n * float(rng.uniform(11.0, 17.0))
        aspect = float(rng.uniform(1.0, 1.5))
        width = round(float(np.sqrt(area * aspect)), 2)
        depth = round(area / width, 2)
        rects = [(0, r) for r in _bsp(rng, (0.0, 0.0, width, depth), n)]
        house = House(scan_id, 1, width, depth)
    else:
        per_floor = [int(rng.integers(3, 6)), int(rng.integers(3, 6))]
        depth = round(float(rng.uniform(6.8, 9.0)), 2)
        width = round(HALL_WIDTH + max(per_floor) * float(rng.uniform(11.0, 16.0)) / depth, 2)
        rects = [(0, (0.0, 0.0, HALL_WIDTH, depth))] + [(1, (0.0, 0.0, HALL_WIDTH, depth))]
        for f in (0, 1):
            rects += [(f, r) for r in _bsp(rng, (HALL_WIDTH, 0.0, width, depth), per_floor[f])]
        house = House(scan_id, 2, width, depth)
    types = _room_types(rng, len(rects))
    for i, (f, (x0, y0, x1, y1)) in enumerate(rects):
        rtype = "hallway" if two_floors and i < 2 else types[i]
        rooms.append(Room(i, rtype, f, x0, y0, x1, y1))
    house.rooms = rooms
    house.doors = _place_doors(rng, rooms)
    keep_clear = [[door_clearance(d) for d in house.doors if d.floor == f] for f in range(house.floors)]
    if two_floors:
        y0 = round(float(rng.uniform(1.4, depth - STAIR_STEPS * STAIR_RUN - 1.4)), 3)
        x0 = 0.15
        house.stairs = Stairs(0, 1, x0, x0 + STAIR_WIDTH, y0, round(y0 + STAIR_STEPS * STAIR_RUN, 3))
        s = house.stairs
        for f in (0, 1):  # the staircase, the hole above it and the landings stay clear
            keep_clear[f].append([s.x0 - 0.1, s.y0 - 1.4, s.x1 + 0.5, s.y1 + 1.4])
    _place_objects(rng, house, keep_clear)
    logger.debug("house %s: %d floors, %d rooms, %d doors, %d objects", scan_id, house.floors,
                 len(house.rooms), len(house.doors), len(house.objects))
    return house
