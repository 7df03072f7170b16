"""Image grid features: extraction images/s against the bare encoder, store reads against .npy files.

Measured in the same run, on the same device and data:

* extraction: ``features.grid_extract.extract_grids`` end to end (JPEG decoding + resizing in
  DataLoader workers, batching by size, autocast + channels_last on CUDA, fp16 store writes on a
  thread) against the bare ``GridEncoder`` forward on pre-made device batches of the same size
  (on CUDA also ``torch.compile``d, the goal's baseline); the ratio is the pipeline's efficiency.
* store reads: random single-image reads and the whole-split stream of our sharded fp16 store
  against ``np.load`` of one ``1 x H x W x C`` float32 ``.npy`` per image (grid-feats-vqa's
  layout), images/s and MB/s (float32-equivalent), as float32 and as the stored fp16 (what a GPU
  trainer reads and converts on the device). The page cache is warm for both.

Random weights (throughput does not depend on them). CPU defaults are small (clip_r50 at a custom
224 x 224 input); on a GPU: clip_r50x4 at the vqa preset's fixed 600 x 1000.

Usage: python bench/bench_grids.py [--encoder clip_r50] [--preset custom --size 224x224]
       [--images N] [--batch-size B] [--read-images N] [--no-extract]
"""
from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from features.encoders import default_device, get_encoder
from features.extract import pick_amp_dtype
from features.grid import GridEncoder
from features.grid_extract import extract_grids, list_images
from features.grid_formats import write_npy_dir
from features.grid_presets import make_preset, parse_size
from features.image_store import GridRecord, open_image_store
from features.image_store_writer import write_image_store


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def write_jpegs(folder: Path, n: int, size=(480, 640)):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(n):
        base = rng.integers(0, 256, (size[0] // 8, size[1] // 8, 3), dtype=np.uint8)
        Image.fromarray(base).resize(size[::-1], Image.BILINEAR).save(folder / f"{i:06d}.jpg", quality=90)


def bench_bare(grids: GridEncoder, canvas, n: int, batch: int, amp_dtype, compiled: bool) -> float:
    x = torch.randn(batch, 3, *canvas, device=grids.device)
    if grids.device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    fn = grids
    if compiled:
        fn = torch.compile(grids.__call__)
    for _ in range(2 if compiled else 1):  # warm-up (compile, cudnn autotune, allocator)
        fn(x, amp_dtype=amp_dtype)
    sync(grids.device)
    t0, done = time.perf_counter(), 0
    while done < n:
        fn(x, amp_dtype=amp_dtype)
        done += batch
    sync(grids.device)
    return done / (time.perf_counter() - t0)


def bench_extraction(args, tmp: Path) -> dict:
    device = default_device()
    gpu = device.type == "cuda"
    encoder = get_encoder(args.encoder, weights="random", device=device)
    preset = (make_preset("custom", size=args.size) if args.preset == "custom"
              else make_preset(args.preset, resize=args.resize))
    amp_dtype = pick_amp_dtype(device)
    write_jpegs(tmp / "jpg", args.images)
    items = list_images(tmp / "jpg")
    canvas = preset.canvas(480, 640)
    grids = GridEncoder(encoder, pooled=preset.pooled)
    bare = bench_bare(grids, canvas, args.images, args.batch_size, amp_dtype, compiled=False)
    e2e = extract_grids(encoder, items, tmp / "x.grids", preset, dtype="float16", batch_size=args.batch_size,
                        workers=args.workers, progress=False, resume=False)
    out = {"encoder": args.encoder, "device": str(device), "input": list(canvas), "images": args.images,
           "batch": args.batch_size, "amp": str(amp_dtype), "bare_forward_images_per_s": round(bare, 2),
           "end_to_end_images_per_s": round(e2e["images_per_s"], 2),
           "ratio_end_to_end_vs_bare": round(e2e["images_per_s"] / bare, 3)}
    if gpu and not args.no_compile:
        comp = bench_bare(grids, canvas, args.images, args.batch_size, amp_dtype, compiled=True)
        out["compiled_forward_images_per_s"] = round(comp, 2)
        out["ratio_end_to_end_vs_compiled"] = round(e2e["images_per_s"] / comp, 3)
    return out


def bench_reads(n: int, tmp: Path, hw=(18, 31), channels=2560, reps: int = 2) -> dict:
    rng = np.random.default_rng(0)
    base = rng.standard_normal((*hw, channels)).astype(np.float32)
    recs = [(str(i), GridRecord(base + i)) for i in range(n)]
    enc = {"name": "bench", "architecture": "RN50x4-quickgelu", "weights": "random", "weights_sha256": None,
           "random": True}
    write_image_store(tmp / "r.grids", recs, channels=channels, encoder=enc, preset={"name": "vqa"},
                      dtype="float16", shard_bytes=256 << 20)
    write_npy_dir(tmp / "npy", recs, {})
    ids = [str(i) for i in rng.permutation(n)]
    mb = n * base.nbytes / 1e6
    store = open_image_store(tmp / "r.grids")

    def timed(fn):
        fn()  # warm the page cache
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        return best

    npy_dir = tmp / "npy"
    t_npy = timed(lambda: [np.load(npy_dir / f"{i}.npy")[0] for i in ids])
    times = {
        "npy_per_image": t_npy,
        "store_random_get": timed(lambda: [store.get(i) for i in ids]),
        "store_stream": timed(lambda: [None for _ in store.iter_records()]),
        # what a GPU trainer reads: the stored fp16, converted on the device
        "store_random_get_fp16": timed(lambda: [store.get(i, dtype=None) for i in ids]),
        "store_stream_fp16": timed(lambda: [None for _ in store.iter_records(dtype=None)]),
    }
    res = {"read_images": n, "grid": [*hw, channels], "store_MB_fp16": round(n * base.nbytes / 2e6, 1)}
    for name, t in times.items():
        res[f"{name}_images_per_s"] = round(n / t, 1)
        res[f"{name}_MB_per_s"] = round(mb / t, 1)  # float32-equivalent MB, as the .npy files hold
        if name != "npy_per_image":
            res[f"ratio_{name}_vs_npy"] = round(t_npy / t, 2)
    return res


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    gpu = torch.cuda.is_available()
    p.add_argument("--encoder", default="clip_r50x4" if gpu else "clip_r50")
    p.add_argument("--preset", default="vqa" if gpu else "custom")
    p.add_argument("--resize", default="fixed" if gpu else None)
    p.add_argument("--size", type=parse_size, default=(224, 224), help="input HxW of the custom preset")
    p.add_argument("--images", type=int, default=512 if gpu else 24)
    p.add_argument("--batch-size", type=int, default=32 if gpu else 8)
    p.add_argument("--workers", type=int, default=8 if gpu else 1)
    p.add_argument("--read-images", type=int, default=400)
    p.add_argument("--no-extract", action="store_true", help="only the store read benchmark")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile baseline on GPU")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_extract:
            out["extraction"] = bench_extraction(args, Path(tmp))
            print(json.dumps(out["extraction"]), flush=True)
        out["store_reads"] = bench_reads(args.read_images, Path(tmp))
        print(json.dumps(out["store_reads"]), flush=True)
    return out


if __name__ == "__main__":
    main()
