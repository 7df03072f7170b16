"""The data the replay page is built from: trajectory files, the episode list, one episode, images."""
from __future__ import annotations

import io
import json
import math
import os

import numpy as np
import pytest
from PIL import Image

from env_fixtures import GRID_SCAN, write_data_root
from graph_builders import TINY_SCAN, vp_id, write_graph
from vln.evaluate import Evaluator
from vln.render import load_skybox_faces, render_view
from vln.replay import ReplayData, ViewRenderer, episode_key, read_trajectories
from vln.replay.data import STOP, project_to_view, token_spans, tokenize
from vln.replay.images import TILE_SIZE, VFOV, VIEW_SIZE
from vln.skybox import skybox_filename
from vln.submission import SubmissionError, write_rxr_submission

A, B, C, D, E = (vp_id(n) for n in "ABCDE")
GRID = {n: vp_id(n) for n in ("G00", "G01", "G11", "G21", "G22")}
INSTR_1_0 = "walk to the end of the hall and turn left"  # 10 tokens


def one_hot_rows(n_tok: int, hot: list[int]) -> list[list[float]]:
    rows = np.full((len(hot), n_tok), 0.01)
    rows[np.arange(len(hot)), hot] = 0.9
    return rows.tolist()


def make_replay_root(tmp_path):
    """The tiny data root of the env tests plus an agent trajectory file.

    1_0 succeeds with a turn in place at B (attention on "left", "end", "hall"); 2_0 walks
    B-A-D instead of B-E (fails); 3_0 on the grid scan succeeds and names its own tokens.
    """
    root = write_data_root(tmp_path / "root", with_features=False)
    grid_tokens = tokenize("go forward and turn left then walk to the end", "en") + ["<EOS>"]
    runs = [
        {"instr_id": "1_0", "trajectory": [[A, 0.3, 0.0], [B, 1.0, 0.0], [B, 0.1, 0.0], [C, 0.2, 0.0]],
         "attention": one_hot_rows(10, [9, 3, 6])},
        {"instr_id": "2_0", "trajectory": [[B, 4.0, 0.0], [A, 4.7, 0.0], [D, 0.0, 0.0]]},
        {"instr_id": "3_0", "trajectory": [[GRID[k], 1.0, 0.0] for k in GRID], "tokens": grid_tokens,
         "attention": one_hot_rows(len(grid_tokens), [0, 1, 3, 4, len(grid_tokens) - 1])},
    ]
    traj = tmp_path / "submit_train.json"
    traj.write_text(json.dumps(runs))
    return root, traj


@pytest.fixture
def replay(tmp_path):
    root, traj = make_replay_root(tmp_path)
    return ReplayData(root / "R2R" / "R2R_train.json", root / "connectivity", traj), root, traj


# ------------------------------------------------------------------ trajectory files
def test_read_trajectories_formats(tmp_path):
    _, traj = make_replay_root(tmp_path)
    runs = read_trajectories(traj)
    assert list(runs) == ["1_0", "2_0", "3_0"]
    assert runs["1_0"].trajectory[1] == (B, 1.0, 0.0)
    assert runs["1_0"].attention.shape == (3, 10) and runs["2_0"].attention is None
    assert runs["3_0"].tokens[-1] == "<EOS>"
    # per-episode records: bare viewpoint ids under "path", metric fields ignored
    rec = tmp_path / "per_episode.json"
    rec.write_text(json.dumps([{"instr_id": "1_0", "scan": TINY_SCAN, "nav_error": 0.0, "path": [A, B, C]}]))
    assert read_trajectories(rec)["1_0"].trajectory == [A, B, C]
    # a mapping instr_id -> trajectory
    rec.write_text(json.dumps({"1_0": [A, B]}))
    assert read_trajectories(rec)["1_0"].trajectory == [A, B]
    # RxR JSON Lines
    rxr = write_rxr_submission(tmp_path / "sub.jsonl", {"7": [A, B]})
    assert read_trajectories(rxr)["7"].trajectory == [A, B]


@pytest.mark.parametrize("record, field, problem", [
    ({"instr_id": "1_0", "nav_error": 1.0}, "trajectory", "is missing"),
    ({"instr_id": "1_0", "trajectory": [A], "attention": [[0.1, 0.2], [0.3]]}, "attention", "one length"),
    ({"instr_id": "1_0", "trajectory": [A], "attention": [[0.1, float("nan")]]}, "attention", "finite"),
    ({"instr_id": "1_0", "trajectory": [A], "tokens": ["a"], "attention": [[0.1, 0.2]]}, "attention", "tokens"),
    ({"instr_id": 1.5, "trajectory": [A]}, "instr_id", "string"),
])
def test_bad_trajectory_records_name_file_record_field(tmp_path, record, field, problem):
    f = tmp_path / "bad.json"
    f.write_text(json.dumps([record]))  # NaN is written as the JSON extension NaN
    with pytest.raises(SubmissionError) as e:
        read_trajectories(f)
    assert str(f) in str(e.value) and repr(field) in str(e.value) and problem in str(e.value)


def test_trajectories_must_fit_the_split(tmp_path):
    root, _ = make_replay_root(tmp_path)
    split, conn = root / "R2R" / "R2R_train.json", root / "connectivity"
    f = tmp_path / "t.json"
    f.write_text(json.dumps([{"instr_id": "99_0", "trajectory": [A]}]))
    with pytest.raises(SubmissionError, match=r"99_0.*not in the split"):
        ReplayData(split, conn, f)
    # trajectories of another split: the message names the split they belong to
    val_traj = [{"instr_id": "4_0", "trajectory": [vp_id("G20"), vp_id("G10")]}]
    f.write_text(json.dumps(val_traj))
    with pytest.raises(SubmissionError) as e:
        ReplayData(split, conn, f)
    msg = str(e.value)
    assert str(f) in msg and "'instr_id'" in msg and f"not in the split {split}" in msg
    assert f"all are instr_ids of {root / 'R2R' / 'R2R_val_unseen.json'}" in msg
    assert len(ReplayData(root / "R2R" / "R2R_val_unseen.json", conn, f).runs) == 1  # the split it names works
    f.write_text(json.dumps([{"instr_id": "1_0", "trajectory": [A, B], "attention": [[0.5] * 9] * 2}]))
    with pytest.raises(SubmissionError, match=r"9 weights but the instruction has 10 tokens"):
        ReplayData(split, conn, f)
    f.write_text(json.dumps([{"instr_id": "1_0", "trajectory": [A, B], "attention": [[0.5] * 10] * 4}]))
    with pytest.raises(SubmissionError, match=r"4 rows but the trajectory visits 2 viewpoints"):
        ReplayData(split, conn, f)


# ------------------------------------------------------------------ the episode list
def test_index_matches_the_evaluator(replay):
    data, root, traj = replay
    rows = {r["instr_id"]: r for r in data.index()}
    assert list(rows) == list(data.episodes)  # split order, every episode listed
    ev = Evaluator.from_files(root / "R2R" / "R2R_train.json", root / "connectivity")
    ref = {r["instr_id"]: r for r in ev.score_file(traj, allow_partial=True).episodes}
    for iid in ("1_0", "2_0", "3_0"):
        assert rows[iid]["success"] == ref[iid]["success"]
        assert rows[iid]["nav_error"] == pytest.approx(ref[iid]["nav_error"], abs=1e-4)
        assert rows[iid]["has_trajectory"]
    assert rows["2_0"]["success"] is False and rows["2_0"]["nav_error"] == pytest.approx(math.sqrt(10) + 7, abs=1e-4)
    assert rows["1_0"]["has_attention"] and not rows["2_0"]["has_attention"]
    assert rows["1_1"]["success"] is None and not rows["1_1"]["has_trajectory"]


# ------------------------------------------------------------------ one episode
def test_episode_steps_candidates_and_attention(replay):
    data, root, _ = replay
    ep = data.episode("1_0")
    g = data.graphs[TINY_SCAN]
    assert ep["agent"] == [A, B, C] and ep["reference"] == [A, B, C] and ep["source"] == "agent"
    steps = ep["steps"]
    assert [s["viewpoint"] for s in steps] == [A, B, C]  # the turn in place at B is one step
    for s, nxt in zip(steps, [B, C, None]):
        if nxt is None:
            assert s["chosen"] == STOP
            assert s["heading_deg"] == round(math.degrees(0.2))  # the final pose
            continue
        chosen = s["candidates"][s["chosen"]]
        assert chosen["viewpoint"] == nxt == s["next_viewpoint"]
        # the view faces the chosen candidate: it sits in the middle of the image
        assert chosen["in_view"] == pytest.approx([0.5, 0.5], abs=0.01)
        d = g.position(nxt) - g.position(s["viewpoint"])
        assert s["heading_deg"] == round(math.degrees(math.atan2(d[0], d[1]))) % 360
        # candidates are the graph neighbours
        assert {c["viewpoint"] for c in s["candidates"]} <= set(g.neighbours(s["viewpoint"]))
    assert steps[0]["distance_to_goal"] == pytest.approx(7.0) and steps[2]["distance_to_goal"] == 0.0
    assert steps[1]["view"] == f"images/{TINY_SCAN}/{B}/view_000.png"
    assert ep["metrics"]["success"] is True and ep["metrics"]["spl"] == 1.0
    # attention rows per step and the tokens located in the original text
    assert [int(np.argmax(r)) for r in ep["attention"]] == [9, 3, 6]
    toks = ep["tokens"]
    assert [ep["instruction"][t["start"]:t["end"]] for t in toks] == INSTR_1_0.split()
    json.dumps(ep, allow_nan=False)  # plain JSON


def test_episode_without_trajectory_replays_the_reference(replay):
    data, _, _ = replay
    ep = data.episode("2_1")
    assert ep["source"] == "reference" and ep["agent"] is None and ep["metrics"] is None
    assert [s["viewpoint"] for s in ep["steps"]] == [B, E]
    assert ep["plot"]["agent"] is None


def test_episode_tokens_given_by_the_file(replay):
    data, _, _ = replay
    ep = data.episode("3_0")
    assert ep["tokens"][-1] == {"text": "<EOS>", "start": None, "end": None}
    assert len(ep["attention"]) == len(ep["steps"]) == 5


def test_token_spans_keep_original_case_and_punctuation():
    text = "Go LEFT, then stop!"
    spans = token_spans(text, tokenize(text, "en") + ["<EOS>"])
    assert [(text[s["start"]:s["end"]] if s["start"] is not None else s["text"]) for s in spans] == \
        ["Go", "LEFT", ",", "then", "stop", "!", "<EOS>"]


def test_project_to_view():
    assert project_to_view(0.3, 0.0, 0.3) == pytest.approx((0.5, 0.5))
    hfov_half = math.atan(math.tan(VFOV / 2) * VIEW_SIZE[0] / VIEW_SIZE[1])
    x, y = project_to_view(0.3 + hfov_half * 0.999, 0.0, 0.3)
    assert x == pytest.approx(1.0, abs=1e-2) and y == pytest.approx(0.5)
    assert project_to_view(0.3 + math.pi, 0.0, 0.3) is None  # behind the camera
    assert project_to_view(0.0, math.radians(20), 0.0)[1] < 0.5  # up is towards the top


def test_plot_keeps_the_episode_floor(tmp_path):
    conn = tmp_path / "connectivity"
    pos = {"P": (0, 0, 1.5), "Q": (2, 0, 1.5), "R": (2, 2, 1.5), "S": (2, 2.5, 3.0), "T": (2, 3, 4.5), "U": (0, 3, 4.5)}
    write_graph(conn, "twoFloors01", pos, [("P", "Q"), ("Q", "R"), ("R", "S"), ("S", "T"), ("T", "U")])
    split = tmp_path / "R2R_x.json"
    split.write_text(json.dumps([dict(distance=4.0, scan="twoFloors01", path_id=1, heading=0.0,
                                      path=[vp_id("P"), vp_id("Q"), vp_id("R")], instructions=["go"])]))
    plot = ReplayData(split, conn).episode("1_0")["plot"]
    kept = {n[0] for n in plot["nodes"]}
    assert kept == {vp_id(n) for n in "PQR"}  # S is 1.5 m up the stairs, T and U one floor up
    ids = [n[0] for n in plot["nodes"]]
    assert [ids[k] for k in plot["reference"]] == [vp_id(n) for n in "PQR"]
    assert sorted(tuple(sorted((ids[i], ids[j]))) for i, j in plot["edges"]) == \
        sorted(tuple(sorted(p)) for p in [(vp_id("P"), vp_id("Q")), (vp_id("Q"), vp_id("R"))])


def test_opening_an_episode_loads_only_its_scan(replay):
    data, _, _ = replay
    data.episode("3_0")
    assert set(data.graphs._graphs) == {GRID_SCAN}


def test_episode_key_is_file_safe():
    assert episode_key("123_0") == "123_0"
    for bad in ("../x", "a/b", ".hidden", "x y", ""):
        k = episode_key(bad)
        assert k.startswith("h") and "/" not in k and ".." not in k


# ------------------------------------------------------------------ images
def test_images_match_the_renderer(replay):
    data, root, _ = replay
    r = ViewRenderer(root / "scans", data.graphs)
    g = data.graphs[TINY_SCAN]
    faces = load_skybox_faces(root / "scans", TINY_SCAN, B)
    rot = g.records.poses[g.index[B]]
    view = np.asarray(Image.open(io.BytesIO(r.view_png(TINY_SCAN, B, 90))))
    assert view.shape == (VIEW_SIZE[1], VIEW_SIZE[0], 3)
    np.testing.assert_array_equal(view, render_view(faces, rot, math.radians(90), 0.0, VFOV, *VIEW_SIZE))
    pano = np.asarray(Image.open(io.BytesIO(r.pano_png(TINY_SCAN, B))))
    w, h = TILE_SIZE
    assert pano.shape == (3 * h, 12 * w, 3)
    # view 15 (heading 90 deg, level) is row 1, column 3; view 0 (heading 0, down) row 2, column 0
    np.testing.assert_array_equal(pano[h:2 * h, 3 * w:4 * w], render_view(faces, rot, math.radians(90), 0.0, VFOV, w, h))
    np.testing.assert_array_equal(pano[2 * h:, :w], render_view(faces, rot, 0.0, math.radians(-30), VFOV, w, h))
    assert r.view_png(TINY_SCAN, B, 90) is r.view_png(TINY_SCAN, B, 90)  # cached


def test_faces_outside_scans_dir_are_unavailable(replay, tmp_path):
    data, root, _ = replay
    outside = tmp_path / "outside.jpg"
    Image.new("RGB", (16, 16)).save(outside)
    face = root / "scans" / TINY_SCAN / "matterport_skybox_images" / skybox_filename(A, 2)
    face.unlink()
    os.symlink(outside, face)
    r = ViewRenderer(root / "scans", data.graphs)
    assert not r.available(TINY_SCAN, A) and r.view_png(TINY_SCAN, A, 0) is None and r.pano_png(TINY_SCAN, A) is None
    assert r.available(TINY_SCAN, B)
    ep = data.episode("1_0", images=r.available)
    assert ep["steps"][0]["view"] is None and ep["steps"][1]["view"] is not None
    assert ViewRenderer(None, data.graphs).view_png(TINY_SCAN, B, 0) is None


def test_real_split_opens_one_scan_and_scores_like_the_evaluator(real_data, tmp_path):
    split, conn = real_data / "R2R" / "R2R_val_unseen.json", real_data / "connectivity"
    eps = json.loads(split.read_text())[:20]
    sub = [{"instr_id": f"{e['path_id']}_0", "trajectory": [[v, 0.0, 0.0] for v in e["path"][:-1]]} for e in eps]
    f = tmp_path / "sub.json"
    f.write_text(json.dumps(sub))
    data = ReplayData(split, conn, f)
    ep = data.episode(sub[0]["instr_id"])
    assert set(data.graphs._graphs) == {eps[0]["scan"]}
    assert [s["viewpoint"] for s in ep["steps"]] == eps[0]["path"][:-1]
    rows = {r["instr_id"]: r for r in data.index()}
    ref = Evaluator.from_files(split, conn).score_file(f, allow_partial=True).episodes
    for r in ref:
        assert rows[r["instr_id"]]["nav_error"] == pytest.approx(r["nav_error"], abs=1e-4)
        assert rows[r["instr_id"]]["success"] == r["success"]
