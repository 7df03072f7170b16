"""Environment steps/s through the Stable-Baselines3 ``VecEnv`` adapter against our native vector env.

Same run, same world, same number of environments (64), same policy (a uniformly random valid
action from ``action_masks()``, drawn outside the timed region's environment calls):

- baseline: ``gym.make_vec("vln/R2R-v0", num_envs=64, vectorization_mode="vector_entry_point")``
  (Gymnasium ``NEXT_STEP`` autoreset);
- adapter: ``envs.sb3.SB3VecEnv`` over the same world (SB3 same-step autoreset, a
  ``terminal_observation`` per finished episode, per-environment info dicts, flat observations).

Both are timed in numpy feature mode (features copied into every observation, what an SB3
``MultiInputPolicy`` consumes). Data: the synthetic world at ``vln.synthetic.default_data_dir()``
when it has ``features/synthetic_semantic.feats``, else a small world generated into a temporary
folder. Goal: adapter overhead under 10% in steps/s. Agent transitions/s (steps whose action
acts) are printed too: the native env spends one step per episode on its ``NEXT_STEP`` reset.

    python bench/bench_sb3.py [--data-dir DIR] [--envs 64] [--steps 400]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import envs  # noqa: F401 - registers the ids


def prepare_world(data_dir: str | None, tmp: Path) -> Path:
    """A data root with ``synthetic_semantic`` features: the given one, the default one, or a new one."""
    from vln.synthetic import default_data_dir, generate_world

    if data_dir is not None:
        return Path(data_dir)
    default = Path(default_data_dir())
    if (default / "features" / "synthetic_semantic.feats").exists():
        return default
    from features.extract import run_extraction

    root = tmp / "world"
    generate_world(root, houses=6, seed=0, paths_per_house={"train": 20, "val_seen": 2, "val_unseen": 4, "test": 2})
    run_extraction("synthetic_semantic", root, root / "connectivity", root / "features" / "synthetic_semantic.feats",
                   progress=False)
    return root


def steady_allocator() -> bool:
    """Keep glibc from mapping and unmapping the ~8 MB observation arrays of every step.

    Both envs allocate fresh observation arrays per step. With glibc's dynamic mmap threshold the
    cost of that depends on which arrays the caller still holds (we measured the same native env
    at 16k and 48k steps/s by only changing that), which would swamp the adapter's cost. Fixed
    thresholds make both envs allocate from the heap. Returns False where mallopt is unavailable.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 1 << 31))
    except (OSError, AttributeError):
        return False


def random_actions(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(B,) one uniformly random valid action per row of the (B, K+1) bool mask."""
    u = rng.random(masks.shape) * masks
    return np.argmax(u, axis=1)


def time_native(venv, steps: int, seed: int) -> tuple[float, int]:
    rng = np.random.default_rng(seed)
    obs, _ = venv.reset(seed=seed)
    elapsed, episodes = 0.0, 0
    for _ in range(steps):
        actions = random_actions(venv.action_masks(), rng)
        t0 = time.perf_counter()
        obs, _, term, trunc, _ = venv.step(actions)  # held, as a policy holds it until the next step
        elapsed += time.perf_counter() - t0
        episodes += int((term | trunc).sum())
    return steps * venv.num_envs / elapsed, episodes


def time_adapter(venv, steps: int, seed: int) -> tuple[float, int]:
    rng = np.random.default_rng(seed)
    venv.seed(seed)
    obs = venv.reset()
    elapsed, episodes = 0.0, 0
    for _ in range(steps):
        actions = random_actions(np.stack(venv.env_method("action_masks")), rng)
        t0 = time.perf_counter()
        obs, _, done, _ = venv.step(actions)
        elapsed += time.perf_counter() - t0
        episodes += int(done.sum())
    return steps * venv.num_envs / elapsed, episodes


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default=None, help="data root with features/synthetic_semantic.feats")
    p.add_argument("--envs", type=int, default=64, help="number of sub-environments")
    p.add_argument("--steps", type=int, default=400, help="vector steps timed per repeat")
    p.add_argument("--repeats", type=int, default=3, help="alternating repeats (best of each is reported)")
    p.add_argument("--default-allocator", action="store_true", help="skip steady_allocator() (see its docstring)")
    args = p.parse_args(argv)
    from envs.sb3 import SB3VecEnv

    steady = False if args.default_allocator else steady_allocator()

    with tempfile.TemporaryDirectory() as tmp:
        root = prepare_world(args.data_dir, Path(tmp))
        kw = dict(data_dir=root, split="train", features="synthetic_semantic", feature_mode="numpy")
        native = gym.make_vec("vln/R2R-v0", num_envs=args.envs, vectorization_mode="vector_entry_point", **kw)
        adapter = SB3VecEnv(gym.make_vec("vln/R2R-v0", num_envs=args.envs, vectorization_mode="vector_entry_point",
                                         world=native.unwrapped.world))
        time_native(native, 20, 0), time_adapter(adapter, 20, 0)  # warm-up
        best_native, best_adapter = 0.0, 0.0
        for r in range(args.repeats):
            n, n_eps = time_native(native, args.steps, r)
            a, a_eps = time_adapter(adapter, args.steps, r)
            best_native, best_adapter = max(best_native, n), max(best_adapter, a)
        result = {
            "envs": args.envs,
            "feature_dim": native.unwrapped.world.feature_dim,
            "steady_allocator": steady,
            "native_steps_per_s": round(best_native),
            "sb3_adapter_steps_per_s": round(best_adapter),
            "adapter_over_native": round(best_adapter / best_native, 3),
            "overhead_pct": round(100.0 * (best_native / best_adapter - 1.0), 1),
            # NEXT_STEP spends one step per episode on the reset (action ignored); SB3 resets in
            # the same step, so per agent transition (an action that acts) the adapter does more.
            "native_transitions_per_s": round(best_native * (1.0 - n_eps / (args.steps * args.envs))),
            "sb3_adapter_transitions_per_s": round(best_adapter),
            "episodes_per_repeat": {"native": n_eps, "adapter": a_eps},
            "goal": "overhead under 10%",
        }
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
