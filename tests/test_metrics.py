"""Metrics on hand-made graphs with hand-computed numbers, and cross-checks against independent code."""
from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
from scipy.sparse.csgraph import dijkstra

from graph_builders import TINY_SCAN, vp_id
from vln import metrics as M
from vln.errors import ExcludedViewpointError, NotConnectedError, UnknownViewpointError
from vln.graph import NavGraph

SQRT10 = math.sqrt(10.0)


@pytest.fixture
def tiny(tiny_connectivity):
    """The 6-viewpoint house: A-B 3, B-C 4, C-D sqrt(10), D-A 5, B-E 3 (metres); F excluded."""
    return NavGraph(tiny_connectivity)[TINY_SCAN]


def ids(names: str) -> list[str]:
    return [vp_id(n) for n in names]


def poses(names: str) -> list[list]:
    """A trajectory in the submission format: [viewpoint, heading, elevation] per step."""
    return [[vp_id(n), 0.5 * k, 0.0] for k, n in enumerate(names)]


def test_perfect_path_scores_one(tiny):
    m = M.episode_metrics(tiny, ids("ABC"), poses("ABC"))
    assert m["trajectory_length"] == 7.0
    assert m["nav_error"] == 0.0 and m["oracle_error"] == 0.0
    assert m["success"] is True and m["oracle_success"] is True
    assert m["spl"] == 1.0 and m["ndtw"] == 1.0 and m["sdtw"] == 1.0 and m["cls"] == 1.0
    assert m["dtw"] == 0.0 and m["steps"] == 2 and m["shortest_length"] == 7.0


def test_nav_error_of_exactly_three_metres_is_a_failure_but_counts_for_sdtw(tiny):
    # Stop at the start A; the goal B is exactly 3.0 m away.
    m = M.episode_metrics(tiny, ids("AB"), ids("A"))
    assert m["nav_error"] == 3.0
    assert m["success"] is False and m["oracle_success"] is False and m["spl"] == 0.0
    # DTW([A], [A, B]) = d(A,A) + d(A,B) = 3; nDTW = exp(-3 / (3 * 2)); sDTW uses <= 3.0.
    assert m["dtw"] == 3.0
    assert m["ndtw"] == pytest.approx(math.exp(-0.5), abs=1e-15)
    assert m["sdtw"] == m["ndtw"]
    # CLS: PC = (1 + e^-1) / 2, EPL = 3 PC, PL(P) = 0 -> LS = 1/2.
    pc = (1 + math.exp(-1)) / 2
    assert m["cls"] == pytest.approx(pc / 2, abs=1e-15)
    assert m["steps"] == 0 and m["trajectory_length"] == 0.0


def test_success_and_sdtw_thresholds_directly():
    assert M.success(2.9999999) and not M.success(3.0) and not M.success(3.0000001)
    d = np.array([[0.0, 3.0], [3.0, 0.0]])
    assert M.sdtw(d, [0], [0, 1]) > 0
    d2 = np.array([[0.0, 3.0 + 1e-12], [3.0 + 1e-12, 0.0]])
    assert M.sdtw(d2, [0], [0, 1]) == 0.0


def test_spl_with_detours(tiny):
    # Reference A-B-C (7 m). Detour via E and back: 3 + 3 + 3 + 4 = 13 m.
    m = M.episode_metrics(tiny, ids("ABC"), ids("ABEBC"))
    assert m["trajectory_length"] == 13.0 and m["success"] and m["steps"] == 4
    assert m["spl"] == pytest.approx(7 / 13, abs=1e-15)
    # By hand: costs d(p, r) rows A [0 3 7], B [3 0 4], E [6 3 7], B [3 0 4], C [7 4 0]; the cheapest
    # warping pays only E against B (3 m): DTW = 3 -> nDTW = exp(-3 / (3 * 3)).
    assert m["dtw"] == 3.0
    assert m["ndtw"] == pytest.approx(math.exp(-1 / 3), abs=1e-15)
    # Every reference node visited: PC = 1, EPL = 7, PL(P) = 13 -> CLS = 7 / 13.
    assert m["cls"] == pytest.approx(7 / 13, abs=1e-15)
    # The other way round the house: A-D-C = 5 + sqrt(10) m.
    m = M.episode_metrics(tiny, ids("ABC"), ids("ADC"))
    assert m["spl"] == pytest.approx(7 / (5 + SQRT10), abs=1e-15)


def test_spl_definition_edge_cases():
    assert M.spl(True, 7.0, 13.0) == pytest.approx(7 / 13)
    assert M.spl(False, 7.0, 7.0) == 0.0
    assert M.spl(True, 0.0, 0.0) == 1.0  # already at the goal
    assert M.spl(True, 0.0, 6.0) == 1.0
    assert M.spl(False, 0.0, 0.0) == 0.0


def test_oracle_success_when_the_agent_passes_the_goal_and_leaves(tiny):
    m = M.episode_metrics(tiny, ids("ABC"), ids("ADCD"))
    assert m["nav_error"] == pytest.approx(SQRT10)  # 3.16 m: a failure
    assert m["success"] is False and m["spl"] == 0.0 and m["sdtw"] == 0.0
    assert m["oracle_error"] == 0.0 and m["oracle_success"] is True
    assert m["ndtw"] > 0


def test_turning_in_place_is_collapsed_before_dtw_and_cls(tiny):
    turned = M.episode_metrics(tiny, ids("ABC"), ids("AABBBC"))
    assert turned["ndtw"] == 1.0 and turned["cls"] == 1.0 and turned["spl"] == 1.0
    assert turned["trajectory_length"] == 7.0 and turned["steps"] == 5
    # A-D-D-C against A-B-C: collapsed DTW = 3 + sqrt(10); counted twice, D would give 9.32.
    g = tiny
    traj = [g.index[v] for v in ids("ADDC")]
    ref = [g.index[v] for v in ids("ABC")]
    assert M.dtw(g.distances, traj, ref) == pytest.approx(3 + SQRT10, abs=1e-12)
    assert M.dtw(g.distances, traj, ref) == M.dtw(g.distances, M.collapse_repeats(traj), ref)
    assert M.ndtw(g.distances, traj, ref) == pytest.approx(math.exp(-(3 + SQRT10) / 9), abs=1e-15)
    assert M.collapse_repeats([4, 4, 2, 2, 4, 1]).tolist() == [4, 2, 4, 1]


def _grid_distances():
    """The nx.grid_graph([3, 4]) of the google-research r4r doctests, as a matrix + index."""
    g = nx.grid_graph([3, 4])
    nodes = list(g.nodes)
    ix = {n: i for i, n in enumerate(nodes)}
    d = np.full((len(nodes), len(nodes)), np.inf)
    for a, row in nx.all_pairs_dijkstra_path_length(g):
        for b, v in row.items():
            d[ix[a], ix[b]] = v
    return d, ix


def test_dtw_and_cls_match_the_published_r4r_values():
    d, ix = _grid_distances()
    pred = [ix[n] for n in [(0, 0), (1, 0), (2, 0), (3, 0)]]
    ref = [ix[n] for n in [(0, 0), (1, 0), (2, 1), (3, 2)]]
    assert M.dtw(d, pred, ref) == 3.0
    assert M.ndtw(d, pred, ref) == pytest.approx(0.77880078307140488, abs=1e-15)
    assert M.sdtw(d, pred, ref) == pytest.approx(0.77880078307140488, abs=1e-15)
    assert M.sdtw(d, pred[:2], ref) == 0.0
    # r4r/cls.py's doctest calls cls(reference, prediction) on a __call__(prediction, reference):
    # its published numbers are CLS with those two roles swapped, which we reproduce here.
    a = [ix[n] for n in [(0, 0), (1, 0), (1, 1), (2, 1), (2, 2), (3, 2)]]
    b = [ix[n] for n in [(0, 0), (0, 1), (1, 1), (2, 1), (3, 1), (3, 2)]]
    c = [ix[n] for n in [(0, 1), (1, 1), (2, 1), (3, 1)]]
    assert M.cls(d, a, a) == 1.0
    assert M.cls(d, a, b) == pytest.approx(0.81994915125863865, abs=1e-15)
    assert M.cls(d, a, c) == pytest.approx(0.44197196102702557, abs=1e-15)


def _naive_dtw(cost: np.ndarray) -> float:
    """Textbook DTW over a full (P+1, R+1) table (independent of vln.metrics)."""
    n, m = cost.shape
    table = np.full((n + 1, m + 1), np.inf)
    table[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            table[i, j] = cost[i - 1, j - 1] + min(table[i - 1, j], table[i, j - 1], table[i - 1, j - 1])
    return float(table[n, m])


def test_dtw_matches_an_independent_implementation_on_random_cases():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(2, 9))
        pts = rng.uniform(0, 10, size=(n, 3))
        d = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
        p = rng.integers(0, n, size=int(rng.integers(1, 12)))
        r = rng.integers(0, n, size=int(rng.integers(1, 8)))
        pc, rc = M.collapse_repeats(p), M.collapse_repeats(r)
        expected = _naive_dtw(d[np.ix_(pc, rc)])
        assert M.dtw(d, p, r) == expected  # same operations in the same order: bit-equal
        assert M.ndtw(d, p, r) == np.exp(-expected / (3.0 * len(rc)))


def test_r2r_numbers_are_bit_equal_to_the_official_loops():
    """Length, errors and SPL against a networkx re-implementation of tasks/R2R/eval.py."""
    rng = np.random.default_rng(1)
    n = 30
    pts = rng.uniform(0, 15, size=(n, 3))
    g = nx.Graph()
    for i in range(n):
        for j in np.argsort(np.linalg.norm(pts - pts[i], axis=1))[1:4]:
            a, b = pts[i].tolist(), pts[int(j)].tolist()
            g.add_edge(i, int(j), weight=((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 + (a[2] - b[2]) ** 2) ** 0.5)
    dist = dict(nx.all_pairs_dijkstra_path_length(g))
    d = np.full((n, n), np.inf)
    for a, row in dist.items():
        for b, v in row.items():
            d[a, b] = v
    for _ in range(100):
        walk = [int(rng.integers(n))]
        for _ in range(int(rng.integers(0, 30))):
            nbrs = list(g.neighbors(walk[-1])) + [walk[-1]]
            walk.append(int(nbrs[rng.integers(len(nbrs))]))
        start, goal = walk[0], int(rng.integers(n))
        if goal not in dist[start]:
            continue
        length = 0
        for prev, curr in zip(walk[:-1], walk[1:]):
            length += dist[prev][curr]
        nearest = walk[0]
        for v in walk:
            if dist[v][goal] < dist[nearest][goal]:
                nearest = v
        m = M.metrics_from_indices(d, walk, [start, goal])
        assert m["trajectory_length"] == length
        assert m["nav_error"] == dist[walk[-1]][goal]
        assert m["oracle_error"] == dist[nearest][goal]
        sp = dist[start][goal]
        ok = dist[walk[-1]][goal] < 3.0
        assert m["success"] == ok
        if sp > 0:
            assert m["spl"] == float(ok) * sp / max(sp, length, 0.01)
        assert m["steps"] == len(walk) - 1


def test_bad_trajectories_raise_naming_the_viewpoints(tiny):
    with pytest.raises(NotConnectedError, match=f"ep 7.*{vp_id('A')} and {vp_id('C')}"):
        M.episode_metrics(tiny, ids("ABC"), ids("AC"), where="ep 7")
    with pytest.raises(ExcludedViewpointError, match="ep 7, step 1"):
        M.episode_metrics(tiny, ids("ABC"), ids("AF"), where="ep 7")
    with pytest.raises(UnknownViewpointError, match="nope"):
        M.episode_metrics(tiny, ids("ABC"), [vp_id("A"), "nope"])
    with pytest.raises(ValueError, match="not at the episode's start"):
        M.episode_metrics(tiny, ids("ABC"), ids("BC"))
    with pytest.raises(ValueError, match="empty"):
        M.episode_metrics(tiny, ids("ABC"), [])
    with pytest.raises(TypeError):
        M.episode_metrics(tiny, ids("ABC"), [[1.0, 0.0, 0.0]])


def test_batch_metrics_are_bit_equal_to_the_per_episode_metrics():
    """Random walks (repeats, stops, detours, long paths) over three random scans at once."""
    rng = np.random.default_rng(2)
    mats, adj = [], []
    for n in (7, 12, 25):
        pts = rng.uniform(0, 12, size=(n, 3))
        a = np.zeros((n, n), dtype=bool)
        for i in range(n):  # a chain keeps every scan connected, plus random shortcuts
            if i:
                a[i, i - 1] = a[i - 1, i] = True
            j = int(rng.integers(n))
            if j != i:
                a[i, j] = a[j, i] = True
        w = np.where(a, np.linalg.norm(pts[:, None] - pts[None], axis=-1), 0.0)
        mats.append(dijkstra(w, directed=True))
        adj.append(a)
    scan_of, trajs, refs = [], [], []
    for _ in range(300):
        k = int(rng.integers(3))
        walk = [int(rng.integers(len(mats[k])))]
        for _ in range(int(rng.integers(0, 25))):
            options = np.flatnonzero(adj[k][walk[-1]]).tolist() + [walk[-1]]
            walk.append(options[int(rng.integers(len(options)))])
        ref = [walk[0]]
        for _ in range(int(rng.integers(1, 12))):
            ref.append(int(rng.choice(np.flatnonzero(adj[k][ref[-1]]))))
        scan_of.append(k)
        trajs.append(walk)
        refs.append(ref)
    batch = M.batch_metrics(mats, scan_of, trajs, refs)
    for k, t, r, got in zip(scan_of, trajs, refs, batch):
        want = M.metrics_from_indices(mats[k], t, r)
        assert got == want  # every key, bit for bit
        assert type(got["success"]) is bool and type(got["steps"]) is int
    assert M.batch_metrics(mats, [], [], []) == []
