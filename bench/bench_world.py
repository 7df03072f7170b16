"""Benchmark: generating the default synthetic world, and the vectorised ray caster.

Run: ``python bench/bench_world.py [--houses 60] [--face-size 64]``. Prints the generation time
and size on disk of the world, and the speed of :func:`vln.synthetic.render.cast` (room by room,
vectorised) against a per-ray Python loop over every box (the baseline), measured in this run on
the same rays and checked to give the same hits.
"""
from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from vln.synthetic.render import cast, skybox_rays
from vln.synthetic.world import DEFAULT_FACE_SIZE, DEFAULT_HOUSES, build_house, generate_world


def python_loop_cast(scene, origin, dirs):
    """The baseline: one ray at a time, every box, slab test in plain Python."""
    lo, hi = scene.lo.tolist(), scene.hi.tolist()
    out = []
    for d in dirs.tolist():
        inv = [1.0 / (c if abs(c) > 1e-12 else 1e-12) for c in d]
        best, best_k = math.inf, -1
        for k in range(len(lo)):
            tn, tf = -math.inf, math.inf
            for a in range(3):
                t0 = (lo[k][a] - origin[a]) * inv[a]
                t1 = (hi[k][a] - origin[a]) * inv[a]
                if t0 > t1:
                    t0, t1 = t1, t0
                tn, tf = max(tn, t0), min(tf, t1)
            if 1e-4 < tn <= tf and tn < best:
                best, best_k = tn, k
        out.append(best_k)
    return np.array(out)


def bench_caster(face_size: int, sample: int = 400) -> None:
    rng = np.random.default_rng(0)
    built = build_house(rng, "benchHouse0")
    dirs = skybox_rays(face_size)
    origins = [v.pos for v in built.vps[:8]]
    t0 = time.perf_counter()
    for o in origins:
        _, box = cast(built.scene, o, dirs)
    vec_per_ray = (time.perf_counter() - t0) / (len(origins) * len(dirs))
    pick = rng.choice(len(dirs), sample, replace=False)
    t0 = time.perf_counter()
    ref = python_loop_cast(built.scene, origins[-1].tolist(), dirs[pick])
    loop_per_ray = (time.perf_counter() - t0) / sample
    agree = float(np.mean(ref == box[pick]))
    print(f"ray caster: {len(built.scene.lo)} boxes; vectorised {vec_per_ray * 1e6:.2f} us/ray "
          f"({vec_per_ray * len(dirs) * 1e3:.1f} ms per {face_size}px skybox), per-ray Python loop "
          f"{loop_per_ray * 1e6:.1f} us/ray; speed-up x{loop_per_ray / vec_per_ray:.0f}; same hits {agree:.1%}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--houses", type=int, default=DEFAULT_HOUSES)
    p.add_argument("--face-size", type=int, default=DEFAULT_FACE_SIZE)
    args = p.parse_args(argv)
    bench_caster(args.face_size)
    with tempfile.TemporaryDirectory() as tmp:
        s = generate_world(Path(tmp) / "world", houses=args.houses, seed=0, face_size=args.face_size)
        print(f"default world: {args.houses} houses, {s['viewpoints']} viewpoints, paths {s['paths']}, "
              f"instructions {s['instructions']}")
        print(f"generation {s['seconds']:.1f} s ({s['seconds'] / s['viewpoints'] * 1e3:.1f} ms/viewpoint), "
              f"{s['bytes'] / 1e6:.1f} MB on disk")


if __name__ == "__main__":
    main()
