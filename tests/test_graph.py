"""Connectivity files: validation errors name the file, viewpoint and field; graph queries."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from graph_builders import TINY_SCAN, graph_records, vp_id, write_graph
from vln.connectivity import read_connectivity
from vln.errors import DataFormatError, ExcludedViewpointError, NotConnectedError, UnknownScanError, UnknownViewpointError
from vln.graph import NavGraph


def test_neighbours_distances_and_paths_on_the_tiny_house(tiny_connectivity):
    nav = NavGraph(tiny_connectivity)
    g = nav[TINY_SCAN]
    assert nav.scan_ids == [TINY_SCAN]
    assert g.neighbours(vp_id("A")) == [vp_id("B"), vp_id("D")]  # F is excluded; index order
    assert g.distance(vp_id("A"), vp_id("C")) == 7.0
    assert g.distance(vp_id("A"), vp_id("E")) == 6.0
    assert g.distance(vp_id("D"), vp_id("B")) == pytest.approx(4.0 + math.sqrt(10.0))
    assert g.shortest_path(vp_id("A"), vp_id("C")) == [vp_id(n) for n in "ABC"]
    assert g.shortest_path(vp_id("E"), vp_id("E")) == [vp_id("E")]
    nxt = g.next_step_indices(g.index[vp_id("C")])
    assert g.viewpoint_ids[nxt[g.index[vp_id("E")]]] == vp_id("B")
    assert nxt[g.index[vp_id("C")]] == g.index[vp_id("C")]
    assert g.has_edge(vp_id("A"), vp_id("B")) and not g.has_edge(vp_id("A"), vp_id("F"))
    with pytest.raises(ExcludedViewpointError):
        g.distance(vp_id("F"), vp_id("A"))
    with pytest.raises(UnknownViewpointError, match="not in the connectivity graph"):
        g.neighbours("f" * 32)
    with pytest.raises(UnknownScanError, match="nosuch"):
        nav["nosuch"]
    g.check_path([vp_id(n) for n in "ABBE"])
    with pytest.raises(NotConnectedError, match="steps 0 and 1"):
        g.check_path([vp_id("A"), vp_id("E")])


def test_positions_keep_both_precisions(tmp_path):
    write_graph(tmp_path, "p", {"P": (0.1, 0.2, 0.3), "Q": (1.1, 0.2, 0.3)}, [("P", "Q")])
    g = NavGraph(tmp_path)["p"]
    assert g.positions[0].tolist() == [0.1, 0.2, 0.3]
    assert g.positions_f32.dtype == np.float32 and g.positions_f32[0, 0] == np.float32(0.1)


def test_scans_are_loaded_lazily(tmp_path):
    write_graph(tmp_path, "s1", {"P": (0, 0, 0), "Q": (1, 0, 0)}, [("P", "Q")])
    (tmp_path / "s2_connectivity.json").write_text("not json")
    nav = NavGraph(tmp_path)
    assert len(nav["s1"]) == 2  # the broken s2 is never read
    with pytest.raises(DataFormatError, match="s2_connectivity.json: is not valid JSON"):
        nav["s2"]


def corrupt(tmp_path, mutate):
    recs = graph_records({"P": (0, 0, 0), "Q": (1, 0, 0), "R": (2, 0, 0)}, [("P", "Q"), ("Q", "R")])
    mutate(recs)
    path = tmp_path / "bad_connectivity.json"
    path.write_text(json.dumps(recs))
    return path


@pytest.mark.parametrize("mutate,field,message", [
    (lambda r: r[1].pop("pose"), "pose", "is missing"),
    (lambda r: r[1].__setitem__("pose", [0.0] * 12), "pose", "16 numbers"),
    (lambda r: r[1]["pose"].__setitem__(3, float("nan")), "pose", "finite numbers"),
    (lambda r: r[1]["pose"].__setitem__(3, "x"), "pose", "finite numbers"),
    (lambda r: r[1].__setitem__("unobstructed", [True, False]), "unobstructed", "list of 3 booleans"),
    (lambda r: r[1]["unobstructed"].__setitem__(0, 1), "unobstructed", "booleans"),
    (lambda r: r[1].__setitem__("included", "yes"), "included", "boolean"),
    (lambda r: r[2].__setitem__("image_id", r[1]["image_id"]), "image_id", "duplicates record 1"),
    (lambda r: r[0]["unobstructed"].__setitem__(2, True), "unobstructed", "not symmetric"),
])
def test_malformed_files_name_file_viewpoint_and_field(tmp_path, mutate, field, message):
    path = corrupt(tmp_path, mutate)
    with pytest.raises(DataFormatError) as err:
        read_connectivity(path)
    text = str(err.value)
    assert str(path) in text and f"field '{field}'" in text and message in text
    assert "record " in text


def test_real_graph_counts(real_data):
    nav = NavGraph(real_data / "connectivity")
    graphs = nav.load_all()
    assert len(graphs) == 90
    assert sum(len(g) for g in graphs) == 10_800
    assert sum(int(g.included.sum()) for g in graphs) == 10_567
    assert sum(int(g.adjacency.sum()) for g in graphs) == 42_936
