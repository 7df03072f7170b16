"""The evaluator on the real R2R splits and Matterport3D graphs in ../shared (skips when absent).

Synthetic twins: tests/test_evaluate.py and tests/test_metrics.py.
"""
from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest

from vln.evaluate import Evaluator, load_reference_episodes
from vln.graph import NavGraph

#: val_unseen paths that are valid but no longer shortest in the current graphs (data README).
NOT_SHORTEST = {601, 2847, 3108, 6939, 1404, 3090, 5476, 7053}


@pytest.fixture(scope="module")
def graphs(real_data):
    return NavGraph(real_data / "connectivity")


@pytest.mark.parametrize("split", ["train", "val_seen", "val_unseen"])
def test_ground_truth_trajectories_score_perfectly(real_data, graphs, split):
    episodes = load_reference_episodes(real_data / "R2R" / f"R2R_{split}.json", graphs)
    ev = Evaluator(graphs, episodes)
    res = ev.score({ep.instr_id: [[vp, ep.heading, 0.0] for vp in ep.path] for ep in episodes})
    s = res.summary
    assert s["num_episodes"] == len(episodes)
    assert s["sr"] == 1.0 and s["osr"] == 1.0 and s["nav_error"] == 0.0
    assert s["ndtw"] == 1.0 and s["sdtw"] == 1.0 and s["cls"] == 1.0
    below = {int(r["instr_id"].split("_")[0]) for r in res.episodes if r["spl"] < 1.0}
    assert below == (NOT_SHORTEST if split == "val_unseen" else set())


def test_random_walks_match_the_official_evaluation_on_a_real_scan(real_data, graphs):
    """Bit-equal nav/oracle error, length, success and SPL vs tasks/R2R/eval.py's networkx structure."""
    episodes = [ep for ep in load_reference_episodes(real_data / "R2R" / "R2R_val_unseen.json")
                if ep.scan == "QUCTc6BB5sX"]
    scan = json.loads((real_data / "connectivity" / "QUCTc6BB5sX_connectivity.json").read_text())
    g = nx.Graph()
    for i, item in enumerate(scan):
        if not item["included"]:
            continue
        for j, conn in enumerate(item["unobstructed"]):
            if conn and scan[j]["included"]:
                p, q = item["pose"], scan[j]["pose"]
                w = ((p[3] - q[3]) ** 2 + (p[7] - q[7]) ** 2 + (p[11] - q[11]) ** 2) ** 0.5
                g.add_edge(item["image_id"], scan[j]["image_id"], weight=w)
    dist = dict(nx.all_pairs_dijkstra_path_length(g))
    rng = np.random.default_rng(0)
    sub = {}
    for ep in episodes:
        walk = [ep.path[0]]
        for _ in range(int(rng.integers(0, 12))):
            options = sorted(g.neighbors(walk[-1])) + [walk[-1]]
            walk.append(options[int(rng.integers(len(options)))])
        sub[ep.instr_id] = [[v, 0.0, 0.0] for v in walk]
    res = Evaluator(graphs, episodes).score(sub)
    assert 0 < res.summary["sr"] < 1
    for ep, r in zip(episodes, res.episodes):
        walk, goal = [e[0] for e in sub[ep.instr_id]], ep.path[-1]
        length = 0
        for prev, curr in zip(walk[:-1], walk[1:]):
            length += dist[prev][curr]
        err = dist[walk[-1]][goal]
        sp = dist[walk[0]][goal]
        assert r["instr_id"] == ep.instr_id
        assert r["nav_error"] == err
        assert r["oracle_error"] == min(dist[v][goal] for v in walk)
        assert r["trajectory_length"] == length
        assert r["success"] == (err < 3.0)
        assert r["spl"] == float(err < 3.0) * sp / max(sp, length, 0.01)
