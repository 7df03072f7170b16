"""Dataset hot paths: augmentation-pair selection and validated R2R loading.

1. Edge counts of all shortest paths of a scan (the augmentation sampler's candidate filter):
   the vectorised predecessor walk vs. a Python loop over all pairs that walks each path
   (``len(shortest_path_indices) - 1``), on the same scans (Dijkstra precomputed for both).
2. ``load_split("r2r", ..., "train", graph=...)`` (schema + graph validation, episode expansion)
   vs. plain ``json.load`` of the same file.

Uses the real data in ../shared/data when present, else synthetic grid houses.
Usage: python bench/bench_datasets.py [--scans 4]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from vln.datasets import load_split, write_r2r  # noqa: E402
from vln.datasets.aug_paths import sample_aug_paths, shortest_path_edge_counts  # noqa: E402
from vln.errors import NotConnectedError  # noqa: E402
from vln.graph import NavGraph  # noqa: E402

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def synthetic(tmp: Path) -> Path:
    from graph_builders import write_graph

    rng = np.random.default_rng(0)
    for s in range(6):
        n = 13
        pos = {f"{i}_{j}": (i * 1.5 + rng.uniform(-.3, .3), j * 1.5 + rng.uniform(-.3, .3), 1.5)
               for i in range(n) for j in range(n)}
        edges = [(f"{i}_{j}", f"{i + di}_{j + dj}") for i in range(n) for j in range(n)
                 for di, dj in ((1, 0), (0, 1)) if i + di < n and j + dj < n]
        write_graph(tmp / "connectivity", f"synth{s}", pos, edges)
    nav = NavGraph(tmp / "connectivity")
    paths = sample_aug_paths(nav, nav.scan_ids, 4000, seed=0)
    write_r2r(tmp / "R2R" / "R2R_train.json",
              [p.__class__(p.path_id, p.scan, p.path, p.heading, ("walk ahead",) * 3, p.distance) for p in paths])
    return tmp


def best_of(fn, repeat=3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scans", type=int, default=4, help="scans timed in part 1")
    args = ap.parse_args(argv)
    tmp = None
    data = SHARED
    if not (SHARED / "R2R" / "R2R_train.json").exists():
        tmp = tempfile.TemporaryDirectory()
        data = synthetic(Path(tmp.name))
        print("real data absent: synthetic grid houses")
    nav = NavGraph(data / "connectivity")
    graphs = [nav[s] for s in sorted(nav.scan_ids)[: args.scans]]
    for g in graphs:
        g.predecessors  # Dijkstra outside the timing: both variants need it

    def vectorised():
        return [shortest_path_edge_counts(g.predecessors) for g in graphs]

    def loop():
        out = []
        for g in graphs:
            h = np.full((len(g), len(g)), -1)
            np.fill_diagonal(h, 0)
            for a in np.flatnonzero(g.included):
                for b in np.flatnonzero(g.included):
                    try:
                        h[a, b] = len(g.shortest_path_indices(int(a), int(b))) - 1
                    except NotConnectedError:
                        pass
            out.append(h)
        return out

    fast = vectorised()
    assert all((x == y).all() for x, y in zip(fast, loop())), "vectorised edge counts disagree with the loop"
    pairs = sum(int(g.included.sum()) ** 2 for g in graphs)
    t_vec, t_loop = best_of(vectorised), best_of(loop, 1)
    print(f"edge counts, {len(graphs)} scans, {pairs} pairs: vectorised {t_vec * 1e3:.1f} ms, "
          f"python loop {t_loop * 1e3:.1f} ms, speed-up x{t_loop / t_vec:.0f}")

    train = data / "R2R" / "R2R_train.json"
    nav_all = NavGraph(data / "connectivity")
    load_split("r2r", data, "train", graph=nav_all)  # graphs parsed once, as in training
    t_load = best_of(lambda: load_split("r2r", data, "train", graph=nav_all))
    t_json = best_of(lambda: json.loads(train.read_text()))
    n = len(load_split("r2r", data, "train"))
    print(f"load R2R train ({n} episodes) with graph validation: {t_load * 1e3:.1f} ms, "
          f"plain json.load {t_json * 1e3:.1f} ms, ratio x{t_load / t_json:.2f}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
