"""Benchmark: evaluate the ground truth of R2R val_unseen, ours vs the official code's structure.

The baseline follows Matterport3DSimulator ``tasks/R2R/eval.py`` (+ EnvDrop's SPL and the
HAMT/r4r-style ``cal_dtw`` / ``cal_cls``): a networkx graph per scan from the connectivity JSON,
``nx.all_pairs_dijkstra_path_length``, then per-episode Python loops. Ours: a fresh
:class:`vln.graph.NavGraph` (SciPy Dijkstra) and :class:`vln.evaluate.Evaluator`. Both timings
include reading the graphs; the split file is read once, outside the timings. The run also
checks that both give the same per-episode numbers.

Run: ``python bench/bench_metrics.py [--require-data]`` (skips when ../shared/data is absent, see
``bench/shared_data.py``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import networkx as nx
import numpy as np

from vln.evaluate import Evaluator, load_reference_episodes
from vln.graph import NavGraph

from shared_data import SHARED_DATA as DATA, add_require_data, skipped

KEYS = ("nav_error", "oracle_error", "trajectory_length", "spl", "ndtw", "sdtw", "cls")


# ------------------------------------------------------------------ baseline (official structure)
def load_nav_graphs(connectivity: Path, scans) -> dict:
    graphs = {}
    for scan in scans:
        with open(connectivity / f"{scan}_connectivity.json") as f:
            data = json.load(f)
        g = nx.Graph()
        for item in data:
            if not item["included"]:
                continue
            for j, conn in enumerate(item["unobstructed"]):
                if conn and data[j]["included"]:
                    p, q = item["pose"], data[j]["pose"]
                    w = ((p[3] - q[3]) ** 2 + (p[7] - q[7]) ** 2 + (p[11] - q[11]) ** 2) ** 0.5
                    g.add_edge(item["image_id"], data[j]["image_id"], weight=w)
        graphs[scan] = g
    return graphs


def cal_dtw(dist, prediction, reference, threshold=3.0):
    table = np.inf * np.ones((len(prediction) + 1, len(reference) + 1))
    table[0][0] = 0
    for i in range(1, len(prediction) + 1):
        for j in range(1, len(reference) + 1):
            best = min(table[i - 1][j], table[i][j - 1], table[i - 1][j - 1])
            table[i][j] = dist[prediction[i - 1]][reference[j - 1]] + best
    ndtw = np.exp(-table[len(prediction)][len(reference)] / (threshold * len(reference)))
    return ndtw, float(dist[prediction[-1]][reference[-1]] <= threshold) * ndtw


def cal_cls(dist, prediction, reference, threshold=3.0):
    def length(nodes):
        return np.sum([dist[a][b] for a, b in zip(nodes[:-1], nodes[1:])])

    coverage = np.mean([np.exp(-np.min([dist[u][v] for v in prediction]) / threshold) for u in reference])
    expected = coverage * length(reference)
    return coverage * (expected / (expected + np.abs(expected - length(prediction))))


def baseline(connectivity: Path, episodes, submission) -> list[dict]:
    scans = sorted({ep.scan for ep in episodes})
    distances = {s: dict(nx.all_pairs_dijkstra_path_length(g)) for s, g in load_nav_graphs(connectivity, scans).items()}
    out = []
    for ep in episodes:
        dist, path = distances[ep.scan], submission[ep.instr_id]
        start, goal = ep.path[0], ep.path[-1]
        assert path[0][0] == start
        nearest = path[0][0]
        for item in path:
            if dist[item[0]][goal] < dist[nearest][goal]:
                nearest = item[0]
        length = 0
        prev = path[0]
        for curr in path[1:]:
            length += dist[prev[0]][curr[0]]
            prev = curr
        err, sp = dist[path[-1][0]][goal], dist[start][goal]
        nodes = [p[0] for k, p in enumerate(path) if k == 0 or p[0] != path[k - 1][0]]
        ndtw, sdtw = cal_dtw(dist, nodes, list(ep.path))
        out.append({"nav_error": err, "oracle_error": dist[nearest][goal], "trajectory_length": length,
                    "spl": float(err < 3.0) * sp / max(sp, length, 0.01), "ndtw": ndtw, "sdtw": sdtw,
                    "cls": cal_cls(dist, nodes, list(ep.path))})
    return out


# ------------------------------------------------------------------ ours
def ours(connectivity: Path, episodes, submission) -> list[dict]:
    return Evaluator(NavGraph(connectivity), episodes).score(submission).episodes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_require_data(ap)
    args = ap.parse_args(argv)
    split = DATA / "R2R" / "R2R_val_unseen.json"
    if not split.exists():
        return skipped("bench_metrics", f"{split} not found", args.require_data)
    connectivity = DATA / "connectivity"
    episodes = load_reference_episodes(split)
    submission = {ep.instr_id: [[vp, ep.heading, 0.0] for vp in ep.path] for ep in episodes}

    t0 = time.perf_counter()
    ref = baseline(connectivity, episodes, submission)
    t_base = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = ours(connectivity, episodes, submission)
    t_ours = time.perf_counter() - t0

    worst = max(abs(r[k] - g[k]) for r, g in zip(ref, got) for k in KEYS)
    print(f"episodes: {len(episodes)} (val_unseen ground truth, {len({e.scan for e in episodes})} scans)")
    print(f"baseline (networkx all-pairs + per-episode loops): {t_base:.3f} s")
    print(f"ours (NavGraph + Evaluator):                       {t_ours:.3f} s")
    print(f"speed-up: {t_base / t_ours:.1f}x; largest per-episode difference: {worst:.3g}")
    if worst > 1e-12:
        print("bench_metrics: results differ from the baseline", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
