"""Environment steps/s of our vector env against an EnvDrop-style baseline, same run.

Data: the real R2R val_unseen split and its 11 graphs from ../shared/data (skips when absent),
with random 640-d features (the size of CLIP RN50x4 features) written to a temporary store.

Baseline: the original EnvDrop environment structure: one batch-1 simulator per episode, the
candidates of a new viewpoint built by stepping the simulator through the 36 views (cached per
viewpoint, as EnvDrop's ``buffered_state_dict``), per-candidate Python loops to build features,
and EnvDrop's equivalent actions (turning the simulator view by view) to move.
Ours: ``gym.make_vec("vln/R2R-v0", vectorization_mode="vector_entry_point")``.
Ours runs in both feature modes: "numpy" (the (36, D) view and candidate features copied into
every observation, like the baseline) and "index" (feature rows only; a trainer gathers from one
device-resident tensor, so no features cross from host memory per step).
Both run the same policy (teacher action with probability 0.7, else a random valid one).
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

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
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


def bench_ours(root, batch, seconds, rng, mode="numpy"):
    vec = gym.make_vec("vln/R2R-v0", num_envs=batch, vectorization_mode="vector_entry_point", data_dir=root,
                       connectivity_dir=SHARED / "connectivity", split="val_unseen", features="bench",
                       feature_mode=mode)
    obs, info = vec.reset(seed=0)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        n_valid = obs["action_mask"][:, :-1].sum(1)
        teacher = info["teacher_action"]
        act = np.where(rng.random(batch) < 0.7, teacher, (rng.random(batch) * n_valid).astype(np.int64))
        obs, r, te, tr, info = vec.step(act)
        steps += 1
    return steps * batch / (time.perf_counter() - t0)


def bench_baseline(env, batch, seconds, rng):
    obs = env.reset(rng)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        acts = [policy(rng, o["teacher"], len(o["candidates"])) if o["candidates"] else 0 for o in obs]
        if steps % 35 == 34:
            obs = env.reset(rng)
        else:
            obs = env.step(acts, obs)
        steps += 1
    return steps * batch / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args(argv)
    if not (SHARED / "R2R" / "R2R_val_unseen.json").exists():
        print(f"bench_env: skipped, no R2R data at {SHARED}")
        return 0
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
            ours = bench_ours(root, batch, args.seconds, np.random.default_rng(1))
            index = bench_ours(root, batch, args.seconds, np.random.default_rng(1), mode="index")
            base_env = EnvDropStyleEnv(SHARED / "connectivity", episodes, feats, batch)
            bench_baseline(base_env, batch, 1.0, np.random.default_rng(2))  # warm the per-viewpoint cache
            base = bench_baseline(base_env, batch, args.seconds, np.random.default_rng(3))
            results[batch] = dict(ours_numpy=round(ours), ours_index=round(index), envdrop_style=round(base),
                                  ratio_numpy=round(ours / base, 1), ratio_index=round(index / base, 1))
            print(f"batch {batch:3d}: EnvDrop-style baseline {base:7,.0f} env-steps/s | ours, features in the "
                  f"observation {ours:9,.0f} (x{ours / base:.1f}) | ours, feature rows for a device-resident "
                  f"table {index:9,.0f} (x{index / base:.1f})")
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
