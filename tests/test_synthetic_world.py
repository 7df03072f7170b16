"""The synthetic world: determinism, real-format files, loaders/simulator/evaluator acceptance, splits."""
from __future__ import annotations

import gzip
import json
import re

import numpy as np
import pytest

from synthetic_helpers import small_world  # noqa: F401 - fixture
from vln.connectivity import read_connectivity, read_scans_txt
from vln.datasets.r2r import load_r2r
from vln.datasets.rxr import load_rxr
from vln.errors import DataFormatError
from vln.graph import NavGraph
from vln.skybox import SYNTHETIC_ROTATION, skybox_filename
from vln.synthetic import DATA_DIR_ENV, default_data_dir, generate_world


def _tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(tmp_path):
    small = {"train": 3, "val_seen": 1, "val_unseen": 3, "test": 2}
    a = generate_world(tmp_path / "a", houses=2, seed=3, face_size=32, paths_per_house=small)
    b = generate_world(tmp_path / "b", houses=2, seed=3, face_size=32, paths_per_house=small)
    c = generate_world(tmp_path / "c", houses=2, seed=4, face_size=32, paths_per_house=small)
    ta, tb, tc = _tree(tmp_path / "a"), _tree(tmp_path / "b"), _tree(tmp_path / "c")
    assert ta.keys() == tb.keys() and all(ta[k] == tb[k] for k in ta)
    assert a["splits"] == b["splits"] and a["splits"] != c["splits"]
    assert ta["R2R/R2R_train.json"] != tc.get("R2R/R2R_train.json")


def test_layout_matches_a_real_data_root(small_world):
    out, summary = small_world
    scans = read_scans_txt(out / "connectivity")
    assert len(scans) == 3 and all(re.fullmatch(r"[0-9A-Za-z]{11}", s) for s in scans)
    for split in ("train", "val_seen", "val_unseen", "test"):
        assert (out / "R2R" / f"R2R_{split}.json").exists()
        assert (out / "RxR" / f"rxr_{split}_guide.jsonl.gz").exists()
    graphs = NavGraph(out / "connectivity")
    for scan in scans:
        g = graphs[scan]
        for vp in g.viewpoint_ids:
            assert re.fullmatch(r"[0-9a-f]{32}", vp)
            for k in range(6):
                assert (out / "scans" / scan / "matterport_skybox_images" / skybox_filename(vp, k)).exists()
    assert json.loads((out / "world.json").read_text())["splits"] == summary["splits"]


def test_graphs_are_valid_connected_and_walkable(small_world):
    out, _ = small_world
    graphs = NavGraph(out / "connectivity")
    for scan in graphs.scan_ids:
        rec = read_connectivity(out / "connectivity" / f"{scan}_connectivity.json")  # validates the format
        g = graphs[scan]
        inc = np.flatnonzero(g.included)
        assert 1 <= (~g.included).sum() <= 2, "a few excluded viewpoints, as in the real data"
        assert not rec.unobstructed[~g.included].any(), "excluded viewpoints have no edges"
        assert np.isfinite(g.distances[np.ix_(inc, inc)]).all(), "included viewpoints form one connected graph"
        np.testing.assert_array_equal(rec.poses.reshape(-1, 4, 4)[:, :3, :3], np.broadcast_to(SYNTHETIC_ROTATION, (len(g), 3, 3)))
        assert np.allclose(rec.heights, 1.5)
        i, j = np.nonzero(g.adjacency)
        lengths = np.linalg.norm(g.positions[i] - g.positions[j], axis=1)
        assert lengths.max() < 4.6 and np.median(lengths) > 1.2, "viewpoints are about 2 m apart"


def test_r2r_paths_are_unique_shortest_paths(small_world):
    out, _ = small_world
    graphs = NavGraph(out / "connectivity")
    for split in ("train", "val_seen", "val_unseen"):
        episodes = load_r2r(out / "R2R" / f"R2R_{split}.json", graph=graphs)
        assert len(episodes) > 0 and len(episodes) % 3 == 0
        for ep in episodes:
            g = graphs[ep.scan]
            assert 4 <= len(ep.path) - 1 <= 7
            assert list(ep.path) == g.shortest_path(ep.start, ep.goal)
            assert ep.distance == pytest.approx(g.distance(ep.start, ep.goal), abs=0.006)
            assert 0 <= ep.heading < 2 * np.pi
    raw = json.loads((out / "R2R" / "R2R_test.json").read_text())
    assert raw and all(len(r["path"]) == 1 and "distance" not in r and len(r["instructions"]) == 3 for r in raw)


def test_splits_unseen_houses_share_no_scans_with_training(small_world):
    out, summary = small_world
    scans = {s: {r["scan"] for r in json.loads((out / "R2R" / f"R2R_{s}.json").read_text())}
             for s in ("train", "val_seen", "val_unseen", "test")}
    assert scans["val_seen"] <= scans["train"]
    assert not scans["val_unseen"] & scans["train"] and not scans["test"] & scans["train"]
    assert not scans["val_unseen"] & scans["test"]
    train = {(tuple(r["path"][:1]), r["path"][-1]) for r in json.loads((out / "R2R" / "R2R_train.json").read_text())}
    seen = {(tuple(r["path"][:1]), r["path"][-1]) for r in json.loads((out / "R2R" / "R2R_val_seen.json").read_text())}
    assert not train & seen, "val_seen paths are new start/goal pairs"


def test_rxr_guide_files_in_three_languages(small_world):
    out, _ = small_world
    graphs = NavGraph(out / "connectivity")
    eps = load_rxr(out / "RxR" / "rxr_train_guide.jsonl.gz", graph=graphs)
    r2r = {r["path_id"]: r for r in json.loads((out / "R2R" / "R2R_train.json").read_text())}
    assert len(eps) == 3 * len(r2r)
    by_lang = {}
    for ep in eps:
        by_lang.setdefault(ep.language.split("-")[0], []).append(ep)
        assert list(ep.path) == r2r[ep.path_id]["path"] and ep.heading == r2r[ep.path_id]["heading"]
    assert set(by_lang) == {"en", "hi", "te"}
    assert {e.language for e in eps} == {"en-US", "en-IN", "hi-IN", "te-IN"}
    assert all(re.search(r"[\u0900-\u097F]{3}", e.instruction) for e in by_lang["hi"]), "Hindi in Devanagari"
    assert all(re.search(r"[\u0C00-\u0C7F]{3}", e.instruction) for e in by_lang["te"]), "Telugu in Telugu script"
    with gzip.open(out / "RxR" / "rxr_train_guide.jsonl.gz", "rt", encoding="utf-8") as f:
        first = json.loads(f.readline())
    assert {"instruction_id", "path_id", "scan", "path", "heading", "instruction", "language", "annotator_id",
            "edit_distance"} <= set(first)


def test_simulator_and_evaluator_accept_the_world(small_world):
    from vln.evaluate import Evaluator
    from vln.sim.graph_sim import Simulator

    out, _ = small_world
    split = out / "R2R" / "R2R_val_unseen.json"
    ev = Evaluator.from_files(split, out / "connectivity")
    episodes = load_r2r(split)
    sim = Simulator()
    sim.setNavGraphPath(str(out / "connectivity"))
    sim.setDatasetPath(str(out / "scans"))
    sim.setCameraResolution(64, 48)
    sim.setRestrictedNavigation(False)
    sim.setDiscretizedViewingAngles(True)
    sim.initialize()
    trajectories = {}
    for ep in episodes[:6]:
        sim.newEpisode([ep.scan], [ep.start], [ep.heading], [0.0])
        traj = [ep.start]
        for nxt in ep.path[1:]:
            nav = [loc.viewpointId for loc in sim.getState()[0].navigableLocations]
            sim.makeAction([nav.index(nxt)], [0.0], [0.0])
            traj.append(sim.getState()[0].location.viewpointId)
        rgb = sim.getState()[0].rgb
        assert rgb.shape == (48, 64, 3) and rgb.std() > 5, "the simulator renders our skyboxes"
        trajectories[ep.instr_id] = traj
    result = ev.score(trajectories, allow_partial=True)
    assert result.summary["sr"] == 1.0 and result.summary["spl"] == pytest.approx(1.0)


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "elsewhere"))
    assert default_data_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv(DATA_DIR_ENV)
    assert default_data_dir().parts[-2:] == ("data", "synthetic")


def test_make_world_script_and_refusal_to_overwrite(tmp_path):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("make_world", Path(__file__).resolve().parents[1] / "scripts" / "make_world.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    args = ["--out", str(tmp_path / "w"), "--houses", "2", "--seed", "1", "--face-size", "16", "--quiet",
            "--train-paths", "2", "--val-seen-paths", "1", "--val-unseen-paths", "2", "--test-paths", "1"]
    summary = mod.main(args)
    assert summary["houses"] == 2 and (tmp_path / "w" / "world.json").exists()
    with pytest.raises(FileExistsError, match="overwrite"):
        mod.main(args)
    assert mod.main(args + ["--overwrite"])["paths"] == summary["paths"]


def test_a_world_from_an_older_generator_is_reported_with_the_rebuild_command(small_world, tmp_path, caplog):
    import logging
    import shutil

    from agents.data import ensure_data
    from vln.synthetic import FORMAT_VERSION, stale_world_message

    out, summary = small_world
    assert json.loads((out / "world.json").read_text())["format_version"] == FORMAT_VERSION
    assert stale_world_message(out) is None
    old = tmp_path / "old"
    shutil.copytree(out, old)
    meta = json.loads((old / "world.json").read_text())
    meta["format_version"] = FORMAT_VERSION - 1
    (old / "world.json").write_text(json.dumps(meta))
    msg = stale_world_message(old)
    assert f"format_version {FORMAT_VERSION - 1}" in msg
    with caplog.at_level(logging.WARNING, logger="agents.data"):
        ensure_data("synthetic", old, None)
    assert any(msg in r.getMessage() for r in caplog.records)
    # The command in the message rebuilds the same world.
    import shlex

    from scripts.make_world import main as make_world

    cmd = shlex.split(msg.split("rebuild it with ")[1])
    assert cmd[:2] == ["python", "scripts/make_world.py"]
    (old / "R2R" / "R2R_train.json").write_text("[]")
    make_world(cmd[2:] + ["--quiet"])
    assert stale_world_message(old) is None
    for f in ("R2R/R2R_train.json", "R2R/R2R_val_unseen.json", "connectivity/scans.txt"):
        assert (old / f).read_bytes() == (out / f).read_bytes(), f
    (old / "world.json").write_text("{not json")
    with pytest.raises(DataFormatError, match="world.json.*not JSON"):
        stale_world_message(old)
    (old / "world.json").write_text(json.dumps({"format_version": FORMAT_VERSION}))
    with pytest.raises(DataFormatError, match="houses"):
        stale_world_message(old)


def test_demo_rebuilds_a_stale_world_with_its_own_parameters_and_drops_its_features(small_world, tmp_path):
    import shutil

    from scripts.demo import ensure_world
    from vln.synthetic import FORMAT_VERSION

    out, _ = small_world
    old = tmp_path / "old"
    shutil.copytree(out, old)
    meta = json.loads((old / "world.json").read_text())
    meta["format_version"] = FORMAT_VERSION - 1
    (old / "world.json").write_text(json.dumps(meta))
    first = (old / "R2R" / "R2R_train.json").read_text()
    (old / "R2R" / "R2R_train.json").write_text("[]")  # what an older generator wrote differs
    (old / "features").mkdir()
    (old / "features" / "synthetic_semantic.feats").mkdir()
    ensure_world(old, seed=0)
    meta = json.loads((old / "world.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION and meta["houses"] == 3 and meta["seed"] == 7
    assert (old / "R2R" / "R2R_train.json").read_text() == first  # the same world as before, rebuilt
    assert not (old / "features").exists()
    ensure_world(old, seed=0)  # current: kept as it is
    assert (old / "R2R" / "R2R_train.json").read_text() == first
