"""A tiny on-disk data root for environment tests: graphs, R2R splits and a feature store."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from graph_builders import TINY_EDGES, TINY_POSITIONS, TINY_SCAN, vp_id, write_graph

FEATURE_DIM = 8

#: A 3x3 grid house (2 m spacing) as a second scan, with one excluded viewpoint.
GRID_SCAN = "gridScan0001"
GRID_POSITIONS = {f"G{r}{c}": (2.0 * c + 0.05 * r, 2.0 * r + 0.03 * c, 1.5) for r in range(3) for c in range(3)}
GRID_EDGES = [(f"G{r}{c}", f"G{r}{c + 1}") for r in range(3) for c in range(2)] + \
             [(f"G{r}{c}", f"G{r + 1}{c}") for r in range(2) for c in range(3)]


def write_data_root(root: Path, with_features: bool = True) -> Path:
    """Write ``connectivity/``, ``R2R/R2R_{train,val_unseen}.json`` and ``features/toy.feats``."""
    conn = root / "connectivity"
    write_graph(conn, TINY_SCAN, TINY_POSITIONS, TINY_EDGES, excluded={"F"})
    write_graph(conn, GRID_SCAN, GRID_POSITIONS, GRID_EDGES)
    train = [
        dict(distance=7.0, scan=TINY_SCAN, path_id=1, path=[vp_id(n) for n in "ABC"], heading=0.3,
             instructions=["walk to the end of the hall and turn left", "go forward then left", "walk past b to c"]),
        dict(distance=3.0, scan=TINY_SCAN, path_id=2, path=[vp_id(n) for n in "BE"], heading=4.0,
             instructions=["walk to the end of the hall", "go forward", "walk to e"]),
        dict(distance=8.0, scan=GRID_SCAN, path_id=3, path=[vp_id(n) for n in ("G00", "G01", "G11", "G21", "G22")],
             heading=1.0, instructions=["go forward and turn left then walk to the end", "walk up", "turn left"]),
    ]
    val = [
        dict(distance=6.0, scan=GRID_SCAN, path_id=4, path=[vp_id(n) for n in ("G20", "G10", "G00", "G01")],
             heading=2.0, instructions=["walk down the hall and turn left", "go to the corner", "walk"]),
    ]
    (root / "R2R").mkdir(parents=True, exist_ok=True)
    (root / "R2R" / "R2R_train.json").write_text(json.dumps(train))
    (root / "R2R" / "R2R_val_unseen.json").write_text(json.dumps(val))
    write_skyboxes(root / "scans", {TINY_SCAN: [n for n in TINY_POSITIONS], GRID_SCAN: list(GRID_POSITIONS)})
    if with_features:
        from features.store import write_feature_store

        rng = np.random.default_rng(0)
        items = [(TINY_SCAN, vp_id(n), rng.normal(size=(36, FEATURE_DIM)).astype(np.float32))
                 for n in TINY_POSITIONS if n != "F"]
        items += [(GRID_SCAN, vp_id(n), rng.normal(size=(36, FEATURE_DIM)).astype(np.float32)) for n in GRID_POSITIONS]
        write_feature_store(root / "features" / "toy.feats", items, {"encoder": {"name": "toy"}, "random_weights": True})
    return root


def write_skyboxes(scans_dir: Path, scans: dict, size: int = 16) -> None:
    """Six solid-colour 16 px skybox faces per viewpoint (face k has colour 40 * k)."""
    from PIL import Image

    from vln.skybox import skybox_filename

    for scan, names in scans.items():
        d = scans_dir / scan / "matterport_skybox_images"
        d.mkdir(parents=True, exist_ok=True)
        for n in names:
            for k in range(6):
                Image.new("RGB", (size, size), (40 * k, 255 - 40 * k, 100)).save(d / skybox_filename(vp_id(n), k))
