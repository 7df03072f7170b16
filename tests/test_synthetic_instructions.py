"""Instructions are grounded: they name only rooms and objects on or beside the path, and turns match."""
from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from synthetic_helpers import english_mentions, small_world  # noqa: F401 - fixture
from vln.errors import DataFormatError, UnknownViewpointError
from vln.graph import NavGraph
from vln.synthetic import read_view_semantics
from vln.synthetic.instructions import plan_route, render_instruction, turn_kind
from vln.synthetic.layout import House, Obj, Room
from vln.synthetic.semantics import N_VIEWS, read_viewpoint_rooms
from vln.synthetic.vocab import CLASSES


def test_every_instruction_names_only_what_the_path_passes(small_world):
    out, _ = small_world
    sem = read_view_semantics(out)
    rooms = read_viewpoint_rooms(out)
    layout = json.loads((out / "semantics" / "layout.json").read_text())
    col = {c: i for i, c in enumerate(sem.classes)}
    checked = 0
    for split in ("train", "val_seen", "val_unseen"):
        for rec in json.loads((out / "R2R" / f"R2R_{split}.json").read_text()):
            seen = np.max([sem.get(rec["scan"], vp) for vp in rec["path"]], axis=(0, 1))  # (K,)
            path_rooms = {rooms[rec["scan"]][vp]["room_type"] for vp in rec["path"]}
            # A doorway viewpoint stands between two rooms; the path may cross the other one.
            path_rooms |= {layout[rec["scan"]]["rooms"][r]["type"] for vp in rec["path"]
                           for r in rooms[rec["scan"]][vp].get("door_rooms", ())}
            kinds = {rooms[rec["scan"]][vp]["kind"] for vp in rec["path"]}
            for text in rec["instructions"]:
                objects, room_types = english_mentions(text)
                assert room_types, text
                for r in room_types:
                    assert r in path_rooms, f"{text!r} names the {r}, not on the path ({path_rooms})"
                for o in objects:
                    if o == "stairs":
                        assert "stairs" in kinds, text
                    else:
                        assert seen[col[f"object:{o}"]] > 0, f"{text!r} names a {o} that no path view shows"
                checked += 1
            # The stop sentence names the goal's room.
            goal_room = rooms[rec["scan"]][rec["path"][-1]]["room_type"]
            assert all(goal_room in t.split(".")[-2] for t in rec["instructions"])
    assert checked > 20


def test_instructions_vary_in_wording(small_world):
    out, _ = small_world
    recs = json.loads((out / "R2R" / "R2R_train.json").read_text())
    assert sum(len(set(r["instructions"])) > 1 for r in recs) >= 0.8 * len(recs)
    words = {w for r in recs for t in r["instructions"] for w in t.lower().split()}
    assert len(words) > 40


def _toy_house():
    """Two rooms side by side along +y: a bedroom (y < 4) and a kitchen (y > 4), one object each."""
    h = House("toyhouse001", 1, 4.0, 8.0)
    h.rooms = [Room(0, "bedroom", 0, 0, 0, 4, 4), Room(1, "kitchen", 0, 0, 4, 4, 8)]
    h.objects = [Obj(0, "bed", "blue", 0, (0.1, 0.1, 0), (1.7, 2.0, 0.6)),
                 Obj(1, "fridge", "white", 1, (3.2, 6.5, 0), (3.9, 7.2, 1.9))]
    return h


def _vp(x, y, room, kind="room"):
    return SimpleNamespace(pos=np.array([x, y, 1.5]), room=room, kind=kind, floor=0)


def test_turns_follow_the_heading_and_the_goal_landmark_is_nearest():
    h = _toy_house()
    # Start facing +x (heading pi/2); the path goes +y (a left turn), through the door, to the fridge.
    path = [_vp(2, 1, 0), _vp(2, 3, 0), _vp(2, 4, 0, "door"), _vp(2, 5.5, 1), _vp(3, 6.8, 1)]
    vis = np.full((5, 2), 0.05)
    plan = plan_route(h, path, [math.pi / 2, 0.0, 0.0, 0.0], vis)
    assert plan.clauses[0] == ("turn", "left")
    assert ("exit", "bedroom") in plan.clauses and ("enter", "kitchen") in plan.clauses
    assert ("pass", "blue", "bed") in plan.clauses
    assert plan.clauses[-1] == ("stop", "kitchen", "white", "fridge")
    assert plan.rooms == {0, 1} and plan.objects == {0, 1}
    text = render_instruction(plan, "en", np.random.default_rng(0))
    assert "bedroom" in text and "white fridge" in text and "kitchen" in text
    # Facing +y already: no turn, "forward"; an invisible object is never named.
    vis[:, 0] = 0.0
    plan = plan_route(h, path, [0.0] * 4, vis)
    assert plan.clauses[0] == ("forward",) and not any(c[0] == "pass" for c in plan.clauses)
    for lang in ("hi", "te"):
        assert render_instruction(plan, lang, np.random.default_rng(0))


def test_turns_are_relative_to_the_heading_the_agent_faces():
    h = _toy_house()
    path = [_vp(2, 1, 0), _vp(2, 3, 0), _vp(2, 4, 0, "door"), _vp(2, 5.5, 1), _vp(3, 6.8, 1)]
    vis = np.full((5, 2), 0.05)
    # The last move heads 37.6 degrees right of +y: "slightly right" when the agent faces +y, no
    # turn when the simulator left it facing the 30 degree view (the view it saw the goal in).
    assert ("turn", "slight_right") in plan_route(h, path, [math.pi / 2, 0.0, 0.0, 0.0], vis).clauses
    facing = [math.pi / 2, 0.0, 0.0, math.radians(30)]
    assert not any(c[0] == "turn" for c in plan_route(h, path, facing, vis).clauses[1:])
    with pytest.raises(ValueError, match="facing has 3 headings for a path of 4 moves"):
        plan_route(h, path, facing[:3], vis)


def test_a_room_crossed_between_two_doorways_is_named():
    """bedroom | hallway | kitchen along +y; the path goes from doorway to doorway across the hallway."""
    h = House("toyhouse002", 1, 4.0, 9.0)
    h.rooms = [Room(0, "bedroom", 0, 0, 0, 4, 3), Room(1, "hallway", 0, 0, 3, 4, 6), Room(2, "kitchen", 0, 0, 6, 4, 9)]
    h.objects = [Obj(0, "sofa", "red", 2, (3.2, 8.0, 0), (3.9, 8.9, 0.8))]
    door = lambda y, a, b: SimpleNamespace(pos=np.array([2, y, 1.5]), room=a, kind="door", floor=0, door=(a, b))  # noqa: E731
    path = [_vp(2, 1, 0), door(3, 0, 1), door(6, 2, 1), _vp(2, 7.5, 2)]
    plan = plan_route(h, path, [0.0] * 3, np.full((4, 1), 0.05))
    assert plan.clauses[:-1] == [("forward",), ("exit", "bedroom"), ("through", "hallway"), ("enter", "kitchen")]
    assert plan.rooms == {0, 1, 2}


def test_synthetic_turns_use_the_simulator_heading(small_world):
    """The heading an instruction's turns start from is the one the environment leaves the agent in."""
    from envs.single import make_config
    from envs.world import NavWorld
    from envs.batch import NavBatch
    from vln.sim.geometry import HEADING_COUNT, HEADING_INCREMENT
    from vln.synthetic.instructions import simulator_facing

    out, _ = small_world
    world = NavWorld(make_config({"dataset": "r2r"}, {"data_dir": out, "split": "train", "features": None}))
    graphs = NavGraph(out / "connectivity")
    checked = 0
    for e, ep in enumerate(world.episodes):
        g = graphs[ep.scan]
        path = [g.vp_index(v) for v in ep.path]
        nav = NavBatch(world, 1)
        nav.reset_envs(np.array([0]), np.array([e]))
        seen = []
        for _ in path[:-1]:
            seen.append(float(int(nav.view[0]) % HEADING_COUNT) * HEADING_INCREMENT)
            nav.step(nav.teacher_actions())
        assert nav.goal_distance()[0] == 0.0
        assert simulator_facing(g, path, ep.heading) == pytest.approx(seen, abs=1e-12)
        checked += 1
    assert checked >= 8


@pytest.mark.parametrize("delta,kind", [(0.1, None), (0.7, "slight_right"), (-1.5, "left"), (1.6, "right"),
                                        (3.1, "around"), (2 * math.pi - 1.5, "left")])
def test_turn_kind(delta, kind):
    assert turn_kind(delta) == kind


def test_view_semantics_reader(small_world, tmp_path):
    out, summary = small_world
    sem = read_view_semantics(out)
    assert sem.classes == list(CLASSES)
    assert len(sem.keys()) == summary["viewpoints"] == len(sem)
    graphs = NavGraph(out / "connectivity")
    rooms = read_viewpoint_rooms(out)
    for scan, vp in sem.keys()[::7]:
        assert vp in graphs[scan].index
        f = sem.get(scan, vp)
        assert f.shape == (N_VIEWS, len(CLASSES)) and f.dtype == np.float32
        assert (f >= 0).all() and (f <= 1).all()
        n_room = sum(c.startswith("room:") for c in CLASSES)
        n_obj = sum(c.startswith("object:") for c in CLASSES)
        np.testing.assert_allclose(f[:, : n_room + n_obj].sum(axis=1), 1.0, atol=1e-5)  # closed houses
        info = rooms[scan][vp]
        if info["kind"] == "room":  # a camera standing in a room sees that room's floor
            assert f[:12, CLASSES.index(f"room:{info['room_type']}")].max() > 0.2
    with pytest.raises(UnknownViewpointError):
        sem.get(sem.keys()[0][0], "0" * 32)
    # A malformed annotation file is an error naming the file.
    import shutil
    bad = tmp_path / "bad"
    shutil.copytree(out / "semantics", bad / "semantics")
    scan = sem.scans()[0]
    with np.load(bad / "semantics" / f"{scan}_views.npz") as z:
        ids, fr = z["viewpoint_ids"], z["fractions"]
    np.savez(bad / "semantics" / f"{scan}_views.npz", viewpoint_ids=ids, fractions=fr[:, :10])
    with pytest.raises(DataFormatError, match=f"{scan}_views.npz"):
        read_view_semantics(bad)
