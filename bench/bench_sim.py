"""Simulator throughput: agent-steps/s of makeAction + getState at batch 1 and 64.

Runs on the 90 real Matterport3D graphs in ../shared/data when present (skips otherwise).
Baseline measured in the same run: the same simulator with its per-view navigable cache
disabled, i.e. recomputing ``populateNavigable`` every step as the C++ MatterSim does. The C++
MatterSim itself (rendering off, 2-core machine) does about 112,000 agent-steps/s at batch 64
and 133,000 at batch 1; the ratio against those figures is printed too.

Usage: python bench/bench_sim.py [--seconds 2]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from vln.sim import Simulator, r2r_simulator

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
CPP_MATTERSIM = {1: 133_000, 64: 112_000}


def run(sim: Simulator, starts, batch: int, seconds: float, rng, uncached: bool = False) -> float:
    """Random agents (random navigable index and turn each step); returns agent-steps/s."""
    pick = rng.integers(0, len(starts), batch)
    sim.newEpisode([starts[i][0] for i in pick], [starts[i][1] for i in pick],
                   rng.uniform(0, 2 * math.pi, batch).tolist(), [0.0] * batch)
    rand = rng.integers(0, 1 << 30, size=(4096, batch)).tolist()
    turns = rng.integers(-1, 2, size=(4096, batch)).tolist()
    zeros = [0] * batch
    steps, t0 = 0, time.perf_counter()
    while True:
        for r, h in zip(rand, turns):
            if uncached:
                for g in sim._graph._graphs.values():
                    g.__dict__.pop("_navigable_cache", None)
            states = sim.getState()
            idx = [r[i] % len(s.navigableLocations) for i, s in enumerate(states)]
            sim.makeAction(idx, h, zeros)
            steps += 1
            if steps % 256 == 0 and time.perf_counter() - t0 > seconds:
                return steps * batch / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--connectivity", type=Path, default=SHARED / "connectivity")
    args = ap.parse_args(argv)
    if not (args.connectivity / "scans.txt").exists():
        print(f"bench_sim: skipped, no connectivity graphs at {args.connectivity}")
        return 0
    rng = np.random.default_rng(0)
    results = {}
    for batch in (1, 64):
        sim = r2r_simulator(args.connectivity, batch)
        graphs = sim.navgraph.load_all()
        starts = [(g.scan_id, v) for g in graphs for v, inc in zip(g.viewpoint_ids, g.included) if inc]
        run(sim, starts, batch, 2.0, rng)  # warm the per-view cache as training would
        ours = run(sim, starts, batch, args.seconds, rng)
        base = run(r2r_simulator(args.connectivity, batch), starts, batch, args.seconds / 2, rng, uncached=True)
        results[batch] = dict(ours=round(ours), uncached_baseline=round(base), ratio_vs_baseline=round(ours / base, 2),
                              cpp_mattersim=CPP_MATTERSIM[batch], ratio_vs_cpp=round(ours / CPP_MATTERSIM[batch], 2))
        print(f"batch {batch:3d}: {ours:10,.0f} agent-steps/s | uncached baseline {base:9,.0f} "
              f"(x{ours / base:.1f}) | C++ MatterSim reference {CPP_MATTERSIM[batch]:,} (x{ours / CPP_MATTERSIM[batch]:.2f})")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
