"""The synthetic world's houses rebuilt from its own ground-truth files (no random draws).

``semantics/layout.json`` records every room, door, staircase and object of a house; the
renderer's :func:`vln.synthetic.render.build_scene` turns that :class:`~vln.synthetic.layout.House`
back into the exact boxes the generator rendered, and the connectivity graph gives the camera
positions. A test checks the rebuilt scene renders the world's own skybox files byte for byte.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vln.connectivity import connectivity_path, read_connectivity
from vln.errors import DataFormatError
from vln.synthetic.layout import Door, House, Obj, Room, Stairs
from vln.synthetic.render import Scene, build_scene
from vln.synthetic.semantics import SEMANTICS_DIR, read_layout, read_viewpoint_rooms


@dataclass(frozen=True, eq=False)
class HouseScene:
    """One house: its layout, renderable scene and camera positions.

    Attributes:
        scan: scan id.
        house: the rebuilt layout (rooms, doors, stairs, objects; metres).
        scene: the boxes the renderer casts rays against.
        viewpoints: included viewpoint ids in connectivity-file order.
        positions: (V, 3) float64 camera positions (metres) of ``viewpoints``.
        rooms: viewpoint id -> {room, room_type, floor, kind} (``viewpoint_rooms.json``).
    """

    scan: str
    house: House
    scene: Scene
    viewpoints: list
    positions: np.ndarray
    rooms: dict


def _door(path: Path, scan: str, k: int, rec: dict, rooms: list[Room]) -> Door:
    """A door from its layout record: the wall axis is the one on which the two rooms touch at ``xy``."""
    a, b = rec["rooms"]
    ra, rb = rooms[a], rooms[b]
    x, y = rec["xy"]
    if x in {ra.x0, ra.x1} & {rb.x0, rb.x1}:
        return Door(a, b, rec["floor"], 0, x, y)
    if y in {ra.y0, ra.y1} & {rb.y0, rb.y1}:
        return Door(a, b, rec["floor"], 1, y, x)
    raise DataFormatError(path, f"{scan} door {k}", "xy", f"{rec['xy']} is not on a wall shared by rooms {a} and {b}")


def house_from_layout(path: Path, scan: str, rec: dict) -> House:
    """Rebuild a :class:`House` from its ``layout.json`` record (``path`` names the file in errors)."""
    try:
        rooms = [Room(r["id"], r["type"], r["floor"], r["box"][0], r["box"][1], r["box"][3], r["box"][4])
                 for r in rec["rooms"]]
        objects = [Obj(o["id"], o["type"], o["colour"], o["room"], tuple(o["lo"]), tuple(o["hi"])) for o in rec["objects"]]
        stairs = None
        if rec["stairs"] is not None:
            s = rec["stairs"]
            (x0, y0, x1, y1), (lower, upper) = s["footprint"], s["rooms"]
            stairs = Stairs(lower, upper, x0, x1, y0, y1)
        doors = [_door(path, scan, k, d, rooms) for k, d in enumerate(rec["doors"])]
        width, depth = rec["size"]
        return House(scan, rec["floors"], width, depth, rooms, doors, objects, stairs)
    except (KeyError, TypeError, IndexError, ValueError) as e:
        if isinstance(e, DataFormatError):
            raise
        raise DataFormatError(path, scan, None, f"is not a synthetic house layout ({type(e).__name__}: {e})") from None


def load_houses(world_dir: str | os.PathLike, scans: list[str]) -> dict[str, HouseScene]:
    """Rebuild the houses ``scans`` of a synthetic world (``<world>/semantics`` + ``<world>/connectivity``)."""
    world = Path(world_dir)
    layouts = read_layout(world)
    vp_rooms = read_viewpoint_rooms(world)
    out = {}
    for scan in scans:
        if scan not in layouts:
            raise DataFormatError(world / SEMANTICS_DIR / "layout.json", scan, None, "has no layout for this scan")
        house = house_from_layout(world / SEMANTICS_DIR / "layout.json", scan, layouts[scan])
        recs = read_connectivity(connectivity_path(world / "connectivity", scan), scan)
        keep = np.flatnonzero(recs.included)
        poses = recs.poses[keep].reshape(-1, 4, 4)
        ids = [recs.viewpoint_ids[i] for i in keep]
        out[scan] = HouseScene(scan, house, build_scene(house), ids, poses[:, :3, 3].astype(np.float64),
                               vp_rooms.get(scan, {}))
    return out
