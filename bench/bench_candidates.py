"""Time to precompute the EnvDrop panoramic candidates of every viewpoint of the 90 real scans.

Ours: ``vln.candidates.candidate_table`` (vectorised NumPy over all edges and 36 views).
Baseline, measured in the same run: EnvDrop's loop stepping the simulator through the 36 views
of each viewpoint (``stepped_candidates``) on a sample of viewpoints, extrapolated to all of
them. The C++ MatterSim stepping through the 36 views takes about 4 s for all viewpoints; the
target is under 1 s. Skips when ../shared/data is absent.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from vln.candidates import candidate_table, stepped_candidates
from vln.graph import NavGraph
from vln.sim import r2r_simulator

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "connectivity"


def main(argv=None) -> int:
    if not (SHARED / "scans.txt").exists():
        print(f"bench_candidates: skipped, no connectivity graphs at {SHARED}")
        return 0
    t0 = time.perf_counter()
    graphs = NavGraph(SHARED).load_all()
    load_s = time.perf_counter() - t0
    n_vp = sum(int(g.included.sum()) for g in graphs)

    t0 = time.perf_counter()
    n_cand = sum(len(candidate_table(g).viewpoint) for g in graphs)
    ours_s = time.perf_counter() - t0

    sim = r2r_simulator(SHARED)
    rng = np.random.default_rng(0)
    sample = [(g.scan_id, g.viewpoint_ids[i]) for g in graphs for i in np.flatnonzero(g.included)]
    sample = [sample[i] for i in rng.choice(len(sample), 300, replace=False)]
    t0 = time.perf_counter()
    for scan, vp in sample:
        stepped_candidates(sim, scan, vp)
    base_s = (time.perf_counter() - t0) / len(sample) * n_vp

    print(f"loading 90 graphs: {load_s:.2f} s")
    print(f"candidates of {n_vp:,} viewpoints ({n_cand:,} candidates): ours {ours_s:.3f} s | "
          f"36-view stepping baseline {base_s:.1f} s (extrapolated from {len(sample)}) | x{base_s / ours_s:.0f} | "
          f"C++ MatterSim stepping ~4 s (x{4.0 / ours_s:.0f})")
    print(json.dumps(dict(viewpoints=n_vp, ours_s=round(ours_s, 4), baseline_s=round(base_s, 2),
                          ratio=round(base_s / ours_s, 1), load_s=round(load_s, 2))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
