"""Feature-extraction throughput: end-to-end views/s against the bare encoder forward pass.

Generates a small synthetic skybox set (random JPEG faces, identity-like poses) in a temporary
folder, then measures in the same run on the same device:

* end-to-end ``features.extract.extract_features`` (JPEG decoding threads, pinned copies,
  batched ``grid_sample`` rendering, autocast encoder, resumable store writes), views/s;
* the bare encoder forward pass on pre-made device tensors of the same shape and batch, views/s
  (the ceiling); the ratio end-to-end / bare is the pipeline's efficiency;
* the torch panorama renderer against the NumPy per-view renderer (``vln.render``), views/s.

Device auto (CUDA when available). Random weights: throughput does not depend on them.

Usage: python bench/bench_extract.py [--encoder clip_r50] [--viewpoints N] [--batch-viewpoints B]
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from features.encoders import default_device, get_encoder
from features.extract import extract_features, list_viewpoints, pick_amp_dtype
from features.panorama import PanoramaRenderer, view_angles
from vln.render import load_skybox_faces, render_view, skybox_paths
from vln.skybox import SYNTHETIC_ROTATION


def make_world(root: Path, n: int, face_size: int) -> tuple[Path, Path]:
    """Write ``n`` viewpoints of random skybox JPEGs and a matching connectivity file."""
    rng = np.random.default_rng(0)
    scans, conn = root / "scans", root / "connectivity"
    conn.mkdir(parents=True)
    records = []
    for i in range(n):
        vp = f"{i:032x}"
        pose = np.eye(4)
        pose[:3, :3] = SYNTHETIC_ROTATION
        pose[:3, 3] = (i, 0.0, 1.5)
        records.append({"image_id": vp, "pose": pose.reshape(-1).tolist(), "included": True,
                        "visible": [False] * n, "unobstructed": [False] * n, "height": 1.5})
        base = rng.integers(0, 256, (face_size // 8, face_size // 8, 3), dtype=np.uint8)
        for path in skybox_paths(scans, "benchScan", vp):
            path.parent.mkdir(parents=True, exist_ok=True)
            img = Image.fromarray(base).resize((face_size, face_size), Image.BILINEAR)
            img.save(path, quality=90)
    (conn / "benchScan_connectivity.json").write_text(json.dumps(records))
    (conn / "scans.txt").write_text("benchScan\n")
    return scans, conn


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_bare(encoder, n_views: int, batch: int, amp_dtype) -> float:
    h, w = encoder.spec.render_size
    x = torch.rand(batch, 3, h, w, device=encoder.device) * 255
    if amp_dtype is not None:
        x = x.to(torch.float16)
    encoder(x, amp_dtype=amp_dtype)  # warm-up (cudnn autotune, allocator)
    sync(encoder.device)
    t0 = time.perf_counter()
    done = 0
    while done < n_views:
        encoder(x, amp_dtype=amp_dtype)
        done += batch
    sync(encoder.device)
    return done / (time.perf_counter() - t0)


def bench_renderers(scans, vps, h, w, vfov, device, n_numpy: int) -> tuple[float, float]:
    faces = np.stack([load_skybox_faces(scans, s, v, max_size=512) for s, v, _ in vps])
    rots = np.stack([r for _, _, r in vps])
    pr = PanoramaRenderer(h, w, vfov, device=device)
    ft, rt = torch.from_numpy(faces).to(device), torch.from_numpy(rots).to(device)
    pr.render(ft[:1], rt[:1])
    sync(device)
    t0 = time.perf_counter()
    pr.render(ft, rt)
    sync(device)
    torch_vps = len(vps) * 36 / (time.perf_counter() - t0)
    heads, elevs = view_angles()
    t0 = time.perf_counter()
    for v in range(n_numpy):
        render_view(faces[0], rots[0], heads[v % 36], elevs[v % 36], vfov, w, h)
    numpy_vps = n_numpy / (time.perf_counter() - t0)
    return torch_vps, numpy_vps


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--encoder", default=None, help="default: clip_r50x4 on GPU, clip_r50 on CPU")
    p.add_argument("--viewpoints", type=int, default=None, help="default: 64 on GPU, 2 on CPU")
    p.add_argument("--batch-viewpoints", type=int, default=None, help="default: 8 on GPU, 1 on CPU")
    p.add_argument("--face-size", type=int, default=512)
    p.add_argument("--workers", type=int, default=4)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    device = default_device()
    gpu = device.type == "cuda"
    name = args.encoder or ("clip_r50x4" if gpu else "clip_r50")
    n = args.viewpoints or (64 if gpu else 2)
    bvp = args.batch_viewpoints or (8 if gpu else 1)
    if not gpu:
        torch.set_num_threads(max(1, torch.get_num_threads()))
    encoder = get_encoder(name, weights="random", device=device)
    amp_dtype = pick_amp_dtype(device)
    h, w = encoder.spec.render_size
    with tempfile.TemporaryDirectory() as tmp:
        scans, conn = make_world(Path(tmp), n, args.face_size)
        vps = list_viewpoints(conn)
        # warm-up batch, not timed
        extract_features(encoder, vps[:bvp], scans, Path(tmp) / "warm.feats", batch_viewpoints=bvp,
                         workers=args.workers, progress=False, resume=False)
        stats = extract_features(encoder, vps, scans, Path(tmp) / "out.feats", batch_viewpoints=bvp,
                                 workers=args.workers, progress=False, resume=False)
        bare = bench_bare(encoder, n * 36, bvp * 36, amp_dtype)
        torch_r, numpy_r = bench_renderers(scans, vps[: min(n, 4)], h, w, encoder.spec.render_vfov, device,
                                           n_numpy=36 if gpu else 12)
    result = {
        "device": str(device) + (f" ({torch.cuda.get_device_name()})" if gpu else f" ({torch.get_num_threads()} threads)"),
        "encoder": name, "amp": str(amp_dtype), "viewpoints": n, "batch_images": bvp * 36,
        "end_to_end_views_per_s": round(stats["views_per_s"], 1),
        "bare_forward_views_per_s": round(bare, 1),
        "ratio_end_to_end_vs_bare": round(stats["views_per_s"] / bare, 3),
        "torch_render_views_per_s": round(torch_r, 1),
        "numpy_render_views_per_s": round(numpy_r, 1),
        "ratio_torch_vs_numpy_render": round(torch_r / numpy_r, 2) if numpy_r > 0 else math.nan,
    }
    for k, v in result.items():
        print(f"{k:>30}: {v}")
    return result


if __name__ == "__main__":
    main()
