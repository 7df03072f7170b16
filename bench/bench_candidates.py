"""Time to precompute the EnvDrop panoramic candidates of every viewpoint of the 90 real scans.

Ours: ``vln.candidates.candidate_table`` (vectorised NumPy over all edges and 36 views).
In-run baseline: our own Python loop stepping ``vln.sim`` through the 36 views of each viewpoint
(``stepped_candidates``, EnvDrop's structure) on a sample of viewpoints, extrapolated to all of
them. It is not what a user would otherwise run: that is EnvDrop's loop on the C++ MatterSim,
which takes about 4 s for all viewpoints (measured on a 2-core CPU; MatterSim is not installable
here, so the figure is an anchor, not measured in this run). The target is under 1 s.
Skips when ../shared/data is absent (see ``bench/shared_data.py``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from vln.candidates import candidate_table, stepped_candidates
from vln.graph import NavGraph
from vln.sim import r2r_simulator

from shared_data import SHARED_DATA, add_require_data, skipped

SHARED = SHARED_DATA / "connectivity"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_require_data(ap)
    args = ap.parse_args(argv)
    if not (SHARED / "scans.txt").exists():
        return skipped("bench_candidates", f"no connectivity graphs at {SHARED}", args.require_data)
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
          f"our Python 36-view stepping loop {base_s:.1f} s (extrapolated from {len(sample)}) x{base_s / ours_s:.0f} | "
          f"anchor: C++ MatterSim 36-view stepping ~4 s, not measured here (x{4.0 / ours_s:.0f})")
    print(json.dumps(dict(viewpoints=n_vp, ours_s=round(ours_s, 4), python_stepping_s=round(base_s, 2),
                          ratio_vs_python_stepping=round(base_s / ours_s, 1), load_s=round(load_s, 2))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
