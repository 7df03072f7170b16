"""What a rendered view shows, read from its segment map: the only source of every question and caption.

An object is *visible* when it covers at least ``MIN_AREA`` of the image, *absent* when it covers
no pixel at all; an object in between is too small to ask about, so its type is *ambiguous* in
that view and no question, caption or hypothesis mentions it (that margin is what keeps every
statement true of the pixels, not only of the geometry).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .views import Segment

MIN_AREA = 0.004  #: share of the image an object must cover to count as visible (0.4%: 307 px at 320 x 240)
MIN_ROOM_AREA = 0.25  #: share of the image the camera's room must cover for "what room is this?"
SIDE_MARGIN = 0.1  #: an object is on one side when its box lies in that 50% - margin of the image


@dataclass(frozen=True)
class VisibleObject:
    """One object instance in view (pixels; box is x0, y0, x1, y1 inclusive-exclusive)."""

    instance: int
    type: str
    colour: str
    room: int
    pixels: int
    box: tuple
    side: str | None = None  #: ``left`` / ``right`` when the whole object lies on that side of the centre (with a margin)


@dataclass
class ViewFacts:
    """Facts of one view.

    Attributes:
        objects: visible object instances, largest first.
        ambiguous: object types with an instance covering some pixels but less than ``MIN_AREA``.
        present_types: every object type covering at least one pixel.
        room_type: the camera's room type when it dominates the view, else None.
        room: the camera's room id.
        hidden: objects of the house covering no pixel of this view (for neutral hypotheses).
    """

    objects: list
    ambiguous: set
    present_types: set
    room_type: str | None
    room: int
    hidden: list = field(default_factory=list)

    def types(self) -> list[str]:
        """Visible types that are not ambiguous, sorted."""
        return sorted({o.type for o in self.objects} - self.ambiguous)

    def of_type(self, t: str) -> list[VisibleObject]:
        return [o for o in self.objects if o.type == t]

    def count(self, t: str) -> int | None:
        """Instances of type ``t`` in view; None when some instance is too small to decide."""
        return None if t in self.ambiguous else len(self.of_type(t))

    def colour_of(self, t: str) -> str | None:
        """The colour shared by every visible ``t``, None when none is visible, ambiguous or colours differ."""
        cols = {o.colour for o in self.of_type(t)}
        return next(iter(cols)) if len(cols) == 1 and t not in self.ambiguous else None


def view_facts(labels: np.ndarray, segments: list[Segment], house_objects: list, camera_room: int,
               room_types: dict) -> ViewFacts:
    """Facts of a view from its (H, W) segment label map.

    Args:
        segments: the house's segments (``label = index + 1``).
        house_objects: ``House.objects`` (for the hidden ones).
        camera_room: room id the camera stands in; room_types: room id -> type.
    """
    h, w = labels.shape
    n = h * w
    areas = np.bincount(labels.reshape(-1), minlength=len(segments) + 1)
    objects, ambiguous, present = [], set(), set()
    for s in segments:
        if s.kind != "object" or areas[s.label] == 0:
            continue
        t = s.cls.split(":", 1)[1]
        present.add(t)
        if areas[s.label] < MIN_AREA * n:
            ambiguous.add(t)
            continue
        ys, xs = np.nonzero(labels == s.label)
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        side = "left" if box[2] <= w * (0.5 - SIDE_MARGIN) else "right" if box[0] >= w * (0.5 + SIDE_MARGIN) else None
        objects.append(VisibleObject(s.instance, t, s.colour, s.room, int(areas[s.label]), box, side))
    objects.sort(key=lambda o: (-o.pixels, o.instance))
    room_areas = {s.room: int(areas[s.label]) for s in segments if s.kind == "room"}
    dominant = max(room_areas, key=lambda r: (room_areas[r], -r))
    room_type = None
    if dominant == camera_room and room_areas[camera_room] >= MIN_ROOM_AREA * n:
        room_type = room_types[camera_room]
    seen = {s.instance for s in segments if s.kind == "object" and areas[s.label] > 0}
    hidden = [o for o in house_objects if o.id not in seen]
    return ViewFacts(objects, ambiguous, present, room_type, camera_room, hidden)
