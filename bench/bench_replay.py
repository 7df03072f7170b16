"""Benchmark: opening one replay episode vs loading every scan of the dataset.

The replay page must open an episode of a 90-scan dataset without loading every scan. This
times ``ReplayData.episode`` (one scan: candidates, plot, metrics) on the real R2R val_unseen
split when ``../shared/data`` exists (else on a generated grid house), against the baseline of
loading and solving all scans of the connectivity folder, and times rendering the two images of
a step (320x240 view, 36-view strip) from 512 px skybox faces, uncached.

    python bench/bench_replay.py
"""
from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
SHARED = Path(os.environ.get("CLIPVIL_SHARED_DATA", REPO.parent / "shared" / "data"))


def grid_root(tmp: Path) -> tuple[Path, Path]:
    from graph_builders import vp_id, write_graph

    pos = {f"V{r}{c}": (2.0 * c, 2.0 * r, 1.5) for r in range(8) for c in range(8)}
    edges = [(f"V{r}{c}", f"V{r}{c + 1}") for r in range(8) for c in range(7)] + \
            [(f"V{r}{c}", f"V{r + 1}{c}") for r in range(7) for c in range(8)]
    for s in range(20):
        write_graph(tmp / "connectivity", f"grid{s:04d}", pos, edges)
    split = tmp / "R2R_x.json"
    split.write_text(json.dumps([dict(distance=8.0, scan="grid0000", path_id=1, heading=0.0,
                                      path=[vp_id(n) for n in ("V00", "V01", "V02", "V12", "V22")], instructions=["go"])]))
    return split, tmp / "connectivity"


def best_of(f, n=3) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    from PIL import Image

    from vln.graph import NavGraph
    from vln.replay import ReplayData, ViewRenderer
    from vln.skybox import skybox_filename

    tmp = Path(tempfile.mkdtemp(prefix="bench_replay_"))
    if (SHARED / "connectivity" / "scans.txt").exists():
        split, conn = SHARED / "R2R" / "R2R_val_unseen.json", SHARED / "connectivity"
        where = "real R2R val_unseen, 90 scans"
    else:
        split, conn = grid_root(tmp)
        where = "generated: 20 grid scans of 64 viewpoints"
    iid = None

    def open_episode():
        nonlocal iid
        data = ReplayData(split, conn)
        iid = iid or next(iter(data.episodes))
        data.episode(iid)
        return data

    t_open = best_of(open_episode)
    loaded = len(open_episode().graphs._graphs)
    t_all = best_of(lambda: [g.distances for g in NavGraph(conn).load_all()])
    print(f"[{where}] open one episode (split + 1 scan): {t_open * 1e3:.1f} ms, scans loaded: {loaded}")
    print(f"baseline, load + solve every scan: {t_all * 1e3:.1f} ms  -> ratio {t_all / t_open:.1f}x")

    # images: two per step, rendered from 512 px faces
    from graph_builders import vp_id, write_graph

    scan = "bench0001"
    write_graph(tmp / "img_conn", scan, {"P": (0, 0, 1.5), "Q": (2, 0, 1.5)}, [("P", "Q")])
    vp = vp_id("P")
    d = tmp / "scans" / scan / "matterport_skybox_images"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(6):
        Image.fromarray(rng.integers(0, 255, (512, 512, 3), dtype=np.uint8)).save(d / skybox_filename(vp, k), quality=90)
    nav = NavGraph(tmp / "img_conn")
    t_img = best_of(lambda: (ViewRenderer(tmp / "scans", nav).view_png(scan, vp, 30),
                             ViewRenderer(tmp / "scans", nav).pano_png(scan, vp)))
    r = ViewRenderer(tmp / "scans", nav)
    r.view_png(scan, vp, 30)
    t_cached = best_of(lambda: r.view_png(scan, vp, 30), 20)
    print(f"render one step's images (view + 36-view strip, 512 px faces): {t_img * 1e3:.1f} ms; "
          f"cached: {t_cached * 1e6:.1f} us -> ratio {t_img / max(t_cached, 1e-9):.0f}x")
    assert loaded == 1 and math.isfinite(t_open)


if __name__ == "__main__":
    main()
