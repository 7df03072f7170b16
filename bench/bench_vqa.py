"""MCAN training samples/s with PyTorch's scaled-dot-product attention against plain attention.

Both sides are the same MCAN (same weights, same batch: ``--cells`` grid cells, 14 question
tokens, 3,129 answers, BCE against soft targets, Adam step) and differ only in the attention
kernel: ``F.scaled_dot_product_attention`` (ours) versus ``softmax(q k^T / sqrt(d)) v`` written out
with a separate dropout (the original MCAN code). Sides alternate over rounds; the ratio is the
median of per-round ratios. bf16 autocast on a GPU, float32 on the CPU. Defaults: MCAN-small,
batch 64, 558 cells (18 x 31) on a GPU; on the CPU batch 8 and 1 layer unless given.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vqa.models import MODELS  # noqa: E402
from vqa.predict import autocast  # noqa: E402


def step_time(model, opt, batch, device, iters: int) -> float:
    tokens, grid, mask, target = batch
    for i in range(iters + 1):
        if i == 1:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        with autocast(device):
            logits = model(tokens, grid, mask)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), target, reduction="sum")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--layers", type=int, default=None)
    p.add_argument("--cells", default="18x31")
    p.add_argument("--grid-dim", type=int, default=2560, help="channels (CLIP RN50x4: 2560)")
    p.add_argument("--iters", type=int, default=None)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    batch, layers = args.batch or (64 if gpu else 8), args.layers or (6 if gpu else 1)
    iters = args.iters or (10 if gpu else 2)
    h, w = (int(x) for x in args.cells.split("x"))
    torch.manual_seed(0)
    data = (torch.randint(1, 1000, (batch, 14), device=device), torch.randn(batch, h, w, args.grid_dim, device=device),
            torch.ones(batch, h, w, dtype=torch.bool, device=device), torch.rand(batch, 3129, device=device).round())
    ours = MODELS.get("mcan")(num_words=1000, num_answers=3129, grid_dim=args.grid_dim, layers=layers).to(device)
    base = copy.deepcopy(ours)
    for m in base.modules():
        if hasattr(m, "plain"):
            m.plain = True
    sides = {"sdpa": (ours, torch.optim.Adam(ours.parameters(), 5e-5)), "plain": (base, torch.optim.Adam(base.parameters(), 5e-5))}
    ratios, rates = [], {"sdpa": [], "plain": []}
    for r in range(args.rounds):
        order = ["sdpa", "plain"] if r % 2 == 0 else ["plain", "sdpa"]
        t = {name: step_time(*sides[name], data, device, iters) for name in order}
        for name in t:
            rates[name].append(batch / t[name])
        ratios.append(t["plain"] / t["sdpa"])
    out = {"device": str(device), "batch": batch, "layers": layers, "cells": h * w,
           "sdpa_samples_per_s": statistics.median(rates["sdpa"]), "plain_samples_per_s": statistics.median(rates["plain"]),
           "ratio_median": statistics.median(ratios), "ratio_range": [min(ratios), max(ratios)]}
    print(out)
    return out


if __name__ == "__main__":
    main()
