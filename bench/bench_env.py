"""Environment steps/s of our vector env against an EnvDrop-style baseline, same run.

Data: the real R2R val_unseen split and its 11 graphs from ../shared/data (skips when absent),
with random 640-d features (the size of CLIP RN50x4 features) written to a temporary store.

Baseline: the original EnvDrop environment structure: one batch-1 simulator per episode, the
candidates of a new viewpoint built by stepping the simulator through the 36 views (cached per
viewpoint, as EnvDrop's ``buffered_state_dict``), per-candidate Python loops to build features,
and EnvDrop's equivalent actions (turning the simulator view by view) to move.
Ours: ``gym.make_vec("vln/R2R-v0", vectorization_mode="vector_entry_point")``.
Ours runs in both feature modes: "numpy" (the (36, D) view and candidate features copied into
every observation, like the baseline; with Gymnasium's default ``copy=True`` new arrays every
step, and with ``copy=False`` one set of arrays overwritten in place) and "index" (feature rows
only; a trainer gathers from one device-resident tensor, so no features cross from host memory
per step). All run the same policy (teacher action with probability 0.7, else a random valid one).
The contenders are timed in interleaved rounds (baseline, then each of ours, repeated) so that
load from other processes affects them alike; each ratio is the median of the per-round ratios.
Goal: at least 50x at batch 64.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import envs  # noqa: F401
from envs.angles import angle_features
from vln.candidates import stepped_candidates
from vln.sim import r2r_simulator
from vln.sim.actions import equivalent_actions

from shared_data import SHARED_DATA as SHARED, add_require_data, skipped

DIM = 640


class EnvDropStyleEnv:
    """The original per-episode loops (R2R-EnvDrop r2r_src/env.py), on our simulator."""

    def __init__(self, conn: Path, episodes, features: dict, batch: int):
        self.sims = [r2r_simulator(conn) for _ in range(batch)]  # one batch-1 simulator per episode
        self.probe = r2r_simulator(conn)  # steps through the 36 views of new viewpoints
        self.episodes, self.features, self.buffered = episodes, features, {}

    def reset(self, rng):
        self.goals = []
        for s in self.sims:
            ep = self.episodes[int(rng.integers(len(self.episodes)))]
            s.newEpisode([ep.scan], [ep.path[0]], [ep.heading], [0])
            self.goals.append(ep)
        return self.observe()

    def candidates(self, scan, vp, view_index):
        key = f"{scan}_{vp}"
        if key not in self.buffered:
            self.buffered[key] = stepped_candidates(self.probe, scan, vp)
        feats = self.features[scan, vp]
        base = (view_index % 12) * math.radians(30)
        out = []
        for c in self.buffered[key]:
            c = dict(c)
            c["heading"] = c["normalized_heading"] - base
            c["feature"] = np.concatenate((feats[c["pointId"]], angle_features(c["heading"], c["elevation"])), -1)
            out.append(c)
        return out

    def observe(self):
        obs = []
        for s, ep in zip(self.sims, self.goals):
            st = s.getState()[0]
            base = (st.viewIndex % 12) * math.radians(30)
            feats = self.features[st.scanId, st.location.viewpointId]
            views = np.concatenate([feats, angle_features(np.arange(36) % 12 * math.radians(30) - base,
                                                          (np.arange(36) // 12 - 1) * math.radians(30))], -1)
            cands = self.candidates(st.scanId, st.location.viewpointId, st.viewIndex)
            g = s.navgraph[st.scanId]
            teacher = len(cands)
            if st.location.viewpointId != ep.goal:
                nxt = g.shortest_path(st.location.viewpointId, ep.goal)[1]
                teacher = [c["viewpointId"] for c in cands].index(nxt)
            obs.append(dict(views=views, candidates=cands, teacher=teacher))
        return obs

    def step(self, actions, obs):
        for s, a, o in zip(self.sims, actions, obs):
            if a == len(o["candidates"]):
                continue
            c = o["candidates"][a]
            for idx, h, e in equivalent_actions(s.getState()[0].viewIndex, c["pointId"], c["idx"]):
                s.makeAction([idx], [h], [e])
        return self.observe()


def policy(rng, teacher, n_valid):
    return teacher if rng.random() < 0.7 else int(rng.integers(n_valid))


class OursRunner:
    """Our vector env under the bench policy; ``run`` continues the same rollout."""

    def __init__(self, root, batch, mode="numpy", copy=True):
        self.vec = gym.make_vec("vln/R2R-v0", num_envs=batch, vectorization_mode="vector_entry_point", data_dir=root,
                                connectivity_dir=SHARED / "connectivity", split="val_unseen", features="bench",
                                feature_mode=mode, copy=copy)
        self.batch, self.rng = batch, np.random.default_rng(1)
        self.obs, self.info = self.vec.reset(seed=0)

    def run(self, seconds: float) -> float:
        """Env-steps/s over about ``seconds``."""
        batch, rng, vec = self.batch, self.rng, self.vec
        obs, info = self.obs, self.info
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            n_valid = obs["action_mask"][:, :-1].sum(1)
            teacher = info["teacher_action"]
            act = np.where(rng.random(batch) < 0.7, teacher, (rng.random(batch) * n_valid).astype(np.int64))
            obs, r, te, tr, info = vec.step(act)
            steps += 1
        rate = steps * batch / (time.perf_counter() - t0)
        self.obs, self.info = obs, info
        return rate


class BaselineRunner:
    """The EnvDrop-style env under the same policy (all episodes restart every 35 steps)."""

    def __init__(self, env: EnvDropStyleEnv, batch: int, rng):
        self.env, self.batch, self.rng = env, batch, rng
        self.obs, self.steps = env.reset(rng), 0

    def run(self, seconds: float) -> float:
        env, rng, obs = self.env, self.rng, self.obs
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            acts = [policy(rng, o["teacher"], len(o["candidates"])) if o["candidates"] else 0 for o in obs]
            if self.steps % 35 == 34:
                obs = env.reset(rng)
            else:
                obs = env.step(acts, obs)
            self.steps += 1
            steps += 1
        self.obs = obs
        return steps * self.batch / (time.perf_counter() - t0)


CONTENDERS = {
    "ours_numpy": ("ours, numpy mode (features in the observation, copy=True)", dict(mode="numpy")),
    "ours_numpy_nocopy": ("ours, numpy mode, copy=False (reused observation arrays)", dict(mode="numpy", copy=False)),
    "ours_index": ("ours, index mode (feature rows for a device-resident table)", dict(mode="index")),
}


def bench_batch(root, episodes, feats, batch: int, seconds: float, rounds: int) -> dict:
    """Interleaved rounds (baseline, then each of ours): medians and per-round ratios."""
    base_env = EnvDropStyleEnv(SHARED / "connectivity", episodes, feats, batch)
    BaselineRunner(base_env, batch, np.random.default_rng(2)).run(1.0)  # warm the per-viewpoint cache
    runners = {"envdrop_style": BaselineRunner(base_env, batch, np.random.default_rng(3))}
    runners.update({k: OursRunner(root, batch, **kw) for k, (_, kw) in CONTENDERS.items()})
    rates = {k: [] for k in runners}
    for _ in range(rounds):
        for k, r in runners.items():
            rates[k].append(r.run(seconds / rounds))
    base = np.array(rates["envdrop_style"])
    out = {"envdrop_style": round(float(np.median(base)))}
    for k in CONTENDERS:
        ratio = np.array(rates[k]) / base
        out[k] = round(float(np.median(rates[k])))
        out[k.replace("ours", "ratio")] = round(float(np.median(ratio)), 1)
        out[k.replace("ours", "ratio") + "_range"] = [round(float(ratio.min()), 1), round(float(ratio.max()), 1)]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="seconds per contender and batch size")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved measuring rounds")
    add_require_data(ap)
    args = ap.parse_args(argv)
    if not (SHARED / "R2R" / "R2R_val_unseen.json").exists():
        return skipped("bench_env", f"no R2R data at {SHARED}", args.require_data)
    from features.store import write_feature_store
    from vln.datasets import load_split
    from vln.graph import NavGraph

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "R2R").mkdir()
        for split in ("train", "val_unseen"):
            (root / "R2R" / f"R2R_{split}.json").write_bytes((SHARED / "R2R" / f"R2R_{split}.json").read_bytes())
        episodes = load_split("r2r", root, "val_unseen")
        nav = NavGraph(SHARED / "connectivity")
        rng = np.random.default_rng(0)
        feats = {}
        for scan in sorted({e.scan for e in episodes}):
            g = nav[scan]
            for i in np.flatnonzero(g.included):
                feats[scan, g.viewpoint_ids[i]] = rng.normal(size=(36, DIM)).astype(np.float32)
        write_feature_store(root / "features" / "bench.feats", ((s, v, f) for (s, v), f in feats.items()),
                            {"encoder": {"name": "bench"}, "random_weights": True})
        results = {}
        for batch in (1, 64):
            res = results[batch] = bench_batch(root, episodes, feats, batch, args.seconds, args.rounds)
            print(f"batch {batch:3d}: env-steps/s, median of {args.rounds} interleaved rounds; ratio to the "
                  f"baseline: median of the per-round ratios (min-max)")
            print(f"  {'EnvDrop-style baseline':62s} {res['envdrop_style']:9,d}")
            for k, (label, _) in CONTENDERS.items():
                r = k.replace("ours", "ratio")
                lo, hi = res[r + "_range"]
                print(f"  {label:62s} {res[k]:9,d}  x{res[r]:.1f} (x{lo:.1f}-x{hi:.1f})")
        print(f"goal: index mode at batch 64 >= x50: x{results[64]['ratio_index']:.1f}")
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
