"""Simulator throughput: agent-steps/s of makeAction + getState at batch 1 and 64.

Runs on the 90 real Matterport3D graphs in ../shared/data when present (skips otherwise, see
``bench/shared_data.py``).

In-run baseline: the same simulator computing ``navigableLocations`` from the geometry at every
step (``navigable_locations``, MatterSim's ``populateNavigable``, as the C++ simulator does), i.e.
without the per-(viewpoint, view) list cache; nothing else differs (the cache is bypassed, not
cleared, so the baseline pays nothing extra). The baseline a user would otherwise run is the C++
MatterSim itself, which is not installable here: with rendering off on a 2-core CPU it does about
133,000 agent-steps/s at batch 1 and 112,000 at batch 64 (measured outside this run); the ratio
against those anchor figures is printed too.

Usage: python bench/bench_sim.py [--seconds 2] [--require-data]
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

from shared_data import SHARED_DATA as SHARED, add_require_data, skipped

CPP_MATTERSIM = {1: 133_000, 64: 112_000}


def per_step_simulator(connectivity: Path, batch: int) -> Simulator:
    """The baseline: :func:`r2r_simulator` computing the navigable list of every step from the geometry
    (its ``view_key`` dropped, so the per-view cache is never read or filled)."""
    sim = r2r_simulator(connectivity, batch)
    navigable = sim._navigable
    sim._navigable = lambda graph, ix, heading, elevation, view_key=None: navigable(graph, ix, heading, elevation)
    return sim


def run(sim: Simulator, starts, batch: int, seconds: float, rng) -> float:
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
    add_require_data(ap)
    args = ap.parse_args(argv)
    if not (args.connectivity / "scans.txt").exists():
        return skipped("bench_sim", f"no connectivity graphs at {args.connectivity}", args.require_data)
    rng = np.random.default_rng(0)
    results = {}
    for batch in (1, 64):
        sim = r2r_simulator(args.connectivity, batch)
        graphs = sim.navgraph.load_all()
        starts = [(g.scan_id, v) for g in graphs for v, inc in zip(g.viewpoint_ids, g.included) if inc]
        run(sim, starts, batch, 2.0, rng)  # warm the per-view cache as training would
        ours = run(sim, starts, batch, args.seconds, rng)
        base = run(per_step_simulator(args.connectivity, batch), starts, batch, args.seconds / 2, rng)
        results[batch] = dict(ours=round(ours), per_step_navigable=round(base), ratio_vs_per_step=round(ours / base, 2),
                              cpp_mattersim=CPP_MATTERSIM[batch], ratio_vs_cpp=round(ours / CPP_MATTERSIM[batch], 2))
        print(f"batch {batch:3d}: {ours:10,.0f} agent-steps/s | same simulator, navigable list computed every step "
              f"{base:9,.0f} (x{ours / base:.1f}) | anchor: C++ MatterSim {CPP_MATTERSIM[batch]:,}, not measured here "
              f"(x{ours / CPP_MATTERSIM[batch]:.2f})")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
