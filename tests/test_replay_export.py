"""Static export and PNG plots, through scripts/replay.py main(argv)."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image

from scripts.replay import main
from test_replay_data import make_replay_root
from test_replay_server import payload
from vln.replay import ReplayData
from vln.replay.payload import STATIC_DIR
from vln.replay.plot import COLOURS


def args(root, traj):
    return ["--data", str(root / "R2R" / "R2R_train.json"), "--connectivity", str(root / "connectivity"),
            "--trajectories", str(traj)]


def test_static_export_holds_the_page_data_and_images(tmp_path):
    root, traj = make_replay_root(tmp_path)
    out = tmp_path / "site"
    res = main(args(root, traj) + ["--scans-dir", str(root / "scans"), "--export", str(out), "--episodes", "1_0", "3_0"])
    assert res["export"]["episodes"] == 2
    for name in ("index.html", "app.js", "style.css"):
        assert (out / name).read_bytes() == (STATIC_DIR / name).read_bytes()
    _, index = payload((out / "data" / "index.js").read_bytes(), "index")
    assert [r["instr_id"] for r in index["episodes"]] == ["1_0", "3_0"]
    assert json.loads((out / "data" / "index.json").read_text()) == index  # the same data for static hosts
    data = ReplayData(root / "R2R" / "R2R_train.json", root / "connectivity", traj)
    key, ep = payload((out / "data" / "episodes" / "1_0.js").read_bytes(), "episode")
    assert key == "1_0" and ep == json.loads(json.dumps(data.episode("1_0")))
    assert json.loads((out / "data" / "episodes" / "1_0.json").read_text()) == ep
    n = 0
    for k in ("1_0", "3_0"):
        _, e = payload((out / "data" / "episodes" / f"{k}.js").read_bytes(), "episode")
        for s in e["steps"]:
            assert Image.open(out / s["view"]).size == (320, 240)
            assert Image.open(out / s["pano"]).size == (768, 144)
            n += 1
    assert n == 8 and not (out / "data" / "episodes" / "2_0.js").exists()
    assert not list(out.rglob("*.tmp"))  # atomic writes leave no temporaries


def test_export_without_skyboxes_has_no_image_links(tmp_path):
    root, traj = make_replay_root(tmp_path)
    out = tmp_path / "site"
    main(args(root, traj) + ["--export", str(out), "--episodes", "2_0"])
    _, ep = payload((out / "data" / "episodes" / "2_0.js").read_bytes(), "episode")
    assert all(s["view"] is None and s["pano"] is None for s in ep["steps"])
    assert not (out / "images").exists()


def test_png_plots(tmp_path):
    root, traj = make_replay_root(tmp_path)
    res = main(args(root, traj) + ["--png", str(tmp_path / "png")])
    assert len(res["png"]) == 9
    img = np.asarray(Image.open(tmp_path / "png" / "2_0.png").convert("RGB")).astype(int)
    assert max(img.shape[:2]) == 800
    for colour in ("reference", "agent", "goal"):  # both paths and the goal are drawn
        assert (np.abs(img - np.array(COLOURS[colour])).sum(-1) < 30).sum() > 50, colour
    blank = np.asarray(Image.open(tmp_path / "png" / "2_1.png").convert("RGB")).astype(int)
    assert (np.abs(blank - np.array(COLOURS["agent"])).sum(-1) < 30).sum() == 0  # no trajectory, no agent path
