"""Benchmark: generating the default synthetic world, and the skybox ray caster.

Run: ``python bench/bench_world.py [--houses 60] [--face-size 32] [--tmp-dir /dev/shm]``.

Prints:

* the skybox caster :func:`vln.synthetic.skycast.cast_skyboxes` against the baseline measured in
  the same run on the same cameras: :func:`vln.synthetic.render.cast` (the per-ray vectorised
  room walk) once per viewpoint, with the share of pixels where both find the same box;
* the time to generate the world: CPU seconds of this process (user + system, what a single
  core spends) and wall seconds, and its size on disk. Creating the ~8,000 JPEG files costs
  system time that depends on the file system (``--tmp-dir /dev/shm`` leaves it out).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from vln.synthetic.render import cast, skybox_rays
from vln.synthetic.skycast import cast_skyboxes
from vln.synthetic.world import DEFAULT_FACE_SIZE, DEFAULT_HOUSES, build_house, generate_world


def bench_caster(face_size: int, n_houses: int = 4) -> None:
    rng = np.random.default_rng(0)
    built = [build_house(rng, f"benchHouse{i}") for i in range(n_houses)]
    dirs = skybox_rays(face_size)
    n_vps = sum(len(b.vps) for b in built)
    per_batch = max(1, 98_304 // (6 * face_size * face_size))  # as vln.synthetic.world batches them
    t0 = time.process_time()
    fast = []
    for b in built:
        origins = np.array([v.pos for v in b.vps])
        fast += [cast_skyboxes(b.scene, origins[s:s + per_batch], face_size)[1]
                 for s in range(0, len(origins), per_batch)]
    t_fast = time.process_time() - t0
    t0 = time.process_time()
    ref = [cast(b.scene, v.pos, dirs)[1] for b in built for v in b.vps]
    t_ref = time.process_time() - t0
    fast = np.concatenate(fast).reshape(n_vps, -1)
    same = float(np.mean(fast == np.stack(ref)))
    print(f"skybox caster ({n_vps} viewpoints, {face_size} px faces): "
          f"cast_skyboxes {t_fast / n_vps * 1e3:.2f} ms/viewpoint, "
          f"baseline cast() per viewpoint {t_ref / n_vps * 1e3:.2f} ms/viewpoint; "
          f"speed-up x{t_ref / t_fast:.1f}; same box {same:.4%}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--houses", type=int, default=DEFAULT_HOUSES)
    p.add_argument("--face-size", type=int, default=DEFAULT_FACE_SIZE)
    p.add_argument("--tmp-dir", default=None, help="where to write the world (default: the system temp dir)")
    args = p.parse_args(argv)
    bench_caster(args.face_size)
    with tempfile.TemporaryDirectory(dir=args.tmp_dir) as tmp:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        s = generate_world(Path(tmp) / "world", houses=args.houses, seed=0, face_size=args.face_size)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        times = os.times()
        print(f"world: {args.houses} houses, {s['viewpoints']} viewpoints, paths {s['paths']}, "
              f"instructions {s['instructions']}, {s['bytes'] / 1e6:.1f} MB on disk ({tmp})")
        print(f"generation: {cpu:.2f} s CPU ({cpu / s['viewpoints'] * 1e3:.2f} ms/viewpoint; process so far "
              f"{times.user:.2f} s user + {times.system:.2f} s system), {wall:.2f} s wall")


if __name__ == "__main__":
    main()
