"""Benchmark: building the synthetic V&L corpus of the default world, and its annotation grid stores.

Run: ``python bench/bench_vl_corpus.py [--houses 60] [--image-size small] [--world DIR] [--tmp-dir /dev/shm]``.

Prints:

* the corpus build (views, segment maps, every text format): CPU seconds of this process (what a
  single core spends; the wall time on a shared machine is longer) and wall seconds, per image;
* the baseline measured in the same run on a sample of the same views: rendering each view
  directly with the reference per-view ray caster (:func:`vln.synthetic.render.cast` +
  :func:`~vln.synthetic.render.shade`, one ray per pixel: what a renderer of views would do
  without the skybox sampling), pixels only, no text; the ratio is baseline CPU per image over
  the corpus's CPU per image (everything included), and the share of pixels whose object the
  corpus's label maps and the reference cast agree on;
* the ``synthetic_semantic_grid`` stores of the three grid presets: images/s.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from vlcorpus import SPLITS, make_vl_corpus, read_label_map, read_scene_graphs
from vlcorpus.scene import load_houses
from vlcorpus.views import VFOV
from vln.skybox import view_directions
from vln.synthetic.render import cast, shade
from vln.synthetic.world import DEFAULT_HOUSES, generate_world


def bench_baseline(world: Path, corpus: Path, n_images: int) -> tuple[float, float]:
    """(CPU seconds per image of the reference per-view caster, share of pixels whose object agrees)."""
    graphs = [(names["folder"], g) for names in SPLITS.values()
              for g in read_scene_graphs(corpus, names["folder"]).values()]
    sample = graphs[:: max(1, len(graphs) // n_images)][:n_images]
    houses = load_houses(world, sorted({g["scan"] for _, g in sample}))
    agree = []
    t0 = time.process_time()
    for folder, g in sample:
        hs = houses[g["scan"]]
        pos = hs.positions[hs.viewpoints.index(g["viewpoint"])]
        dirs = view_directions(g["heading"], g["elevation"], VFOV, g["width"], g["height"]).reshape(-1, 3)
        t, box = cast(hs.scene, pos, dirs)
        shade(hs.scene, pos, dirs, t, box)
        inst = {s["label"]: s["instance"] for s in g["segments"]}
        ours = np.array([inst.get(int(v), -1) for v in range(int(max(inst, default=0)) + 1)])
        labels = read_label_map(corpus, folder, g["file_name"]).reshape(-1)
        agree.append(float(np.mean(ours[labels] == np.where(box >= 0, hs.scene.instance[box], -1))))
    return (time.process_time() - t0) / len(sample), float(np.mean(agree))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--houses", type=int, default=DEFAULT_HOUSES, help="houses of the world generated for the bench")
    p.add_argument("--world", default=None, help="use this world instead of generating one")
    p.add_argument("--image-size", default="small", help="corpus image size (name or HxW)")
    p.add_argument("--baseline-images", type=int, default=40, help="views rendered by the baseline")
    p.add_argument("--tmp-dir", default=None, help="where to write (default: the system temp dir)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.tmp_dir) as tmp:
        world = Path(args.world) if args.world else Path(tmp) / "world"
        if not args.world:
            generate_world(world, houses=args.houses, seed=0)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        s = make_vl_corpus(world, Path(tmp) / "vl", image_size=args.image_size)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        n = sum(c["images"] for c in s["counts"].values())
        totals = {k: sum(c[k] for c in s["counts"].values()) for k in next(iter(s["counts"].values()))}
        print(f"corpus: {totals} at {s['image_size'][0]}x{s['image_size'][1]} (skybox faces {s['face_size']} px)")
        print(f"build: {cpu:.2f} s CPU ({cpu / n * 1e3:.1f} ms/image, everything), {wall:.2f} s wall")
        base, agree = bench_baseline(world, Path(tmp) / "vl", args.baseline_images)
        print(f"baseline: reference per-view caster {base * 1e3:.1f} ms/image CPU (pixels only); "
              f"ratio x{base / (cpu / n):.2f}; label maps agree with it on {agree:.2%} of pixels")
        from features.semantic_grid import write_semantic_grid_store

        for preset in ("vqa", "caption", "pretrain"):
            t0 = time.perf_counter()
            write_semantic_grid_store(Path(tmp) / "vl", preset)
            dt = time.perf_counter() - t0
            print(f"synthetic_semantic_grid {preset}: {n / dt:.0f} images/s ({dt:.2f} s wall)")


if __name__ == "__main__":
    main()
