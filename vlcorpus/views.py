"""Perspective views of the synthetic houses with a pixel-exact segment map of what each shows.

A viewpoint's skybox is cast once at ``face_size`` (:func:`vln.synthetic.render.render_skyboxes`
gives the colour *and* the box behind every face pixel); each view then samples it like
:func:`vln.render.render_view` (bilinear, clamp-to-edge per face) for the RGB and nearest for the
box, so the label of a pixel is the surface whose colour dominates it.

Segments are what questions and captions talk about, numbered per house (label = index + 1,
0 = nothing hit):

* ``room``: the walls, floor and ceiling of one room (class ``room:<type>``),
* ``object``: one object instance of ``House.objects`` (class ``object:<type>``, its colour),
* ``door``: the door lintels of one room, ``stairs``: the staircase (structure, never counted).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from vln.skybox import SYNTHETIC_ROTATION, direction_to_face, skybox_to_world, view_directions
from vln.synthetic.render import render_skyboxes
from vln.synthetic.vocab import CLASSES, colour_class, object_class

from .scene import HouseScene

VFOV = math.radians(60.0)  #: vertical field of view of every view (R2R's)
ELEVATION = math.radians(-15.0)  #: camera pitch: slightly down, so floor-standing objects are in view


@dataclass(frozen=True)
class Segment:
    """One labelled surface of a house (see the module docstring)."""

    label: int
    kind: str
    cls: str
    colour: str | None
    instance: int
    room: int

    def to_json(self) -> dict:
        return {"label": self.label, "kind": self.kind, "class": self.cls, "colour": self.colour,
                "instance": self.instance, "room": self.room}


def house_segments(hs: HouseScene) -> tuple[list[Segment], np.ndarray]:
    """The segments of a house and the label of every scene box.

    Returns:
        segments: rooms (one each), objects (one each), door lintels per room, stairs; ``label``
            of segment i is i + 1.
        box_label: (B + 1,) int32 label per scene box, shifted by one: ``box_label[b + 1]`` for box
            ``b``, ``box_label[0] = 0`` for a miss (so ``box_label[box + 1]`` maps a box image).
    """
    h, sc = hs.house, hs.scene
    segs: list[Segment] = []

    def add(kind, cls, colour, instance, room):
        segs.append(Segment(len(segs) + 1, kind, cls, colour, instance, room))
        return len(segs)

    room_label = {r.id: add("room", f"room:{r.type}", None, -1, r.id) for r in h.rooms}
    obj_label = {o.id: add("object", f"object:{o.type}", o.colour, o.id, o.room) for o in h.objects}
    box_label = np.zeros(len(sc.cls) + 1, dtype=np.int32)
    door_cls, stairs_cls = object_class("door"), object_class("stairs")
    room_of_box = np.full(len(sc.cls), -1)
    for r, ids in enumerate(sc.room_boxes):
        room_of_box[ids] = r
    door_label: dict[int, int] = {}
    stairs_label = None
    for b in range(len(sc.cls)):
        if sc.instance[b] >= 0:
            box_label[b + 1] = obj_label[int(sc.instance[b])]
        elif sc.cls[b] == door_cls:
            r = int(room_of_box[b])
            if r not in door_label:
                door_label[r] = add("door", "object:door", "brown", -1, r)
            box_label[b + 1] = door_label[r]
        elif sc.cls[b] == stairs_cls:
            if stairs_label is None:
                stairs_label = add("stairs", "object:stairs", "grey", -1, int(room_of_box[b]))
            box_label[b + 1] = stairs_label
        else:
            box_label[b + 1] = room_label[int(room_of_box[b])]
    return segs, box_label


def segment_class_table(segments: list[Segment]) -> tuple[np.ndarray, np.ndarray]:
    """(S + 1,) class column and (S + 1,) colour column (-1 for none) of each label (row 0: nothing)."""
    cls = np.full(len(segments) + 1, -1, dtype=np.int64)
    col = np.full(len(segments) + 1, -1, dtype=np.int64)
    index = {c: i for i, c in enumerate(CLASSES)}
    for s in segments:
        cls[s.label] = index[s.cls]
        if s.colour is not None:
            col[s.label] = colour_class(s.colour)
    return cls, col


@lru_cache(maxsize=64)
def _view_lookup(heading: float, elevation: float, height: int, width: int, face_size: int):
    """Where a view's pixels sample the skybox: bilinear taps and the nearest face pixel.

    Returns:
        taps: (4, H * W) int64 flat indices into a (6, S, S) face stack, the bilinear corners of
            :func:`vln.render.sample_faces` (clamp-to-edge per face);
        weights: (4, H * W) float32 their weights;
        nearest: (H * W,) int64 flat index of the face pixel containing each pixel centre.
    """
    world = view_directions(heading, elevation, VFOV, width, height)
    k, t, s = (a.reshape(-1) for a in direction_to_face(world @ skybox_to_world(SYNTHETIC_ROTATION)))
    row = np.minimum((t * face_size).astype(np.int64), face_size - 1)
    col = np.minimum((s * face_size).astype(np.int64), face_size - 1)
    nearest = (k * face_size + row) * face_size + col
    # the corners and weights of sample_faces, computed once per view geometry
    y = np.clip(t * face_size - 0.5, 0.0, face_size - 1)
    x = np.clip(s * face_size - 0.5, 0.0, face_size - 1)
    y0, x0 = np.floor(y).astype(np.int64), np.floor(x).astype(np.int64)
    y1, x1 = np.minimum(y0 + 1, face_size - 1), np.minimum(x0 + 1, face_size - 1)
    wy, wx = y - y0, x - x0
    base = k * face_size * face_size
    taps = np.stack([base + y0 * face_size + x0, base + y0 * face_size + x1, base + y1 * face_size + x0,
                     base + y1 * face_size + x1])
    weights = np.stack([(1 - wy) * (1 - wx), (1 - wy) * wx, wy * (1 - wx), wy * wx]).astype(np.float32)
    return taps, weights, nearest


def render_viewpoint(hs: HouseScene, index: int, headings: list[float], size: tuple[int, int], face_size: int,
                     box_label: np.ndarray, elevation: float = ELEVATION) -> list[tuple[np.ndarray, np.ndarray]]:
    """Render views of viewpoint ``hs.viewpoints[index]`` at ``headings`` (radians clockwise from +y).

    Args:
        size: (height, width) of each view in pixels.
        face_size: resolution of the skybox cast the views are sampled from.
        box_label: from :func:`house_segments`.

    Returns:
        per heading: rgb (H, W, 3) uint8 and labels (H, W) uint16 (segment label per pixel).
    """
    rgb_faces, box_faces = render_skyboxes(hs.scene, hs.positions[index][None], face_size)
    # one plane per channel: np.take on a 1-D plane is several times faster than gathering RGB rows
    planes, flat_box = rgb_faces[0].reshape(-1, 3).T.astype(np.float32), box_faces[0].reshape(-1)
    out = []
    for heading in headings:
        taps, weights, nearest = _view_lookup(round(heading, 9), round(elevation, 9), size[0], size[1], face_size)
        rgb = np.empty((taps.shape[1], 3), dtype=np.uint8)
        for c in range(3):
            v = np.take(planes[c], taps)
            v *= weights
            rgb[:, c] = np.clip(np.rint(v.sum(axis=0)), 0, 255)
        rgb = rgb.reshape(size[0], size[1], 3)
        labels = box_label[flat_box[nearest] + 1].astype(np.uint16).reshape(size)
        out.append((rgb, labels))
    return out


def label_areas(labels: np.ndarray, n_labels: int) -> np.ndarray:
    """(n_labels + 1,) int64 pixel count of each label in a label map (index 0: nothing hit)."""
    return np.bincount(labels.reshape(-1), minlength=n_labels + 1)
