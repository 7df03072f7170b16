"""Stable-Baselines3 interoperability: action masks, SB3's env checker, the VecEnv adapter."""
from __future__ import annotations

import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401 - registers the ids
from ci_required import import_or_skip
from vln.candidates import stepped_candidates
from vln.errors import InvalidActionError
from vln.sim import r2r_simulator

import_or_skip("stable_baselines3", "the rl extra is not installed (pip install -e .[rl])")
from stable_baselines3.common.env_checker import check_env  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv  # noqa: E402

from synthetic_helpers import small_world_with_features  # noqa: E402
from envs.sb3 import FlattenFeatures, SB3VecEnv, make_sb3_env, make_sb3_vec_env  # noqa: E402

SHAPE_WARNING = "unconventional shape"


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    """A 2-house synthetic world (1 train house, 1 val_unseen house) with synthetic_semantic features."""
    return small_world_with_features(tmp_path_factory.mktemp("sb3") / "world", seed=3, train_paths=6,
                                     val_unseen_paths=3)


def kw(root, **extra):
    return dict(data_dir=root, split="train", features="synthetic_semantic", **extra)


def rxr_kw(root, **extra):
    return dict(data_dir=root, split="train", features="synthetic_semantic", language="en", **extra)


@pytest.mark.parametrize("env_id", ["vln/R2R-v0", "vln/RxR-v0"])
@pytest.mark.parametrize("mode", ["numpy", "index"])
def test_sb3_check_env(world_dir, env_id, mode):
    args = (kw if env_id == "vln/R2R-v0" else rxr_kw)(world_dir, feature_mode=mode)
    env = gym.make(env_id, **args)
    # The env itself passes; SB3's only remark is about its 2-D feature entries (by design).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    assert caught and all(SHAPE_WARNING in str(w.message) for w in caught)
    # Through the documented wrapper it passes without a single warning.
    wrapped = make_sb3_env(env_id, **args)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(wrapped)
    obs, _ = wrapped.reset(seed=0)
    raw, _ = env.reset(seed=0)
    for k, v in raw.items():
        assert np.array_equal(obs[k], v.reshape(-1))  # row-major flattening, nothing else changed
    wrapped.close()


def test_single_env_action_masks(world_dir):
    """The mask MaskablePPO reads opens exactly the candidates the simulator offers (EnvDrop's 36-view loop)."""
    env = make_sb3_env("vln/R2R-v0", **kw(world_dir))
    navgraph = env.unwrapped.world.navgraph
    sim = r2r_simulator(world_dir / "connectivity")
    obs, info = env.reset(seed=1)
    n = env.action_space.n
    for _ in range(20):
        mask = env.action_masks()
        assert mask.dtype == bool and mask.shape == (n,)
        assert np.array_equal(mask, obs["action_mask"].astype(bool))  # the same mask in the observation
        expected = [c["viewpointId"] for c in stepped_candidates(sim, info["scan"], info["viewpoint"])]
        assert mask[-1] and mask[:-1].sum() == len(expected) and mask[: len(expected)].all()  # candidates + STOP
        ids = navgraph[info["scan"]].viewpoint_ids
        assert [ids[i] for i in obs["candidate_viewpoints"][: len(expected)]] == expected
        # MaskablePPO reaches it through the standard wrappers of gym.make as well.
        assert np.array_equal(env.unwrapped.action_masks(), mask)
        invalid = np.flatnonzero(~mask)
        if len(invalid):
            with pytest.raises(InvalidActionError, match="action mask"):
                env.step(int(invalid[0]))
        obs, r, term, trunc, info = env.step(int(info["teacher_action"]))
        if term or trunc:
            obs, info = env.reset()


def test_vector_env_action_masks(world_dir):
    venv = gym.make_vec("vln/R2R-v0", num_envs=5, vectorization_mode="vector_entry_point", **kw(world_dir))
    obs, _ = venv.reset(seed=0)
    masks = venv.action_masks()
    assert masks.dtype == bool and masks.shape == (5, venv.single_action_space.n)
    assert np.array_equal(masks, obs["action_mask"].astype(bool))
    sb3 = SB3VecEnv(venv)
    sb3.seed(0)
    obs = sb3.reset()
    assert np.array_equal(np.stack(sb3.env_method("action_masks")), obs["action_mask"].astype(bool))
    assert sb3.action_masks().shape == (5, sb3.action_space.n)
    assert sb3.has_attr("action_masks")
    bad = np.full(5, sb3.action_space.n - 1)
    bad[2] = int(np.flatnonzero(~sb3.action_masks()[2])[0])
    with pytest.raises(InvalidActionError, match="environment 2"):
        sb3.step(bad)


def _rollout(venv, steps, policy):
    venv.seed(7)
    out = [venv.reset()]
    for t in range(steps):
        masks = np.stack(venv.env_method("action_masks"))
        obs, rew, done, infos = venv.step(policy(masks, t))
        out.append((obs, rew, done, infos))
    return out


@pytest.mark.parametrize("mode", ["numpy", "index"])
def test_adapter_rollouts_equal_dummy_vec_env(world_dir, mode):
    n = 3
    venv = gym.make_vec("vln/R2R-v0", num_envs=n, vectorization_mode="vector_entry_point",
                        **kw(world_dir, feature_mode=mode, max_episode_steps=6))
    world = venv.unwrapped.world
    ours = SB3VecEnv(venv)
    dummy = DummyVecEnv([lambda: make_sb3_env("vln/R2R-v0", world=world, max_episode_steps=6) for _ in range(n)])
    assert ours.observation_space == dummy.observation_space and ours.action_space == dummy.action_space
    rng = np.random.default_rng(0)
    draws = rng.random((80, n, dummy.action_space.n))

    def policy(masks, t):  # random valid moves; STOP only on odd steps, so some episodes hit the limit
        m = masks.copy()
        if t % 2 == 0:
            m[:, -1] = False
        return np.argmax(draws[t] * m + m * 1e-9, axis=1)

    a, b = _rollout(dummy, 80, policy), _rollout(ours, 80, policy)
    assert all(np.array_equal(a[0][k], b[0][k]) for k in a[0])
    ends = truncations = 0
    for (o1, r1, d1, i1), (o2, r2, d2, i2) in zip(a[1:], b[1:]):
        assert all(np.array_equal(o1[k], o2[k]) for k in o1)
        assert np.array_equal(r1, r2) and np.array_equal(d1, d2)
        for x, y, done in zip(i1, i2, d1):
            for k in ("teacher_action", "distance_to_goal", "TimeLimit.truncated"):
                assert x[k] == y[k]
            if done:
                ends += 1
                truncations += x["TimeLimit.truncated"]
                assert x["instr_id"] == y["instr_id"] and x["trajectory"] == y["trajectory"]
                t1, t2 = x["terminal_observation"], y["terminal_observation"]
                assert all(np.array_equal(t1[k], t2[k]) for k in t1)
    assert ends > 10 and 0 < truncations < ends


def test_adapter_options_pick_episodes(world_dir):
    sb3 = make_sb3_vec_env("vln/R2R-v0", num_envs=2, **kw(world_dir))
    ids = [e.instr_id for e in sb3.world.episodes]
    sb3.set_options([{"instr_id": ids[3]}, {"episode": 1}])
    sb3.reset()
    assert [i["episode_index"] for i in sb3.reset_infos] == [3, 1]
    sb3.set_options({"episode": 10_000})
    with pytest.raises(IndexError, match="out of range"):
        sb3.reset()


def test_flatten_wrapper_forwards_masks(world_dir):
    env = FlattenFeatures(gym.make("vln/R2R-v0", **kw(world_dir)))
    env.reset(seed=0)
    assert env.observation_space["view_features"].shape == (36 * (512 + 128),)
    assert np.array_equal(env.action_masks(), env.get_wrapper_attr("action_masks")())


def test_core_package_never_imports_sb3(world_dir):
    code = (
        "import sys, gymnasium as gym, vln, envs, features\n"
        f"env = gym.make('vln/R2R-v0', data_dir={str(world_dir)!r}, split='train', features='synthetic_semantic')\n"
        "env.reset(seed=0)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('stable_baselines3', 'sb3_contrib')]\n"
        "assert not bad, bad\n"
        # Without the extra installed, envs.sb3 says how to get it.
        "sys.modules['stable_baselines3'] = None\n"
        "from vln.errors import DependencyNotInstalled\n"
        "try:\n    import envs.sb3\nexcept DependencyNotInstalled as e:\n    assert '.[rl]' in str(e)\n"
        "else:\n    raise SystemExit('envs.sb3 imported without stable_baselines3')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(world_dir.parent))
