"""The batched core (envs.batch over envs.tables) against straightforward per-episode references,
and the observation-array contract of the vector env (Gymnasium's ``copy``)."""
from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401 - registers the ids
from env_fixtures import write_data_root
from envs.angles import angle_features
from envs.batch import NavBatch
from envs.world import EnvConfig, NavWorld
from features.store import write_feature_store
from vln.candidates import candidate_table
from vln.errors import InvalidActionError
from vln.sim.geometry import HEADING_INCREMENT, VIEW_ELEVATIONS, VIEW_HEADINGS


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = write_data_root(tmp_path_factory.mktemp("data"))
    # A second store whose dimension is not a multiple of 4 (observe's tiled-angle fallback).
    store = NavWorld(EnvConfig(data_dir=r, split="train", features="toy")).store
    rng = np.random.default_rng(1)
    items = [(s, v, rng.normal(size=(36, 6)).astype(np.float32)) for s, v in store.keys()]
    write_feature_store(r / "features" / "toy6.feats", items, {"encoder": {"name": "toy6"}, "random_weights": True})
    return r


# ---------------------------------------------------------------------- references (one slot)
def _where(world, vp: int):
    s = int(world.scan_of_global[vp])
    g = world.navgraph[world.scans[s]]
    local = vp - int(world.scan_offset[s])
    table = candidate_table(g)
    return g, local, table, table.rows(local)


def reference_observation(world, episode: int, vp: int, view: int, mode: str) -> dict:
    """The observation of one episode state, from the scan's candidate table and the store."""
    g, local, table, r = _where(world, vp)
    K, n = world.cfg.max_candidates, r.stop - r.start
    base = (view % 12) * HEADING_INCREMENT
    heading, elevation = table.normalized_heading[r] - base, table.elevation[r]

    def pad(x, fill):
        return np.concatenate([x, np.full(K - n, fill, dtype=np.int64)])

    obs = {
        "instruction": world.instruction_ids[episode],
        "instruction_length": np.array([world.instruction_lengths[episode]]),
        "view_index": np.array([view]),
        "candidate_viewpoints": pad(table.viewpoint[r], -1),
        "action_mask": np.r_[np.ones(n), np.zeros(K - n), 1].astype(np.int8),
        # glm::length of the float32 offset, as MatterSim's rel_distance
        "candidate_distances": np.r_[np.linalg.norm(g.positions_f32[table.viewpoint[r]] - g.positions_f32[local], axis=1),
                                     np.zeros(K - n)].astype(np.float32),
    }
    if mode == "index":
        four = np.zeros((K, 4), dtype=np.float32)
        four[:n] = np.stack([np.sin(heading), np.cos(heading), np.sin(elevation), np.cos(elevation)], -1)
        targets = world.scan_offset[world.scan_of_global[vp]] + table.viewpoint[r]
        obs.update(feature_row=np.array([world.feature_rows[vp]]), candidate_point_ids=pad(table.point_id[r], -1),
                   candidate_angles=four, candidate_feature_rows=pad(world.feature_rows[targets], -1))
        return obs
    D = world.feature_dim
    feats = world.store.get(g.scan_id, g.viewpoint_ids[local]) if D else np.zeros((36, 0), np.float32)
    cands = np.zeros((K, D + 128), dtype=np.float32)
    cands[:n] = np.concatenate([feats[table.point_id[r]], angle_features(heading, elevation)], -1)
    obs.update(view_features=np.concatenate([feats, angle_features(VIEW_HEADINGS - base, VIEW_ELEVATIONS)], -1),
               candidate_features=cands)
    return obs


def reference_teacher(world, vp: int, goal: int) -> int:
    """First candidate slot leading to the graph's next step towards ``goal``; STOP at the goal."""
    g, local, table, r = _where(world, vp)
    K = world.cfg.max_candidates
    nxt = int(g.next_step_indices(goal)[local])
    targets = table.viewpoint[r].tolist()
    return K if local == goal or nxt not in targets else targets.index(nxt)


def reference_move(world, vp: int, slot: int) -> tuple[int, int]:
    """(global viewpoint, view index) after moving to candidate ``slot``."""
    g, local, table, r = _where(world, vp)
    return int(table.viewpoint[r][slot]) + vp - local, int(table.point_id[r][slot])


def assert_observation(world, nav: NavBatch, obs: dict, mode: str, b: int) -> None:
    ref = reference_observation(world, int(nav.episode[b]), int(nav.vp[b]), int(nav.view[b]), mode)
    assert set(obs) == set(ref)
    for k, v in ref.items():
        got = obs[k][b]
        assert got.shape == v.shape, k
        if got.dtype.kind == "f":
            assert got.dtype == np.float32, k
            np.testing.assert_allclose(got, v, rtol=0, atol=1e-6, err_msg=k)
        else:
            np.testing.assert_array_equal(got, v, err_msg=k)


def roll(world, nav: NavBatch, rng, steps: int, check) -> None:
    """Random rollout (teacher or random actions, some slots inactive, restarts); ``check()`` each state."""
    B, K = nav.B, nav.K
    nav.reset_envs(np.arange(B), rng.integers(len(world.episodes), size=B))

    def pose(b):  # the submission entry of slot b's current pose
        view = int(nav.view[b])
        return (world.viewpoint_ids[int(nav.vp[b])], (view % 12) * (2 * math.pi / 12), (view // 12 - 1) * math.pi / 6)

    trajs = [[pose(b)] for b in range(B)]
    for t in range(steps):
        check()
        assert nav.trajectories(np.arange(B)) == trajs
        assert all(nav.trajectory(b) == trajs[b] for b in range(B))
        _, count = nav.candidate_rows()
        teacher = nav.teacher_actions()
        for b in range(B):
            assert teacher[b] == reference_teacher(world, int(nav.vp[b]), int(nav.goal[b]))
            g, local, _, _ = _where(world, int(nav.vp[b]))
            assert nav.goal_distance()[b] == g.distances[local, int(nav.goal[b])]
        rand = (rng.random(B) * (count + 1)).astype(np.int64)
        actions = np.where(rng.random(B) < 0.5, teacher, np.where(rand == count, K, rand))
        active = None if t % 2 else rng.random(B) < 0.7
        before = [(int(v), int(w)) for v, w in zip(nav.vp, nav.view)]
        dist = nav.goal_distance()
        reward, stop = nav.step(actions, active)
        assert reward.dtype == np.float32
        after = nav.goal_distance()
        for b in range(B):
            on = active is None or active[b]
            assert stop[b] == (on and actions[b] == K)
            expect = before[b] if not on or actions[b] == K else reference_move(world, before[b][0], int(actions[b]))
            assert (int(nav.vp[b]), int(nav.view[b])) == expect
            if on:
                trajs[b].append(pose(b))
            want = 0.0 if not on else (2.0 if after[b] < 3.0 else -2.0) if stop[b] else np.sign(dist[b] - after[b])
            assert reward[b] == want
        done = stop | (nav.steps >= world.cfg.max_episode_steps)
        if done.any():
            idx = np.flatnonzero(done)
            nav.reset_envs(idx, rng.integers(len(world.episodes), size=len(idx)))
            for b in idx:
                trajs[b] = [pose(b)]


# ---------------------------------------------------------------------- tests
@pytest.mark.parametrize("features", ["toy", "toy6", None])
@pytest.mark.parametrize("mode", ["numpy", "index"])
def test_batch_matches_per_episode_reference(root, features, mode):
    world = NavWorld(EnvConfig(data_dir=root, split="train", features=features))
    nav = NavBatch(world, 5)
    kept = []  # fresh observations must never change afterwards
    reused = {"out": None}

    def check():
        obs = nav.observe(mode)
        for b in range(nav.B):
            assert_observation(world, nav, obs, mode, b)
        reused["out"] = out = nav.observe(mode, out=reused["out"])
        assert out.keys() == obs.keys() and all(np.array_equal(out[k], obs[k]) for k in obs)
        assert not any(np.shares_memory(out[k], obs[k]) for k in obs)
        kept.append((obs, {k: v.copy() for k, v in obs.items()}))

    roll(world, nav, np.random.default_rng(0), 40, check)
    for obs, snapshot in kept:
        assert all(np.array_equal(obs[k], snapshot[k]) for k in obs)


def test_observe_into_buffers_writes_in_place(root):
    world = NavWorld(EnvConfig(data_dir=root, split="train", features="toy"))
    nav = NavBatch(world, 3)
    nav.reset_envs(np.arange(3), np.array([0, 1, 2]))
    out = nav.observe("numpy")
    arrays = dict(out)
    nav.step(nav.teacher_actions())
    again = nav.observe("numpy", out=out)
    assert again is out and all(again[k] is arrays[k] for k in arrays)
    fresh = nav.observe("numpy")
    assert all(np.array_equal(again[k], fresh[k]) for k in fresh)
    with pytest.raises(ValueError, match="feature_mode"):
        nav.observe("torch")


def test_teacher_table_matches_graph_next_steps_for_every_pair(root):
    world = NavWorld(EnvConfig(data_dir=root, split="train", features=None))
    for s, g in enumerate(world.graphs):
        n, off = len(g), int(world.scan_offset[s])
        nav = NavBatch(world, n * n)
        nav.vp = off + np.repeat(np.arange(n), n)
        nav.goal = np.tile(np.arange(n), n)
        nav.scan = np.full(n * n, s)
        got = nav.teacher_actions()
        assert got.dtype == np.int64
        expect = [reference_teacher(world, int(v), int(q)) for v, q in zip(nav.vp, nav.goal)]
        np.testing.assert_array_equal(got, expect)
        np.testing.assert_array_equal(nav.goal_distance(), g.distances.ravel())


def test_invalid_actions_and_episodes_raise(root):
    world = NavWorld(EnvConfig(data_dir=root, split="train", features=None))
    nav = NavBatch(world, 2)
    nav.reset_envs(np.arange(2), np.array([0, 1]))
    _, count = nav.candidate_rows()
    for bad in ([int(count[0]), 0], [-1, 0], [0, nav.K + 1]):
        with pytest.raises(InvalidActionError, match="invalid action"):
            nav.step(np.array(bad))
    with pytest.raises(InvalidActionError, match="integer actions"):
        nav.step(np.array([0.0, 0.0]))
    assert nav.steps.tolist() == [0, 0]
    with pytest.raises(IndexError, match="episode indices"):
        nav.reset_envs(np.arange(2), np.array([0, len(world.episodes)]))
    with pytest.raises(IndexError, match="episode indices"):
        nav.reset_envs(np.arange(2), np.array([-1, 0]))


@pytest.mark.parametrize("mode", ["numpy", "index"])
def test_vector_env_copy_true_returns_arrays_that_can_be_kept(root, mode):
    vec = gym.make_vec("vln/R2R-v0", num_envs=3, vectorization_mode="vector_entry_point", data_dir=root,
                       split="train", features="toy", feature_mode=mode)
    assert vec.unwrapped.copy
    obs, info = vec.reset(seed=2)
    kept = [(obs, {k: v.copy() for k, v in obs.items()})]
    for _ in range(15):
        obs, *_, info = vec.step(info["teacher_action"])
        prev = kept[-1][0]
        assert not any(np.shares_memory(obs[k], prev[k]) for k in obs)
        kept.append((obs, {k: v.copy() for k, v in obs.items()}))
    for obs, snapshot in kept:
        assert all(np.array_equal(obs[k], snapshot[k]) for k in obs)


@pytest.mark.parametrize("mode", ["numpy", "index"])
def test_vector_env_copy_false_reuses_arrays_with_equal_values(root, mode):
    kw = dict(num_envs=3, vectorization_mode="vector_entry_point", data_dir=root, split="train", features="toy",
              feature_mode=mode)
    fresh = gym.make_vec("vln/R2R-v0", **kw)
    reused = gym.make_vec("vln/R2R-v0", copy=False, **kw)
    o1, i1 = fresh.reset(seed=4)
    o2, i2 = reused.reset(seed=4)
    first = dict(o2)
    rng = np.random.default_rng(0)
    for t in range(25):
        assert fresh.observation_space.contains(o1) and reused.observation_space.contains(o2)
        for k in o1:
            np.testing.assert_array_equal(o1[k], o2[k], err_msg=f"step {t} key {k}")
            assert o2[k] is first[k]  # the same arrays, overwritten in place
        masks = fresh.unwrapped.action_masks()
        np.testing.assert_array_equal(masks, o1["action_mask"].astype(bool))
        actions = np.array([rng.choice(np.flatnonzero(m)) for m in masks])
        o1, r1, te1, tr1, i1 = fresh.step(actions)
        o2, r2, te2, tr2, i2 = reused.step(actions)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(te1, te2)
        np.testing.assert_array_equal(i1["teacher_action"], i2["teacher_action"])


def test_single_env_action_masks_follow_the_observation(root):
    env = gym.make("vln/R2R-v0", data_dir=root, split="train", features="toy")
    obs, info = env.reset(seed=0)
    for _ in range(5):
        np.testing.assert_array_equal(env.unwrapped.action_masks(), obs["action_mask"].astype(bool))
        obs, r, term, trunc, info = env.step(info["teacher_action"])
        if term or trunc:
            obs, info = env.reset()


def test_real_data_batch_matches_reference(real_data):
    world = NavWorld(EnvConfig(data_dir=real_data, split="val_unseen", features=None))
    nav = NavBatch(world, 16)

    def check():
        for mode in ("numpy", "index"):
            obs = nav.observe(mode)
            for b in range(nav.B):
                assert_observation(world, nav, obs, mode, b)

    roll(world, nav, np.random.default_rng(0), 30, check)
    # The teacher table of two whole scans against the graph's next steps.
    for s in np.argsort(world.scan_size)[:2].tolist():
        n, off = int(world.scan_size[s]), int(world.scan_offset[s])
        pairs = NavBatch(world, n * n)
        pairs.vp, pairs.goal, pairs.scan = off + np.repeat(np.arange(n), n), np.tile(np.arange(n), n), np.full(n * n, s)
        expect = [reference_teacher(world, int(v), int(q)) for v, q in zip(pairs.vp, pairs.goal)]
        np.testing.assert_array_equal(pairs.teacher_actions(), expect)
