"""Grounded route instructions: plan what a path passes, then word it in en / hi / te.

A :class:`RoutePlan` is computed from the geometry alone: turns relative to the heading the agent
faces in the simulator before each move (:func:`simulator_facing`: the episode heading snapped
to its 30 degree view at the start, then the heading of the view in which the agent saw the
viewpoint it moved to, since EnvDrop turns to a candidate's view before moving and MatterSim
keeps that heading), rooms left, entered and crossed (room types of the path's viewpoints, and
the room between two consecutive doorways), the stairs, the most visible object of every room
crossed (objects seen from a path viewpoint in that room) and the object nearest to the goal in
the goal room. Every object and room named is therefore on or beside the path. The plan is then worded
with :data:`vln.synthetic.languages.TEMPLATES`, drawing one of several wordings per clause.

Example: "Exit the bedroom and turn left. Walk past the blue sofa and enter the kitchen. Stop
next to the white fridge in the kitchen."
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .languages import COLOUR_WORDS, OBJECT_WORDS, ROOM_WORDS, TEMPLATES
from .layout import House

#: Least fraction of a panorama's view rays an object must cover to be named from that viewpoint.
MIN_VISIBLE = 0.003


@dataclass
class RoutePlan:
    """The language-independent content of an instruction.

    Attributes:
        clauses: ordered tuples: ``("turn", "left"|"right"|"around"|"slight_left"|"slight_right")``,
            ``("forward",)``, ``("exit"|"enter"|"through", room_type)``, ``("pass", colour, object)``,
            ``("up",)``, ``("down",)``; the last is ``("stop", room_type, colour|None, object|None)``.
        rooms: ids of the rooms named (all on the path).
        objects: ids (``House.objects`` indices) of the objects named (all visible from the path).
    """

    clauses: list = field(default_factory=list)
    rooms: set = field(default_factory=set)
    objects: set = field(default_factory=set)


def heading_of(delta: np.ndarray) -> float:
    """Heading (radians clockwise from +y) of a displacement (dx, dy, ...)."""
    return math.atan2(float(delta[0]), float(delta[1]))


def turn_kind(delta: float) -> str | None:
    """Word class of a heading change in radians (positive = to the right), None if straight on."""
    d = math.degrees(math.remainder(delta, 2 * math.pi))
    a = abs(d)
    if a < 30:
        return None
    if a < 60:
        return "slight_right" if d > 0 else "slight_left"
    if a < 140:
        return "right" if d > 0 else "left"
    return "around"


def _box_distance(p: np.ndarray, obj) -> float:
    dx = max(obj.lo[0] - p[0], 0.0, p[0] - obj.hi[0])
    dy = max(obj.lo[1] - p[1], 0.0, p[1] - obj.hi[1])
    return math.hypot(dx, dy)


def simulator_facing(graph, path: list[int], heading: float) -> list[float]:
    """Headings (radians) the agent faces at each viewpoint of ``path`` before moving on.

    What the agent's angle features are relative to: at the start the episode ``heading`` snapped
    to its 30 degree view (MatterSim's discretised views), after a move the heading of the view
    in which the viewpoint moved to was seen (its EnvDrop ``pointId``).

    Args:
        graph: the scan's :class:`vln.graph.ScanGraph`.
        path: viewpoint indices, start to goal.
        heading: the R2R episode heading in radians.

    Returns:
        ``len(path) - 1`` headings.
    """
    from ..candidates import candidate_table
    from ..sim.geometry import HEADING_COUNT, HEADING_INCREMENT, snap_heading

    table = candidate_table(graph)
    facing = [snap_heading(heading)[1]]
    for a, b in zip(path[:-2], path[1:-1]):
        rows = table.rows(a)
        hit = np.flatnonzero(table.viewpoint[rows] == b)
        if not len(hit):
            raise ValueError(f"scan {graph.scan_id}: {graph.viewpoint_ids[b]} is not a candidate of {graph.viewpoint_ids[a]}")
        facing.append(float(int(table.point_id[rows][hit[0]]) % HEADING_COUNT) * HEADING_INCREMENT)
    return facing


def plan_route(house: House, path_vps: list, facing, visibility: np.ndarray) -> RoutePlan:
    """Describe a path through ``house``.

    Args:
        house: the layout the path is in.
        path_vps: the path's :class:`~vln.synthetic.navgraph.Viewpoint` objects, start to goal.
        facing: ``len(path_vps) - 1`` headings in radians that the agent faces at each viewpoint
            before moving on (:func:`simulator_facing`); turns are the heading changes from them.
        visibility: (len(path_vps), len(house.objects)) fraction of each viewpoint's panorama
            covering each object (:func:`vln.synthetic.semantics.instance_fractions`).

    Returns:
        the :class:`RoutePlan`.
    """
    plan = RoutePlan()
    pos = np.array([v.pos for v in path_vps])
    n = len(path_vps)
    rooms = [None if v.kind == "door" else v.room for v in path_vps]
    rooms[0] = path_vps[0].room if rooms[0] is None else rooms[0]
    rooms[-1] = path_vps[-1].room if rooms[-1] is None else rooms[-1]
    goal_room = rooms[-1]
    rtype = lambda r: house.rooms[r].type  # noqa: E731

    # The goal landmark: the nearest object of the goal room that the goal panorama shows.
    landmark = None
    seen = [o for o in house.objects if o.room == goal_room and visibility[-1, o.id] >= MIN_VISIBLE]
    if seen:
        landmark = min(seen, key=lambda o: (_box_distance(pos[-1], o), o.id))

    events = []  # (time along the path, clause); vp k at time k, edge k -> k+1 at k + 0.5
    moves = [heading_of(pos[k + 1] - pos[k]) for k in range(n - 1)]
    if len(facing) != n - 1:
        raise ValueError(f"facing has {len(facing)} headings for a path of {n - 1} moves")
    for k, h in enumerate(moves):
        kind = turn_kind(h - facing[k])
        if kind:
            events.append((k, ("turn", kind)))
        elif k == 0:
            events.append((0, ("forward",)))
        a, b = path_vps[k], path_vps[k + 1]
        if a.kind == "stairs" and b.kind == "stairs" and abs(b.pos[2] - a.pos[2]) > 0.5:
            clause = ("up",) if b.pos[2] > a.pos[2] else ("down",)
            if not events or events[-1][1] != clause:
                events.append((k + 0.5, clause))

    # Rooms along the path: a viewpoint's room at time k; a room entered through one doorway and
    # left through the next (no panorama inside) at the time k + 0.5 between the two doorways.
    along = []
    for k, r in enumerate(rooms):
        if r is not None:
            along.append((k, r))
        elif k + 1 < n and rooms[k + 1] is None and path_vps[k].door and path_vps[k + 1].door:
            shared = set(path_vps[k].door) & set(path_vps[k + 1].door)
            if len(shared) == 1:
                along.append((k + 0.5, shared.pop()))
    visited = []  # (room, first time, last time) in path order
    for k, r in along:
        if visited and visited[-1][0] == r:
            visited[-1][2] = k
        else:
            visited.append([r, k, k])
    named_objects = {landmark.id} if landmark else set()
    for i, (r, first, last) in enumerate(visited):
        if i == 0 and len(visited) > 1:
            events.append((last + 0.45, ("exit", rtype(r))))
            plan.rooms.add(r)
        elif i > 0:
            crossed = first != int(first)  # between two doorways
            short = i < len(visited) - 1 and last == first and (crossed or rtype(r) == "hallway")
            events.append((first - 0.4, ("through" if short else "enter", rtype(r))))
            plan.rooms.add(r)
        if r == goal_room and i == len(visited) - 1:
            continue
        # The most visible object of this room from the path's viewpoints in it.
        idx = [k for k in range(math.ceil(first), int(last) + 1) if rooms[k] == r]
        cands = [(visibility[k, o.id], -o.id, k, o) for k in idx for o in house.objects
                 if o.room == r and o.id not in named_objects and visibility[k, o.id] >= MIN_VISIBLE]
        if cands:
            _, _, k, o = max(cands, key=lambda c: c[:2])
            events.append((k + 0.3, ("pass", o.colour, o.type)))
            named_objects.add(o.id)
            plan.objects.add(o.id)
    events.sort(key=lambda e: e[0])
    plan.clauses = [c for _, c in events]
    if landmark is not None:
        plan.objects.add(landmark.id)
        plan.clauses.append(("stop", rtype(goal_room), landmark.colour, landmark.type))
    else:
        plan.clauses.append(("stop", rtype(goal_room), None, None))
    plan.rooms.add(goal_room)
    return plan


def render_instruction(plan: RoutePlan, language: str, rng: np.random.Generator) -> str:
    """Word a plan in ``language`` ("en", "hi" or "te"), drawing wordings from ``rng``."""
    tpl = TEMPLATES[language]
    rooms, objects, colours = ROOM_WORDS[language], OBJECT_WORDS[language], COLOUR_WORDS[language]
    # One draw of uniforms per instruction (a Generator call costs microseconds): one per clause,
    # and per sentence one for its length and one per joiner, at most 3 per clause in all.
    draws = iter(rng.random(3 * len(plan.clauses) + 2).tolist())

    def uniform_index(n: int) -> int:
        return min(int(next(draws) * n), n - 1)

    pick = lambda options: options[uniform_index(len(options))]  # noqa: E731

    def thing(colour, obj):
        return tpl["thing"].format(colour=colours[colour], object=objects[obj])

    def word(clause):
        kind = clause[0]
        if kind == "turn":
            return pick(tpl[clause[1]])
        if kind in ("forward", "up", "down"):
            return pick(tpl[kind])
        if kind in ("exit", "enter", "through"):
            return pick(tpl[kind]).format(room=rooms[clause[1]])
        if kind == "pass":
            return pick(tpl["pass"]).format(thing=thing(clause[1], clause[2]))
        if clause[3] is None:
            return pick(tpl["stop_room"]).format(room=rooms[clause[1]])
        return pick(tpl["stop"]).format(room=rooms[clause[1]], thing=thing(clause[2], clause[3]))

    body = [word(c) for c in plan.clauses[:-1]]
    sentences = []
    while body:
        size = min(len(body), 1 + uniform_index(3))
        chunk, body = body[:size], body[size:]
        text = chunk[0]
        for part in chunk[1:]:
            text += pick(tpl["joiners"]) + part
        sentences.append(text)
    sentences.append(word(plan.clauses[-1]))
    if language == "en":
        sentences = [s[0].upper() + s[1:] for s in sentences]
    return (tpl["end"].join(sentences) + tpl["end"]).strip()
