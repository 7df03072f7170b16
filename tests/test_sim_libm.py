"""rel_heading / rel_elevation / rel_distance to the last bit: the C library's atan2f / atan2.

The oracle below recomputes MatterSim's float32 operands from the float32 positions and calls
the C library's ``atan2f`` / ``atan2`` directly through ctypes, one element at a time; every
entry the simulator serves must have the same bits.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math
import re
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from test_sim import make_sim, random_graph
from vln.candidates import R2R_CAMERA, candidate_table
from vln.sim import libm
from vln.sim.graph_sim import shared_navgraph
from vln.sim.geometry import (HEADING_INCREMENT, VIEW_ELEVATIONS, VIEW_HEADINGS, EdgeGeometry, ViewLists,
                              cos_half_hfov)


@lru_cache(maxsize=None)
def c_functions():
    """ctypes ``atan2f`` / ``atan2`` of the C math library, loaded here independently of vln."""
    lib = ctypes.CDLL("ucrtbase" if sys.platform == "win32" else ctypes.util.find_library("m"))
    f, d = lib.atan2f, lib.atan2
    f.argtypes, f.restype = [ctypes.c_float] * 2, ctypes.c_float
    d.argtypes, d.restype = [ctypes.c_double] * 2, ctypes.c_double
    return f, d


def bits(a) -> np.ndarray:
    """The IEEE bit patterns of a float64 array (so that -0.0 != 0.0 and NaN == NaN)."""
    return np.ascontiguousarray(a, dtype=np.float64).view(np.int64)


def oracle(positions: np.ndarray, src, dst, heading, elevation):
    """MatterSim's rel_heading, rel_elevation, rel_distance of edges src -> dst, element by element.

    Args:
        positions: (N, 3) float32; src, dst: (M,) int; heading, elevation: (M,) float64 radians.
    """
    atan2f, atan2 = c_functions()
    d = positions[dst] - positions[src]  # glm::vec3 subtraction in float32
    dx, dy, dz = d[:, 0], d[:, 1], d[:, 2]
    adj = (math.pi / 2.0 - np.asarray(heading, dtype=np.float64)).tolist()
    cx = np.array([math.cos(a) for a in adj], dtype=np.float32)
    cy = np.array([math.sin(a) for a in adj], dtype=np.float32)
    hor_len = np.sqrt(dx * dx + dy * dy)
    rh = [atan2f(a, b) for a, b in zip((dx * cy - dy * cx).tolist(), (dx * cx + dy * cy).tolist())]
    re = [atan2(a, b) - e for a, b, e in zip(dz.tolist(), hor_len.tolist(), np.asarray(elevation).tolist())]
    rd = np.sqrt(dx * dx + dy * dy + dz * dz)
    return np.array(rh), np.array(re), rd.astype(np.float64)


def test_vectorised_calls_equal_direct_calls_of_the_c_library():
    atan2f, atan2 = c_functions()
    rng = np.random.default_rng(5)
    scale = 10.0 ** rng.integers(-30, 30, size=(2, 4000))
    y, x = rng.normal(size=(2, 4000)) * scale
    special = [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, 1e-45, 3.4e38]
    y = np.concatenate([y, np.repeat(special, len(special))])
    x = np.concatenate([x, np.tile(special, len(special))])
    y32, x32 = y.astype(np.float32), x.astype(np.float32)
    want_f = np.array([atan2f(a, b) for a, b in zip(y32.tolist(), x32.tolist())], dtype=np.float32)
    want_d = np.array([atan2(a, b) for a, b in zip(y.tolist(), x.tolist())])
    assert libm.atan2f(y32, x32).dtype == np.float32
    assert libm.atan2f(y32, x32).tobytes() == want_f.tobytes()
    assert libm.atan2(y, x).tobytes() == want_d.tobytes()
    # The per-element path (used when NumPy's loop table is unreachable) gives the same bits.
    assert libm._per_element("atan2f", y32, x32).tobytes() == want_f.tobytes()
    # Broadcasting and shapes: a scalar against a (2, 3) array; empty input.
    grid = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert libm.atan2f(np.float32(0.5), grid).shape == (2, 3)
    assert libm.atan2(1.0, -0.0).shape == () and libm.atan2f([], []).shape == (0,)


def test_sin_and_cos_equal_pythons_math_module():
    """EnvDrop's angle features use math.sin/math.cos, thin wrappers of the C library's."""
    x = np.random.default_rng(2).uniform(-10, 10, size=5000)
    assert libm.sin(x).tobytes() == np.array([math.sin(v) for v in x.tolist()]).tobytes()
    assert libm.cos(x).tobytes() == np.array([math.cos(v) for v in x.tolist()]).tobytes()
    with pytest.raises(TypeError, match="takes 1 arguments"):
        libm.apply("sin", x, x)


def test_angle_features_are_envdrops_math_sin_cos_bit_for_bit():
    """EnvDrop: np.array([math.sin(h), math.cos(h), math.sin(e), math.cos(e)] * 32, float32)."""
    from envs.angles import angle_features
    from envs.tables import candidate_angles

    rng = np.random.default_rng(4)
    h, e = rng.uniform(-7, 7, size=200), rng.uniform(-1, 1, size=200)
    want = np.stack([np.array([math.sin(a), math.cos(a), math.sin(b), math.cos(b)] * 32, dtype=np.float32)
                     for a, b in zip(h.tolist(), e.tolist())])
    assert angle_features(h, e).tobytes() == want.tobytes()
    assert np.stack([angle_features(a, b) for a, b in zip(h, e)]).tobytes() == want.tobytes()
    rel = h[:, None] - np.arange(12) * HEADING_INCREMENT
    assert candidate_angles(h, e)[:, 3, :].tobytes() == angle_features(rel[:, 3], e)[:, :4].tobytes()


def test_numpy_loop_indices_match_the_installed_headers():
    header = Path(np.get_include()) / "numpy" / "__ufunc_api.h"
    if not header.exists():
        pytest.skip(f"NumPy's C headers are not installed ({header})")
    text = header.read_text()
    for index, name in libm.UFUNC_LOOP_NAMES.items():
        found = re.search(rf"#define {name} \\\s*\n.*\n\s*PyUFunc_API\[(\d+)\]", text)
        assert found and int(found.group(1)) == index, name


def test_simulator_serves_the_c_library_bits_on_random_graphs(tmp_path):
    """Synthetic twin of the real-data sweep: continuous headings and the 36 discrete views."""
    rng = np.random.default_rng(11)
    scan = random_graph(tmp_path / "c", "bits0000001", rng, n=16)
    cont = make_sim(tmp_path / "c", discrete=False, restricted=False)
    disc = make_sim(tmp_path / "c")
    graph = cont.navgraph[scan]
    pos = graph.positions_f32
    for ix in np.flatnonzero(graph.included[:-1]):
        vp = graph.viewpoint_ids[ix]
        for sim, heading, elevation in [(cont, float(rng.uniform(-7, 7)), float(rng.uniform(-0.9, 0.9)))] + [
                (disc, float(VIEW_HEADINGS[v]), float(VIEW_ELEVATIONS[v])) for v in range(0, 36, 5)]:
            sim.newEpisode([scan], [vp], [heading], [elevation])
            st = sim.getState()[0]
            locs = st.navigableLocations[1:]
            if not locs:
                continue
            dst = np.array([loc.ix for loc in locs])
            rh, re, rd = oracle(pos, np.full(len(dst), ix), dst, np.full(len(dst), st.heading),
                                np.full(len(dst), st.elevation))
            np.testing.assert_array_equal(bits([loc.rel_heading for loc in locs]), bits(rh))
            np.testing.assert_array_equal(bits([loc.rel_elevation for loc in locs]), bits(re))
            np.testing.assert_array_equal(bits([loc.rel_distance for loc in locs]), bits(rd))


def test_mattersim_value_of_the_issue_example(real_data):
    """Observed on the C++ MatterSim (glibc): 17DRP5sb8fy, heading 0, elevation -30 degrees."""
    sim = make_sim(real_data / "connectivity")
    sim.newEpisode(["17DRP5sb8fy"], ["da5fa65c13e643719a20cbb818c9a85d"], [0.0], [math.radians(-30)])
    loc = {loc.viewpointId: loc for loc in sim.getState()[0].navigableLocations}["c429b363fd3145fe8a7631bbe9644066"]
    assert loc.rel_heading == 0.13074101507663727  # float32(double atan2) would be 0.13074100017547607


def test_full_36_view_sweep_of_the_real_graphs_matches_the_c_library_bit_for_bit(real_data):
    graphs = shared_navgraph(str((real_data / "connectivity").resolve())).load_all()
    cos_hfov = cos_half_hfov(R2R_CAMERA["vfov"], R2R_CAMERA["width"], R2R_CAMERA["height"])
    lists = [ViewLists.of(g, cos_hfov) for g in graphs]  # what the simulator serves, view by view
    tables = [candidate_table(g) for g in graphs]
    entries = differing = candidates = 0
    for g, vl, table in zip(graphs, lists, tables):
        geom = EdgeGeometry.of(g)
        # rel_heading does not depend on the elevation level: one oracle call per (heading step, edge).
        key, inverse = np.unique((vl.view % 12) * len(geom.src) + vl.edge, return_inverse=True)
        step, edge = np.divmod(key, len(geom.src))
        rh, _, _ = oracle(g.positions_f32, geom.src[edge], geom.dst[edge], step * HEADING_INCREMENT,
                          np.zeros(len(edge)))
        # rel_elevation = atan2(...) - view elevation, as in MatterSim: one atan2 per edge.
        _, angle, dist = oracle(g.positions_f32, geom.src, geom.dst, np.zeros(len(geom.src)), np.zeros(len(geom.src)))
        re, rd = angle[vl.edge] - VIEW_ELEVATIONS[vl.view], dist[vl.edge]
        want = np.stack([rh[inverse], re, rd])
        got = np.stack([vl.rel_heading, vl.rel_elevation, vl.rel_distance])
        differing += int((bits(got) != bits(want)).sum())
        entries += len(vl.edge)
        # EnvDrop's candidate heading = view heading + rel_heading of the view it is best seen in.
        rh_of = dict(zip(zip(step.tolist(), edge.tolist()), rh.tolist()))
        edge_of = {(s, d): e for e, (s, d) in enumerate(zip(geom.src.tolist(), geom.dst.tolist()))}
        src = np.repeat(np.arange(len(g)), table.counts()).tolist()
        rel = [rh_of[p % 12, edge_of[s, d]] for s, d, p in zip(src, table.viewpoint.tolist(), table.point_id.tolist())]
        differing += int((bits(table.normalized_heading) != bits(VIEW_HEADINGS[table.point_id] + rel)).sum())
        candidates += len(rel)
    print(f"\n36-view sweep of {sum(int(g.included.sum()) for g in graphs):,} viewpoints: {entries:,} entries and "
          f"{candidates:,} candidates, {differing} differ from direct atan2f/atan2 calls")
    assert entries > 300_000 and candidates > 40_000
    assert differing == 0
