"""Vectorised EnvDrop candidates == stepping the simulator through the 36 views."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from test_sim import make_sim, random_graph
from vln.candidates import candidate_table, stepped_candidates
from vln.sim.actions import equivalent_actions


def assert_tables_match_stepping(sim, scans):
    checked = 0
    for scan in scans:
        g = sim.navgraph[scan]
        table = candidate_table(g)
        for ix, vp in enumerate(g.viewpoint_ids):
            if not g.included[ix]:
                assert table.counts()[ix] == 0
                continue
            assert table.as_dicts(g, ix) == stepped_candidates(sim, scan, vp), (scan, vp)
            checked += 1
    return checked


def test_candidates_match_the_36_view_loop_on_random_graphs(tmp_path):
    rng = np.random.default_rng(11)
    scans = [random_graph(tmp_path / "c", f"cand{k:07d}", rng, n=16) for k in range(5)]
    sim = make_sim(tmp_path / "c")
    assert assert_tables_match_stepping(sim, scans) == 5 * 15


def random_scan(tmp_path, scan_id: str, seed: int, n: int):
    """(simulator, scan id, its graph, its candidate table) of one random graph of ``n`` viewpoints."""
    scan = random_graph(tmp_path / "c", scan_id, np.random.default_rng(seed), n=n)
    sim = make_sim(tmp_path / "c")
    g = sim.navgraph[scan]
    return sim, scan, g, candidate_table(g)


def test_candidate_distances_are_the_simulators_rel_distance(tmp_path):
    sim, scan, g, table = random_scan(tmp_path, "dist0000001", 7, 14)
    checked = 0
    for ix in np.flatnonzero(g.included):
        seen = {}
        for view in range(36):
            sim.newEpisode([scan], [g.viewpoint_ids[ix]], [(view % 12) * math.pi / 6], [(view // 12 - 1) * math.pi / 6])
            seen.update((loc.viewpointId, loc.rel_distance) for loc in sim.getState()[0].navigableLocations[1:])
        r = table.rows(ix)
        assert table.rel_distance[r].tolist() == [seen[g.viewpoint_ids[v]] for v in table.viewpoint[r]]
        checked += r.stop - r.start
    assert checked > 20


def test_every_neighbour_with_a_horizontal_offset_is_a_candidate(tmp_path):
    _, _, g, table = random_scan(tmp_path, "cover000001", 5, 12)
    for ix in np.flatnonzero(g.included):
        assert sorted(table.viewpoint[table.rows(ix)].tolist()) == g.neighbour_indices(ix).tolist()


def test_equivalent_actions_reach_each_candidate(tmp_path):
    sim, scan, g, table = random_scan(tmp_path, "equiv000001", 2, 12)
    for ix in np.flatnonzero(g.included):
        for start_view in (0, 13, 35):
            for row in range(*table.rows(ix).indices(len(table.viewpoint))):
                sim.newEpisode([scan], [g.viewpoint_ids[ix]], [(start_view % 12) * math.pi / 6],
                               [(start_view // 12 - 1) * math.pi / 6])
                for a in equivalent_actions(start_view, int(table.point_id[row]), int(table.nav_index[row])):
                    sim.makeAction([a[0]], [a[1]], [a[2]])
                st = sim.getState()[0]
                assert st.location.ix == table.viewpoint[row]
                assert st.viewIndex == table.point_id[row]


def test_candidates_match_stepping_on_real_scans(real_data):
    sim = make_sim(real_data / "connectivity")
    scans = sim.navgraph.scan_ids[::15]  # 6 scans spread over the list
    assert assert_tables_match_stepping(sim, scans) > 400


def test_every_ground_truth_path_is_walkable(real_data):
    """Each R2R path can be followed with EnvDrop's equivalent actions in the simulator."""
    sim = make_sim(real_data / "connectivity")
    walked = 0
    for split in ("train", "val_seen", "val_unseen"):
        for item in json.loads((real_data / "R2R" / f"R2R_{split}.json").read_text()):
            g = sim.navgraph[item["scan"]]
            table = candidate_table(g)
            sim.newEpisode([item["scan"]], [item["path"][0]], [item["heading"]], [0.0])
            for nxt in item["path"][1:]:
                st = sim.getState()[0]
                rows = table.rows(st.location.ix)
                hit = np.flatnonzero(table.viewpoint[rows] == g.index[nxt])
                assert len(hit) == 1, (item["path_id"], nxt)
                row = rows.start + int(hit[0])
                for a in equivalent_actions(st.viewIndex, int(table.point_id[row]), int(table.nav_index[row])):
                    sim.makeAction([a[0]], [a[1]], [a[2]])
                assert sim.getState()[0].location.viewpointId == nxt
            walked += 1
    assert walked == 4675 + 340 + 783
