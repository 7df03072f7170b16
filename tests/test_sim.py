"""The pure-Python simulator against the MatterSim rules (shared/reference/mattersim_semantics.md)."""
from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from graph_builders import TINY_SCAN, vp_id, write_graph
from vln.errors import ExcludedViewpointError, InvalidActionError, SimulatorStateError, UnknownScanError, UnknownViewpointError
from vln.sim import Simulator, make_simulator
from vln.sim.geometry import HEADING_INCREMENT, snap_heading

R2R_VFOV = math.radians(60)


def make_sim(conn, batch=1, discrete=True, restricted=True, width=640, height=480, vfov=R2R_VFOV):
    sim = Simulator()
    sim.setNavGraphPath(str(conn))
    sim.setRenderingEnabled(False)
    sim.setDiscretizedViewingAngles(discrete)
    sim.setRestrictedNavigation(restricted)
    sim.setCameraResolution(width, height)
    sim.setCameraVFOV(vfov)
    sim.setBatchSize(batch)
    sim.initialize()
    return sim


def ids(state):
    return [loc.viewpointId for loc in state.navigableLocations]


def star_graph(tmp_path, angles_deg, dist=2.0, dz=0.0, scan="starScan0001"):
    """Centre 'O' at the origin and one neighbour per heading angle (degrees clockwise from +y)."""
    pos = {"O": (0.0, 0.0, 1.5)}
    for k, a in enumerate(angles_deg):
        r = math.radians(a)
        pos[f"N{k}"] = (dist * math.sin(r), dist * math.cos(r), 1.5 + dz)
    edges = [("O", f"N{k}") for k in range(len(angles_deg))]
    d = tmp_path / "conn"
    write_graph(d, scan, pos, edges)
    return d, scan


# ----------------------------------------------------------------------------- headings
def test_heading_wraps_to_non_negative_range(tiny_connectivity):
    sim = make_sim(tiny_connectivity, discrete=False)
    sim.newEpisode([TINY_SCAN], [vp_id("A")], [-0.1], [0.0])
    assert sim.getState()[0].heading == pytest.approx(2 * math.pi - 0.1, abs=1e-15)
    sim.newEpisode([TINY_SCAN], [vp_id("A")], [7.0], [0.0])
    assert sim.getState()[0].heading == math.fmod(7.0, 2 * math.pi)
    sim.makeAction([0], [-7.0], [0.0])
    assert 0.0 <= sim.getState()[0].heading < 2 * math.pi


def test_heading_snapping_reproduces_the_floating_point_tie_breaking():
    # The reference observation: an exact 15-degree tie goes whichever way rounding sends it.
    assert snap_heading(17 * math.pi / 12)[0] == 9
    assert snap_heading(41 * math.pi / 12)[0] == 8
    assert snap_heading(2 * math.pi - 0.01) == (0, 0.0)  # step 12 becomes 0
    assert snap_heading(-0.3)[0] == 11


@pytest.mark.parametrize("elevation,level,value", [
    (-0.27, 0, -math.pi / 6), (-math.pi / 12 - 1e-12, 0, -math.pi / 6), (-math.pi / 12, 1, 0.0),
    (0.0, 1, 0.0), (math.pi / 12, 1, 0.0), (math.pi / 12 + 1e-12, 2, math.pi / 6), (1.4, 2, math.pi / 6),
])
def test_elevation_snapping_and_view_index(tiny_connectivity, elevation, level, value):
    sim = make_sim(tiny_connectivity)
    sim.newEpisode([TINY_SCAN], [vp_id("A")], [math.radians(95)], [elevation])
    st = sim.getState()[0]
    assert st.elevation == value
    assert st.heading == 3 * HEADING_INCREMENT
    assert st.viewIndex == 3 + 12 * level


def test_discrete_turns_use_only_the_sign_and_elevation_stops_at_30_degrees(tiny_connectivity):
    sim = make_sim(tiny_connectivity)
    sim.newEpisode([TINY_SCAN], [vp_id("A")], [0.0], [0.0])
    sim.makeAction([0], [0.001], [5.0])
    st = sim.getState()[0]
    assert (st.viewIndex, st.heading, st.elevation) == (25, HEADING_INCREMENT, math.pi / 6)
    sim.makeAction([0], [0], [1])  # already at +30: stays
    assert sim.getState()[0].viewIndex == 25
    for _ in range(2):
        sim.makeAction([0], [-3.0], [-1e-9])
    st = sim.getState()[0]
    assert (st.viewIndex, st.heading, st.elevation) == (11, 11 * HEADING_INCREMENT, -math.pi / 6)
    assert st.step == 4


def test_continuous_elevation_is_clamped_and_view_index_stays_zero(tiny_connectivity):
    sim = make_sim(tiny_connectivity, discrete=False)
    sim.newEpisode([TINY_SCAN], [vp_id("A")], [0.0], [2.0])
    st = sim.getState()[0]
    assert st.elevation == 0.94 and st.viewIndex == 0
    assert sim.setElevationLimits(-0.5, 0.5) is True and sim.setElevationLimits(0.1, 0.5) is False
    sim.makeAction([0], [0.0], [-3.0])
    assert sim.getState()[0].elevation == -0.5


# ----------------------------------------------------------------------------- navigable locations
def test_fov_uses_vfov_times_aspect_and_is_inclusive_at_the_boundary(tmp_path):
    # R2R settings: HFOV = 60deg * 640 / 480 = 80deg, so +-40deg (wider than the true ~75deg).
    conn, scan = star_graph(tmp_path, [0.0, 39.0, -39.5, 40.2, -40.2, 90.0, 180.0])
    sim = make_sim(conn)
    sim.newEpisode([scan], [vp_id("O")], [0.0], [0.0])
    assert set(ids(sim.getState()[0])) == {vp_id(n) for n in ("O", "N0", "N1", "N2")}
    # Exactly on the boundary the float32 cosine decides: the neighbour at 40deg is kept iff
    # float32(cos) >= cos(40deg), as in MatterSim (>=, not >).
    conn2, scan2 = star_graph(tmp_path / "b", [40.0], scan="edgeScan0001")
    sim2 = make_sim(conn2)
    sim2.newEpisode([scan2], [vp_id("O")], [0.0], [0.0])
    pos = sim2.navgraph[scan2].positions_f32
    d = pos[1] - pos[0]
    h = np.float32(np.sqrt(d[0] * d[0] + d[1] * d[1]))
    c = (d[0] * (np.float32(1) / h)) * np.float32(math.cos(math.pi / 2)) + (d[1] * (np.float32(1) / h)) * np.float32(1.0)
    expect_kept = float(np.float32(c)) >= math.cos(R2R_VFOV * 640 / 480 / 2.0)
    assert (len(sim2.getState()[0].navigableLocations) == 2) == expect_kept


def test_vertical_fov_is_not_tested_and_rel_elevation_is_relative(tmp_path):
    conn, scan = star_graph(tmp_path, [10.0], dist=1.0, dz=3.0)  # 71 degrees above the horizon
    sim = make_sim(conn)
    sim.newEpisode([scan], [vp_id("O")], [0.0], [-0.6])
    st = sim.getState()[0]
    assert len(st.navigableLocations) == 2
    loc = st.navigableLocations[1]
    assert loc.rel_elevation == pytest.approx(math.atan2(3.0, 1.0) + math.pi / 6, abs=1e-6)
    assert loc.rel_heading == pytest.approx(math.radians(10), abs=1e-6)
    assert loc.rel_distance == pytest.approx(math.sqrt(10.0), abs=1e-6)


def test_sorted_by_angular_distance_with_current_location_first(tmp_path):
    conn, scan = star_graph(tmp_path, [-35.0, 5.0, 20.0, -12.0])
    sim = make_sim(conn)
    sim.newEpisode([scan], [vp_id("O")], [0.0], [0.0])
    st = sim.getState()[0]
    assert ids(st) == [vp_id(n) for n in ("O", "N1", "N3", "N2", "N0")]
    first = st.navigableLocations[0]
    assert (first.rel_heading, first.rel_elevation, first.rel_distance) == (0.0, 0.0, 0.0)
    assert st.navigableLocations[2].rel_heading < 0  # to the left is negative


def test_restricted_navigation_off_lists_every_neighbour(tmp_path):
    conn, scan = star_graph(tmp_path, [0.0, 90.0, 180.0, 270.0])
    sim = make_sim(conn, restricted=False)
    sim.newEpisode([scan], [vp_id("O")], [0.0], [0.0])
    assert len(sim.getState()[0].navigableLocations) == 5


def test_excluded_viewpoints_are_never_navigable_and_cannot_be_started_at(tiny_connectivity):
    sim = make_sim(tiny_connectivity, restricted=False)
    sim.newEpisode([TINY_SCAN], [vp_id("A")], [0.0], [0.0])
    assert vp_id("F") not in ids(sim.getState()[0])
    with pytest.raises(ExcludedViewpointError, match="excluded from the connectivity graph"):
        sim.newEpisode([TINY_SCAN], [vp_id("F")], [0.0], [0.0])
    with pytest.raises(UnknownViewpointError, match="Could not find viewpointId"):
        sim.newEpisode([TINY_SCAN], ["0" * 32], [0.0], [0.0])
    with pytest.raises(UnknownScanError, match="nosuchscan"):
        sim.newEpisode(["nosuchscan"], [vp_id("A")], [0.0], [0.0])


def test_positions_have_float32_precision(tmp_path):
    write_graph(tmp_path / "c", "precScan0001", {"P": (0.1, 0.2, 1.3), "Q": (2.1, 0.2, 1.3)}, [("P", "Q")])
    sim = make_sim(tmp_path / "c", restricted=False)
    sim.newEpisode(["precScan0001"], [vp_id("P")], [0.0], [0.0])
    loc = sim.getState()[0].location
    assert (loc.x, loc.y, loc.z) == tuple(float(np.float32(v)) for v in (0.1, 0.2, 1.3))
    assert loc.x != 0.1
    rd = sim.getState()[0].navigableLocations[1].rel_distance
    assert rd == float(np.float32(rd))


# ----------------------------------------------------------------------------- actions
def test_move_does_not_turn_and_resets_relative_fields(tiny_connectivity):
    sim = make_sim(tiny_connectivity)
    sim.newEpisode([TINY_SCAN], [vp_id("A")], [math.pi / 2], [0.0])  # facing +x: B is ahead
    st = sim.getState()[0]
    assert ids(st)[1] == vp_id("B")
    sim.makeAction([1], [0], [0])
    st = sim.getState()[0]
    assert st.location.viewpointId == vp_id("B")
    assert st.heading == 3 * HEADING_INCREMENT and st.step == 1
    assert (st.location.rel_heading, st.location.rel_elevation, st.location.rel_distance) == (0.0, 0.0, 0.0)
    assert ids(st)[:2] == [vp_id("B"), vp_id("E")]


def test_invalid_actions_and_batch_sizes_raise_clear_errors(tiny_connectivity):
    sim = make_sim(tiny_connectivity, batch=2)
    with pytest.raises(SimulatorStateError, match="newEpisode"):
        sim.makeAction([0, 0], [0, 0], [0, 0])
    with pytest.raises(SimulatorStateError, match="batch size is 2"):
        sim.newEpisode([TINY_SCAN], [vp_id("A")], [0.0], [0.0])
    sim.newEpisode([TINY_SCAN] * 2, [vp_id("A"), vp_id("B")], [0.0, 0.0], [0.0, 0.0])
    n = len(sim.getState()[1].navigableLocations)
    with pytest.raises(InvalidActionError, match=f"Invalid action index: {n} in environment 1"):
        sim.makeAction([0, n], [0, 0], [0, 0])
    with pytest.raises(InvalidActionError):
        sim.makeAction([-1, 0], [0, 0], [0, 0])
    assert sim.getState()[0].step == 0  # nothing moved
    with pytest.raises(SimulatorStateError):
        sim.makeAction([0], [0], [0])
    with pytest.raises(TypeError):
        sim.newEpisode(TINY_SCAN, vp_id("A"), 0.0, 0.0)


def test_batched_episodes_are_independent(tiny_connectivity):
    sim = make_sim(tiny_connectivity, batch=3)
    sim.newEpisode([TINY_SCAN] * 3, [vp_id("A"), vp_id("B"), vp_id("C")], [math.pi / 2, 0.0, 3.0], [0.0, 0.3, -0.3])
    states = sim.getState()
    assert [s.location.viewpointId for s in states] == [vp_id("A"), vp_id("B"), vp_id("C")]
    assert [s.viewIndex for s in states] == [15, 24, 6]
    sim.makeAction([1, 0, 0], [0, 1, -1], [0, 0, 1])
    states = sim.getState()
    assert [s.viewIndex for s in states] == [15, 25, 17]
    assert states[0].location.viewpointId == vp_id("B")


def test_new_random_episode_is_seeded_and_avoids_excluded(tiny_connectivity):
    def starts(seed):
        sim = Simulator()
        sim.setNavGraphPath(str(tiny_connectivity))
        sim.setRenderingEnabled(False)
        sim.setSeed(seed)
        out = []
        for _ in range(20):
            sim.newRandomEpisode([TINY_SCAN])
            out.append(sim.getState()[0].location.viewpointId)
        return out
    assert starts(3) == starts(3)
    assert vp_id("F") not in starts(3)


def test_rendering_disabled_gives_blank_images_and_registry_lists_backends(tiny_connectivity):
    sim = make_sim(tiny_connectivity, width=64, height=48)
    sim.newEpisode([TINY_SCAN], [vp_id("A")], [0.0], [0.0])
    assert sim.getState()[0].rgb.shape == (48, 64, 3)
    assert isinstance(make_simulator("graph"), Simulator)
    try:
        import MatterSim  # noqa: F401
    except ImportError:
        from vln.errors import DependencyNotInstalled
        with pytest.raises(DependencyNotInstalled, match="not on PyPI|unrelated chemistry"):
            make_simulator("mattersim")


# ----------------------------------------------------------------------------- cache == direct computation
def random_graph(directory, scan, rng, n=14):
    pos = {f"V{i}": (float(rng.uniform(0, 12)), float(rng.uniform(0, 12)), float(1.5 + rng.normal(0, 0.3)))
           for i in range(n)}
    names = list(pos)
    edges = [(a, b) for i, a in enumerate(names) for b in names[i + 1:] if rng.random() < 0.35]
    write_graph(directory, scan, pos, edges, excluded={names[-1]})
    return scan


def test_discrete_cache_equals_direct_computation_on_random_graphs(tmp_path):
    rng = np.random.default_rng(7)
    scans = [random_graph(tmp_path / "c", f"rand{k:07d}", rng) for k in range(4)]
    disc = make_sim(tmp_path / "c")
    cont = make_sim(tmp_path / "c", discrete=False)
    cont.setElevationLimits(-1.0, 1.0)
    for scan in scans:
        g = disc.navgraph[scan]
        for ix, vp in enumerate(g.viewpoint_ids):
            if not g.included[ix]:
                continue
            for view in range(36):
                h, e = (view % 12) * HEADING_INCREMENT, (view // 12 - 1) * (math.pi / 6)
                disc.newEpisode([scan], [vp], [h], [e])
                cont.newEpisode([scan], [vp], [h], [e])
                assert disc.getState()[0].navigableLocations == cont.getState()[0].navigableLocations


def test_float32_emulation_agrees_with_the_double_recipe_of_the_reference(tmp_path):
    """Reference: float32 poses then double maths match MatterSim within ~2e-7 rad and 1e-6 m."""
    rng = np.random.default_rng(3)
    scan = random_graph(tmp_path / "c", "prec0000001", rng, n=20)
    sim = make_sim(tmp_path / "c", restricted=False, discrete=False)
    g = sim.navgraph[scan]
    p = g.positions_f32.astype(np.float64)
    for ix, vp in enumerate(g.viewpoint_ids[:-1]):
        heading = float(rng.uniform(0, 2 * math.pi))
        sim.newEpisode([scan], [vp], [heading], [0.1])
        for loc in sim.getState()[0].navigableLocations[1:]:
            d = p[loc.ix] - p[ix]
            c = np.array([math.cos(math.pi / 2 - heading), math.sin(math.pi / 2 - heading)])
            rh = math.atan2(d[0] * c[1] - d[1] * c[0], d[0] * c[0] + d[1] * c[1])
            assert abs(loc.rel_heading - rh) < 5e-7
            assert abs(loc.rel_elevation - (math.atan2(d[2], math.hypot(d[0], d[1])) - 0.1)) < 1e-6
            assert abs(loc.rel_distance - np.linalg.norm(d)) < 2e-6


def float_bits(x: float) -> int:
    """The IEEE-754 bit pattern of a double (distinguishes -0.0 from 0.0)."""
    return struct.unpack("<q", struct.pack("<d", float(x)))[0]


def test_matches_the_real_mattersim_when_installed(tmp_path):
    """Same states and navigable lists as the C++ simulator, bit for bit (skips when MatterSim is absent)."""
    pytest.importorskip("MatterSim", reason="the C++ MatterSim is not installed (optional back-end)")
    rng = np.random.default_rng(9)
    scan = random_graph(tmp_path / "c", "msim0000001", rng, n=14)
    ours, real = make_sim(tmp_path / "c"), make_simulator("mattersim")
    real.setNavGraphPath(str(tmp_path / "c"))
    real.setRenderingEnabled(False)
    real.setDiscretizedViewingAngles(True)
    real.setCameraResolution(640, 480)
    real.setCameraVFOV(R2R_VFOV)
    real.setBatchSize(1)
    real.initialize()
    g = ours.navgraph[scan]
    fields = ("heading", "elevation")
    loc_fields = ("x", "y", "z", "rel_heading", "rel_elevation", "rel_distance")
    for ix in np.flatnonzero(g.included):
        heading, elevation = float(rng.uniform(0, 7)), float(rng.uniform(-0.8, 0.8))  # one draw for both
        for sim in (ours, real):
            sim.newEpisode([scan], [g.viewpoint_ids[ix]], [heading], [elevation])
        for _ in range(5):
            a, b = ours.getState()[0], real.getState()[0]
            assert (a.viewIndex, a.step) == (b.viewIndex, b.step)
            assert [float_bits(getattr(a, f)) for f in fields] == [float_bits(getattr(b, f)) for f in fields]
            assert [l.viewpointId for l in a.navigableLocations] == [l.viewpointId for l in b.navigableLocations]
            for la, lb in zip(a.navigableLocations, b.navigableLocations):
                assert [float_bits(getattr(la, f)) for f in loc_fields] == \
                    [float_bits(getattr(lb, f)) for f in loc_fields], la.viewpointId
            k = int(rng.integers(len(a.navigableLocations)))
            turn, tilt = int(rng.integers(-1, 2)), int(rng.integers(-1, 2))
            for sim in (ours, real):
                sim.makeAction([k], [turn], [tilt])
