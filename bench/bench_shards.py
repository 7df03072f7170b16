"""Benchmark: reading pre-resized image shards vs decoding image files with PIL, images/s in one run.

Run: ``python bench/bench_shards.py [--images 80] [--size 480x640] [--canvas 384x640] [--rounds 3] [--tmp-dir DIR]``.

Writes ``--images`` photo-like images of ``--size`` as JPEG (quality 90) and as PNG, then per round:

* baseline (what a user would otherwise run): ``pretraining.images.FolderImages`` decoding each file
  with PIL and fitting it into the canvas (bicubic), in random order, one process;
* ours: ``pretraining.shards.ShardImages`` reading the same images' records from the shards made of
  the JPEGs, in the same random order, one process.

Both read from the page cache (files just written): the ratio is the CPU cost of decoding +
resizing against a copy. From a cold disk a shard record (3 x H x W bytes: 737 KB at 384 x 640)
is bigger than the JPEG it came from, so shards pay off when decoding, not the disk, is the
bound (the input-bound epochs of the original). The one-time shard writing rate is printed too.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from pretraining.images import FolderImages, index_images, parse_canvas
from pretraining.shards import ShardImages, write_image_shards


def photo_like(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth colour fields plus fine noise: compresses and decodes like a photo, not like white noise."""
    low = rng.integers(0, 256, (h // 32 + 1, w // 32 + 1, 3), dtype=np.uint8)
    img = np.asarray(Image.fromarray(low).resize((w, h), Image.Resampling.BICUBIC), dtype=np.int16)
    img = img + rng.integers(-12, 13, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def write_images(root: Path, n: int, size: tuple[int, int], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for fmt in ("jpg", "png"):
        (root / fmt).mkdir(parents=True)
    for i in range(n):
        im = Image.fromarray(photo_like(rng, *size))
        im.save(root / "jpg" / f"COCO_train2014_{i:012d}.jpg", quality=90)
        im.save(root / "png" / f"COCO_train2014_{i:012d}.png")


def rate(source, keys) -> float:
    t0 = time.perf_counter()
    for k in keys:
        source[k]
    return len(keys) / (time.perf_counter() - t0)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=80, help="images written for the bench")
    p.add_argument("--size", default="480x640", help="image file size HxW (COCO's typical 480x640)")
    p.add_argument("--canvas", default="384x640", help="canvas HxW (the paper's pre-training input)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median reported)")
    p.add_argument("--tmp-dir", default=None, help="where the images and shards go")
    args = p.parse_args(argv)
    size, canvas = parse_canvas(args.size), parse_canvas(args.canvas)
    with tempfile.TemporaryDirectory(dir=args.tmp_dir) as d:
        root = Path(d)
        write_images(root, args.images, size)
        jpgs, pngs = index_images(root / "jpg"), index_images(root / "png")
        summary = write_image_shards(sorted(jpgs.items()), root / "shards", canvas)
        shards, jpg_files, png_files = ShardImages(root / "shards"), FolderImages(jpgs, canvas), FolderImages(pngs, canvas)
        jpeg_kb = np.mean([p.stat().st_size for p in jpgs.values()]) / 1024
        print(f"bench_shards: {args.images} images of {size[0]}x{size[1]} (JPEG q90 {jpeg_kb:.0f} KB each) -> "
              f"{canvas[0]}x{canvas[1]} records ({shards.record_bytes / 1024:.0f} KB each); writing shards "
              f"{summary['images_per_s']:.1f} images/s (one process, once)")
        rng = np.random.default_rng(1)
        runs = {"shards": [], "jpeg": [], "png": []}
        for _ in range(args.rounds):
            keys = list(rng.permutation(sorted(jpgs)))
            runs["jpeg"].append(rate(jpg_files, keys))
            runs["png"].append(rate(png_files, keys))
            runs["shards"].append(rate(shards, keys))
        for k, (a, b) in {"jpeg": (runs["shards"], runs["jpeg"]), "png": (runs["shards"], runs["png"])}.items():
            ratios = [x / y for x, y in zip(a, b)]
            print(f"bench_shards: random-order reads, shards {statistics.median(a):.0f} images/s vs PIL decode + "
                  f"fit of {k.upper()} files {statistics.median(b):.1f} images/s: x{statistics.median(ratios):.1f} "
                  f"(rounds x{min(ratios):.1f}-x{max(ratios):.1f})")


if __name__ == "__main__":
    main()
