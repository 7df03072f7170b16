"""VQA hot paths in one run: MCAN training samples/s (SDPA vs plain attention) and the data
loader's samples/s (our fp16 grid store vs one float32 ``.npy`` per image).

* Training: the same MCAN (same weights, same batch: ``cells`` grid cells, 14 question tokens,
  3,129 answers, BCE-with-logits summed against 0/1 targets, Adam step) with two attention
  kernels: ``F.scaled_dot_product_attention`` (ours) vs ``softmax(q k^T / sqrt(d)) v`` written
  out with a separate dropout (the original MCAN code). Sides alternate over rounds; the ratio is
  the median of per-round ratios (plain time / SDPA time). bf16 autocast on a GPU, float32 on the CPU.
* Data loader: ``vqa.dataset.VQADataset`` + ``collate`` through a ``DataLoader`` (shuffled
  questions, 4 per image) over ``--images`` random grids of the bench's cells x channels, reading
  our sharded fp16 ``ImageGridStore`` (batches stay fp16; the model input is cast to float32 on
  the device) against the same grids as one float32 ``1 x H x W x C`` ``.npy`` per image
  (grid-feats-vqa's layout, read with ``features.grid_formats.NpyDirGrids``, batches float32),
  and our store read as float32 on the host (the NumPy cast's share). Page cache warm for all.

Configurations (the printed ``config`` says which ran):

* ``full`` (default; the issue's): MCAN-small (hidden 512, FF 2048, 8 heads, 6 encoder-decoder
  layers), batch 64, 558 cells (18 x 31, COCO at 600 x 1000), 14 tokens, 2,560 channels (CLIP
  RN50x4 grids), 256 images for the loader.
* ``quick`` (``--quick``; what ``bench/run_all.py`` runs on the CPU): batch 4, 1 layer, 256
  channels for training; the loader keeps 18 x 31 x 2560 grids over 64 images.

Usage: python bench/bench_vqa.py [--quick] [--device cpu|cuda] [--workers N] [--rounds R]
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features.grid_formats import NpyDirGrids, write_npy_dir  # noqa: E402
from features.image_store import GridRecord, ImageGridStore  # noqa: E402
from features.image_store_writer import write_image_store  # noqa: E402
from vqa.answers import AnswerVocab  # noqa: E402
from vqa.data import QAExample  # noqa: E402
from vqa.dataset import VQADataset, collate  # noqa: E402
from vqa.models import MODELS  # noqa: E402
from vqa.predict import autocast  # noqa: E402
from vqa.tokens import QuestionTokenizer  # noqa: E402

CONFIGS = {"full": dict(batch=64, layers=6, grid_dim=2560, images=256),
           "quick": dict(batch=4, layers=1, grid_dim=256, images=64)}
CELLS, TOKENS, ANSWERS, WORDS = (18, 31), 14, 3129, 1000


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def step_time(model, opt, batch, device, iters: int) -> tuple[float, float]:
    """(wall, CPU) seconds per training step (forward, BCE, backward, Adam), after one warm-up step;
    CPU seconds are this process's, all threads (steadier than wall time on a shared machine)."""
    tokens, grid, mask, target = batch
    for i in range(iters + 1):
        if i == 1:
            sync(device)
            start, cpu = time.perf_counter(), time.process_time()
        with autocast(device):
            logits = model(tokens, grid, mask)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), target, reduction="sum")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(device)
    return (time.perf_counter() - start) / iters, (time.process_time() - cpu) / iters


def bench_training(device: torch.device, batch: int, layers: int, grid_dim: int, iters: int, rounds: int) -> dict:
    h, w = CELLS
    torch.manual_seed(0)
    data = (torch.randint(1, WORDS, (batch, TOKENS), device=device), torch.randn(batch, h, w, grid_dim, device=device),
            torch.ones(batch, h, w, dtype=torch.bool, device=device), torch.rand(batch, ANSWERS, device=device).round())
    ours = MODELS.get("mcan")(num_words=WORDS, num_answers=ANSWERS, grid_dim=grid_dim, size="small", layers=layers).to(device)
    base = copy.deepcopy(ours)
    for m in base.modules():
        if hasattr(m, "plain"):
            m.plain = True
    sides = {"sdpa": (ours, torch.optim.Adam(ours.parameters(), 5e-5)),
             "plain": (base, torch.optim.Adam(base.parameters(), 5e-5))}
    times = {"sdpa": [], "plain": []}
    for r in range(rounds):
        for name in (("sdpa", "plain") if r % 2 == 0 else ("plain", "sdpa")):
            times[name].append(step_time(*sides[name], data, device, iters))
    out = {}
    for i, unit in enumerate(("samples_per_s", "samples_per_cpu_s")):
        ratios = [p[i] / s[i] for s, p in zip(times["sdpa"], times["plain"])]
        out.update({f"{name}_{unit}": round(statistics.median(batch / t[i] for t in v), 3) for name, v in times.items()})
        out[f"ratio_{unit}"] = {"median": round(statistics.median(ratios), 3), "range": [round(min(ratios), 3), round(max(ratios), 3)]}
    return out


def random_grids(n: int, channels: int, seed: int = 0):
    """``n`` (image_id, GridRecord) of (18, 31, channels) values in [-1, 1) (fp16-representable)."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        grid = (rng.random((*CELLS, channels), dtype=np.float32) * 2 - 1).astype(np.float16).astype(np.float32)
        yield str(i), GridRecord(grid)


def loader_rate(dataset, batch: int, workers: int, device: torch.device) -> tuple[float, float]:
    """Questions/s through a DataLoader (shuffled, ``collate``), batches moved to ``device`` as
    float32: (per wall second, per CPU second of this process; the latter is steadier on a shared
    machine and counts everything only when ``workers == 0``)."""
    g = torch.Generator().manual_seed(0)
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, generator=g, collate_fn=collate, num_workers=workers,
                        pin_memory=device.type == "cuda")
    start, cpu, n = time.perf_counter(), time.process_time(), 0
    for b in loader:
        b["grid"].to(device, non_blocking=True).float()
        n += len(b["index"])
    sync(device)
    return n / (time.perf_counter() - start), n / max(time.process_time() - cpu, 1e-9)


def bench_loader(tmp: Path, images: int, channels: int, batch: int, workers: int, rounds: int, device) -> dict:
    meta = {"encoder": {"name": "random", "architecture": "none", "weights": "random", "weights_sha256": None, "random": True},
            "preset": {"name": "bench"}}
    store_path = write_image_store(tmp / "bench.grids", random_grids(images, channels), channels=channels,
                                   encoder=meta["encoder"], preset=meta["preset"], dtype="float16")
    npy_path = write_npy_dir(tmp / "npy_att", random_grids(images, channels), meta)
    examples = [QAExample(i * 4 + k, str(i), f"how many things number {k} are there?", {"1": 1.0})
                for i in range(images) for k in range(4)]
    tokenizer, answers = QuestionTokenizer.build(ex.question for ex in examples), AnswerVocab(["1", "2"])
    with ImageGridStore(store_path) as store, NpyDirGrids(npy_path) as npy:
        sides = {"store_fp16": VQADataset(examples, store, tokenizer, answers),
                 "store_as_float32": VQADataset(examples, store, tokenizer, answers, dtype=np.float32),
                 "npy_float32": VQADataset(examples, npy, tokenizer, answers, dtype=np.float32)}
        rates = {name: [] for name in sides}
        loader_rate(sides["npy_float32"], batch, workers, device)  # warm the page cache for both layouts
        loader_rate(sides["store_fp16"], batch, workers, device)
        for r in range(rounds):
            for name in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
                rates[name].append(loader_rate(sides[name], batch, workers, device))
    out = {"images": images, "questions": len(examples), "batch": batch, "workers": workers}
    for i, unit in enumerate(("samples_per_s", "samples_per_cpu_s")):
        med = {name: statistics.median(r[i] for r in v) for name, v in rates.items()}
        out.update({f"{name}_{unit}": round(v, 1) for name, v in med.items()})
        out[f"ratio_store_fp16_vs_npy_{unit}"] = round(med["store_fp16"] / med["npy_float32"], 2)
        out[f"ratio_store_float32_vs_npy_{unit}"] = round(med["store_as_float32"] / med["npy_float32"], 2)
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="the reduced configuration (see the module docstring)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--iters", type=int, default=None, help="timed steps per side and round (default: 10 on a GPU, 1 on the CPU)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (ratio: the median)")
    p.add_argument("--workers", type=int, default=None, help="loader worker processes (default: 4 on a GPU, 0 on the CPU)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--no-train", action="store_true", help="skip the training-step part")
    p.add_argument("--no-loader", action="store_true", help="skip the data-loader part")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    name = "quick" if args.quick else "full"
    cfg = CONFIGS[name]
    out = {"config": name, "device": str(device), "batch": cfg["batch"], "layers": cfg["layers"], "hidden": 512,
           "cells": CELLS[0] * CELLS[1], "tokens": TOKENS, "grid_dim": cfg["grid_dim"]}
    print(json.dumps(out), flush=True)
    if not args.no_train:
        t0 = time.perf_counter()
        out["train"] = bench_training(device, cfg["batch"], cfg["layers"], cfg["grid_dim"],
                                      args.iters or (10 if gpu else 1), args.rounds)
        out["train"]["wall_s"] = round(time.perf_counter() - t0, 1)
        print(json.dumps({"train": out["train"]}), flush=True)
    if not args.no_loader:
        workers = args.workers if args.workers is not None else (4 if gpu else 0)
        with tempfile.TemporaryDirectory(prefix="bench_vqa_") as tmp:
            out["loader"] = bench_loader(Path(tmp), cfg["images"], 2560, 64, workers, args.rounds, device)
        print(json.dumps({"loader": out["loader"]}), flush=True)
    return out


if __name__ == "__main__":
    main()
