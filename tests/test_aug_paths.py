"""Augmentation-path sampling: 4-6 edge shortest paths, determinism, R2R output and the CLI."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from graph_builders import TINY_SCAN, write_graph
from scripts.sample_aug_paths import main
from vln.datasets import PathRecord, load_r2r, read_r2r_paths, write_r2r
from vln.datasets.aug_paths import candidate_pairs, sample_aug_paths, shortest_path_edge_counts
from vln.graph import NavGraph


def grid_house(directory, scan, size=5, seed=0):
    """A size x size grid of viewpoints 1-2 m apart with a few random diagonals; one excluded."""
    rng = np.random.default_rng(seed)
    pos, edges = {}, []
    for i in range(size):
        for j in range(size):
            pos[f"{i}_{j}"] = (i * 1.5 + rng.uniform(-0.3, 0.3), j * 1.5 + rng.uniform(-0.3, 0.3), 1.5)
            if i:
                edges.append((f"{i - 1}_{j}", f"{i}_{j}"))
            if j:
                edges.append((f"{i}_{j - 1}", f"{i}_{j}"))
            if i and j and rng.random() < 0.3:
                edges.append((f"{i - 1}_{j - 1}", f"{i}_{j}"))
    write_graph(directory, scan, pos, edges, excluded={"2_2"})


@pytest.fixture
def houses(tmp_path):
    d = tmp_path / "connectivity"
    grid_house(d, "gridScanA", 5, seed=1)
    grid_house(d, "gridScanB", 6, seed=2)
    grid_house(d, "gridScanC", 4, seed=3)  # not a training scan
    return NavGraph(d)


def test_edge_counts_equal_the_length_of_each_shortest_path(houses):
    g = houses["gridScanB"]
    hops = shortest_path_edge_counts(g.predecessors)
    for a in range(len(g)):
        for b in range(len(g)):
            if not (g.included[a] and g.included[b]):
                assert hops[a, b] == (0 if a == b else -1)
            else:
                assert hops[a, b] == len(g.shortest_path_indices(a, b)) - 1


def test_candidates_are_exactly_the_pairs_with_4_to_6_edges(houses):
    g = houses["gridScanA"]
    brute = [(a, b) for a in range(len(g)) for b in range(len(g))
             if g.included[a] and g.included[b] and a != b and 4 <= len(g.shortest_path_indices(a, b)) - 1 <= 6]
    assert [tuple(p) for p in candidate_pairs(g).tolist()] == brute


def test_sampled_paths_are_4_to_6_edge_shortest_paths(houses):
    paths = sample_aug_paths(houses, ["gridScanA", "gridScanB"], 150, seed=7)
    assert len(paths) == 150 and {p.scan for p in paths} == {"gridScanA", "gridScanB"}
    assert [p.path_id for p in paths] == list(range(1_000_000, 1_000_150))
    assert len({(p.scan, p.path[0], p.path[-1]) for p in paths}) == 150  # no pair twice
    for p in paths:
        g = houses[p.scan]
        assert 4 <= len(p.path) - 1 <= 6
        assert list(p.path) == g.shortest_path(p.path[0], p.path[-1])
        steps = [np.linalg.norm(g.position(a) - g.position(b)) for a, b in zip(p.path, p.path[1:])]
        assert p.distance == pytest.approx(sum(steps), abs=1e-9)
        assert p.distance == pytest.approx(g.distance(p.path[0], p.path[-1]), abs=1e-9)
        assert 0.0 <= p.heading < 2 * math.pi and p.instructions == ()
        assert all(g.included[g.index[v]] for v in p.path)


def test_sampling_is_deterministic_for_a_seed(houses):
    a = sample_aug_paths(houses, ["gridScanB", "gridScanA"], 40, seed=3)
    assert a == sample_aug_paths(houses, ["gridScanA", "gridScanB", "gridScanA"], 40, seed=3)
    assert a != sample_aug_paths(houses, ["gridScanA", "gridScanB"], 40, seed=4)


def test_all_pairs_and_limits(houses):
    total = len(candidate_pairs(houses["gridScanA"]))
    every = sample_aug_paths(houses, ["gridScanA"], None, seed=0, first_path_id=5)
    assert len(every) == total and min(p.path_id for p in every) == 5
    with pytest.raises(ValueError, match=f"only {total} start/goal pairs"):
        sample_aug_paths(houses, ["gridScanA"], total + 1, seed=0)
    clipped = sample_aug_paths(houses, ["gridScanA"], total + 1, seed=0, first_path_id=5, clip=True)
    assert [p.path for p in clipped] == [p.path for p in every]  # clip takes them all, as num=None
    with pytest.raises(ValueError, match="min_edges"):
        sample_aug_paths(houses, ["gridScanA"], 1, seed=0, min_edges=5, max_edges=4)
    short = sample_aug_paths(houses, ["gridScanA"], 10, seed=0, min_edges=1, max_edges=1)
    assert all(len(p.path) == 2 for p in short)


def test_written_file_is_a_valid_r2r_file(tmp_path, houses):
    out = write_r2r(tmp_path / "aug.json", sample_aug_paths(houses, ["gridScanA"], 20, seed=1))
    recs = read_r2r_paths(out, graph=houses)
    assert len(recs) == 20 and all(r.instructions == () for r in recs)
    assert all(e.instruction == "" for e in load_r2r(out, graph=houses, uninstructed="empty"))


def test_cli_with_scan_list_and_with_scans_from_a_train_file(tmp_path, houses):
    conn = str(houses.directory)
    out1 = tmp_path / "a.json"
    assert main(["--connectivity", conn, "--scans", "gridScanA,gridScanB", "--num", "30", "--seed", "5",
                 "--out", str(out1)]) == 0
    train = write_r2r(tmp_path / "R2R_train.json", [
        PathRecord(1, "gridScanA", ("0_0", "0_1"), 0.0, ("x",), 1.0),
        PathRecord(2, "gridScanB", ("0_0",), 0.0, ("y",), 0.0),
    ])
    out2 = tmp_path / "b.json"
    main(["--connectivity", conn, "--scans-from", str(train), "--num", "30", "--seed", "5", "--out", str(out2)])
    assert out1.read_bytes() == out2.read_bytes()
    data = json.loads(out1.read_text())
    assert len(data) == 30 and {d["scan"] for d in data} <= {"gridScanA", "gridScanB"}
    with pytest.raises(SystemExit, match="noSuchScan"):
        main(["--connectivity", conn, "--scans", "gridScanA,noSuchScan", "--out", str(tmp_path / "c.json")])


def test_tiny_house_has_no_long_enough_paths(tiny_connectivity):
    # The 6-viewpoint house is at most 3 edges across: nothing to sample, and a clear error.
    nav = NavGraph(tiny_connectivity)
    assert len(candidate_pairs(nav[TINY_SCAN])) == 0
    with pytest.raises(ValueError, match="only 0"):
        sample_aug_paths(nav, [TINY_SCAN], 1, seed=0)
