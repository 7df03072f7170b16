"""Gymnasium environments vln/R2R-v0 and vln/RxR-v0 over a tiny hand-made data root."""
from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401 - registers the ids
from env_fixtures import FEATURE_DIM, GRID_SCAN, write_data_root
from envs.angles import angle_features
from graph_builders import vp_id
from vln.candidates import stepped_candidates
from vln.datasets import load_split, write_rxr
from vln.errors import InvalidActionError
from vln.sim import Simulator


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = write_data_root(tmp_path_factory.mktemp("data"))
    eps = load_split("r2r", r, "train") + load_split("r2r", r, "val_unseen")
    langs = ["en-IN", "hi-IN", "te-IN"]
    rxr = [dict(instruction_id=i, path_id=e.path_id, scan=e.scan, path=list(e.path), heading=e.heading,
                instruction=e.instruction, language=langs[i % 3], annotator_id=0, edit_distance=0.0)
           for i, e in enumerate(eps)]
    write_rxr(r / "RxR" / "rxr_train_guide.jsonl.gz", rxr)
    write_rxr(r / "RxR" / "rxr_val_unseen_guide.jsonl.gz", rxr[-3:])
    return r


def kw(root, **extra):
    return dict(data_dir=root, split="train", features="toy", **extra)


@pytest.mark.parametrize("env_id", ["vln/R2R-v0", "vln/RxR-v0"])
@pytest.mark.parametrize("mode", ["numpy", "index"])
def test_check_env_passes_without_warnings(root, env_id, mode):
    env = gym.make(env_id, render_mode="ansi", **kw(root, feature_mode=mode))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    env.close()
    env.close()  # callable twice


def test_reset_is_seeded_and_teacher_forcing_reaches_the_goal(root):
    env = gym.make("vln/R2R-v0", **kw(root))
    a, _ = env.reset(seed=5)
    b, _ = env.reset(seed=5)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    for e in range(len(env.unwrapped.world.episodes)):
        obs, info = env.reset(options={"episode": e})
        total, steps = 0.0, 0
        while True:
            obs, r, term, trunc, info = env.step(info["teacher_action"])
            total += r
            steps += 1
            if term or trunc:
                break
        ep = env.unwrapped.world.episodes[e]
        assert term and info["distance_to_goal"] == 0.0
        visited = [t[0] for t in info["trajectory"]]
        moved = [v for k, v in enumerate(visited) if k == 0 or v != visited[k - 1]]
        g = env.unwrapped.world.navgraph[ep.scan]
        assert moved[0] == ep.start and moved[-1] == ep.goal
        length = sum(g.distance(a, b) for a, b in zip(moved, moved[1:]))
        assert length == pytest.approx(g.distance(ep.start, ep.goal))  # the teacher walks a shortest path
        assert steps == len(moved) and total == (len(moved) - 1) + 2.0


def test_truncated_at_the_action_limit_and_stop_penalty(root):
    env = gym.make("vln/R2R-v0", **kw(root))
    obs, info = env.reset(options={"instr_id": "3_0"})
    mask = obs["action_mask"]
    for t in range(35):
        valid = np.flatnonzero(mask[:-1])
        obs, r, term, trunc, info = env.step(int(valid[t % len(valid)]))
        mask = obs["action_mask"]
        if trunc:
            break
    assert trunc and not term and t == 34
    obs, info = env.reset(options={"instr_id": "3_0"})
    obs, r, term, trunc, info = env.step(16)
    assert term and r == -2.0


def test_invalid_action_raises_instead_of_stopping(root):
    env = gym.make("vln/R2R-v0", **kw(root))
    obs, info = env.reset(options={"episode": 0})
    n = int(obs["action_mask"][:-1].sum())
    with pytest.raises(InvalidActionError, match=f"invalid action {n}"):
        env.step(n)
    with pytest.raises(InvalidActionError):
        env.step(-1)
    with pytest.raises(InvalidActionError, match="must be integers"):
        env.step(0.7)  # never read as 0
    obs, r, term, trunc, info = env.step(np.float64(16))  # an integral float is the same action (STOP)
    assert term and r == (2.0 if info["distance_to_goal"] < 3.0 else -2.0)


def test_vector_env_refuses_fractional_actions(root):
    vec = gym.make_vec("vln/R2R-v0", num_envs=2, vectorization_mode="vector_entry_point", **kw(root))
    obs, info = vec.reset(seed=0)
    with pytest.raises(InvalidActionError, match="must be integers"):
        vec.step(np.array([0.0, 1.5]))
    with pytest.raises(InvalidActionError, match="expected 2 actions"):
        vec.step(np.array([0, 0, 0]))
    obs, r, term, trunc, info = vec.step(info["teacher_action"].astype(np.float32))
    assert obs["action_mask"].shape[0] == 2


def test_observation_matches_envdrop_candidates_from_the_simulator(root):
    """Candidate features = feature of the view it is seen in ++ EnvDrop angle feature."""
    env = gym.make("vln/R2R-v0", **kw(root))
    world = env.unwrapped.world
    sim = Simulator()
    sim.setNavGraphPath(str(root / "connectivity"))
    sim.setRenderingEnabled(False)
    sim.setDiscretizedViewingAngles(True)
    sim.setCameraResolution(640, 480)
    sim.setCameraVFOV(math.radians(60))
    obs, info = env.reset(options={"instr_id": "3_0"})
    for _ in range(3):
        view = int(obs["view_index"][0])
        base = (view % 12) * math.radians(30)
        scan, vp = info["scan"], info["viewpoint"]
        feats = world.store.get(scan, vp)
        cands = stepped_candidates(sim, scan, vp)
        n = len(cands)
        assert obs["action_mask"][:n].all() and not obs["action_mask"][n:-1].any()
        for k, c in enumerate(cands):
            expect = np.concatenate([feats[c["pointId"]], angle_features(c["normalized_heading"] - base, c["elevation"])])
            np.testing.assert_allclose(obs["candidate_features"][k], expect, atol=1e-6)
            assert world.navgraph[scan].viewpoint_ids[obs["candidate_viewpoints"][k]] == c["viewpointId"]
        np.testing.assert_allclose(obs["view_features"][:, :FEATURE_DIM], feats)
        np.testing.assert_allclose(obs["view_features"][0, FEATURE_DIM:],
                                   angle_features(-base, -math.pi / 6), atol=1e-6)
        obs, r, term, trunc, info = env.step(info["teacher_action"])


def test_native_vector_env_equals_sync_vector_env(root):
    native = gym.make_vec("vln/R2R-v0", num_envs=3, vectorization_mode="vector_entry_point", **kw(root))
    sync = gym.make_vec("vln/R2R-v0", num_envs=3, vectorization_mode="sync", **kw(root))
    o1, i1 = native.reset(seed=3)
    o2, i2 = sync.reset(seed=3)
    rng = np.random.default_rng(0)
    for t in range(40):
        for k in o1:
            np.testing.assert_array_equal(o1[k], o2[k], err_msg=f"step {t} key {k}")
        np.testing.assert_array_equal(i1["teacher_action"], i2["teacher_action"])
        masks = native.unwrapped.action_masks()
        np.testing.assert_array_equal(masks, o1["action_mask"].astype(bool))
        actions = np.array([rng.choice(np.flatnonzero(m)) if rng.random() < 0.5 else ta
                            for m, ta in zip(masks, i1["teacher_action"])])
        o1, r1, te1, tr1, i1 = native.step(actions)
        o2, r2, te2, tr2, i2 = sync.step(actions)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(te1, te2)
        np.testing.assert_array_equal(tr1, tr2)


def test_vector_env_reports_trajectories_of_finished_episodes(root):
    vec = gym.make_vec("vln/R2R-v0", num_envs=2, vectorization_mode="vector_entry_point", **kw(root))
    obs, info = vec.reset(seed=0)
    finished = []
    for _ in range(12):
        obs, r, term, trunc, info = vec.step(info["teacher_action"])
        if "instr_id" in info:
            finished += [(i, t) for i, t, m in zip(info["instr_id"], info["trajectory"], info["_instr_id"]) if m]
    assert finished
    world = vec.unwrapped.world
    for instr_id, traj in finished:
        ep = world.episodes[world.episode_index(instr_id)]
        assert traj[0][0] == ep.path[0] and traj[-1][0] == ep.path[-1]


def test_index_mode_gathers_the_same_features(root):
    a = gym.make_vec("vln/R2R-v0", num_envs=2, vectorization_mode="vector_entry_point", **kw(root))
    b = gym.make_vec("vln/R2R-v0", num_envs=2, vectorization_mode="vector_entry_point", **kw(root, feature_mode="index"))
    oa, _ = a.reset(seed=1)
    ob, _ = b.reset(seed=1)
    table = b.unwrapped.world.features
    views = table[ob["feature_row"][:, 0]]
    np.testing.assert_allclose(oa["view_features"][:, :, :FEATURE_DIM], views)
    from envs.angles import VIEW_ANGLE_FEATURES
    np.testing.assert_allclose(oa["view_features"][:, :, FEATURE_DIM:], VIEW_ANGLE_FEATURES[ob["view_index"][:, 0] % 12])
    np.testing.assert_allclose(oa["candidate_features"][:, :, FEATURE_DIM:], np.tile(ob["candidate_angles"], 32), atol=1e-6)
    pid = ob["candidate_point_ids"]
    valid = pid >= 0
    gathered = views[np.arange(2)[:, None], np.maximum(pid, 0)]
    np.testing.assert_allclose(oa["candidate_features"][:, :, :FEATURE_DIM][valid], gathered[valid])


def test_render_modes(root):
    env = gym.make("vln/R2R-v0", render_mode="ansi", **kw(root))
    obs, info = env.reset(options={"instr_id": "3_0"})
    text = env.render()
    assert "go forward and turn left" in text and "STOP" in text and GRID_SCAN in text
    env = gym.make("vln/R2R-v0", render_mode="rgb_array", **kw(root))
    env.reset(options={"instr_id": "3_0"})
    img = env.render()
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3


def test_missing_features_name_the_extraction_command(root):
    with pytest.raises(FileNotFoundError, match="scripts/extract_features.py --encoder clip_r50x4"):
        gym.make("vln/R2R-v0", data_dir=root, split="train", features="clip_r50x4")


def test_zero_visual_features_mode(root):
    env = gym.make("vln/R2R-v0", data_dir=root, split="val_unseen", features=None)
    obs, info = env.reset(seed=0)
    assert obs["view_features"].shape == (36, 128)
