"""Benchmark: the SCST reward and one SCST step.

1. Vectorised CIDEr-D (captioning.cider.CiderD, df from 2,000 training reference sets fixed once)
   against pycocoevalcap's CiderScorer run per batch in a loop (what a user would otherwise call:
   it recounts df over the batch's references, less work than a fixed training df, and is given
   strings). Batches of 10 images x 5 sampled captions; captions/s of each and the ratio. The run
   also checks that both agree when given the same df (the batch's references).
2. One SCST step of a Transformer captioner split into sampling, greedy baseline, reward (CIDEr-D
   counting the end token, as in training) and backward, on the GPU when one is present (``--device
   auto``), else on one CPU thread.

Run: ``python bench/bench_caption.py [--device auto|cpu|cuda] [--rounds 3]``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from captioning.cider import CiderD  # noqa: E402
from captioning.model import CaptionModelConfig, CaptionTransformer  # noqa: E402
from captioning.scst import scst_step  # noqa: E402

VOCAB = 1000


def make_refs(rng, n_sets, n_refs=5):
    return [[rng.integers(3, VOCAB, size=rng.integers(8, 15)).tolist() for _ in range(n_refs)] for _ in range(n_sets)]


def bench_reward(rng, batches: int):
    train = make_refs(rng, 2000)
    scorer = CiderD(train, VOCAB)
    from pycocoevalcap.cider.cider_scorer import CiderScorer

    work = []
    for _ in range(batches):
        imgs = rng.integers(0, len(train), 10)
        idx = np.repeat(imgs, 5)
        samples = [np.concatenate([train[i][0][:rng.integers(4, 12)], rng.integers(3, VOCAB, 4)]).tolist() for i in idx]
        work.append((samples, idx))
    t = time.perf_counter()
    for samples, idx in work:
        scorer.score(samples, idx)
    ours = time.perf_counter() - t
    t = time.perf_counter()
    for samples, idx in work:
        cs = CiderScorer(n=4, sigma=6.0)
        for s, i in zip(samples, idx):
            cs += (" ".join(map(str, s)), [" ".join(map(str, r)) for r in train[i]])
        ref_scores = cs.compute_score()[1]
    base = time.perf_counter() - t
    # parity on the last batch with the batch's own df (the baseline's df)
    samples, idx = work[-1]
    same_df = CiderD([train[i] for i in idx], VOCAB).score(samples, np.arange(len(idx)))
    assert np.allclose(same_df, ref_scores, rtol=1e-10), "CIDEr-D disagrees with pycocoevalcap"
    n = 50 * batches
    return n / ours, n / base


def bench_scst(device, rounds: int):
    torch.manual_seed(0)
    cfg = CaptionModelConfig(vocab_size=VOCAB, feat_dim=256, d_model=256, n_layers=3, n_heads=8, d_ff=1024)
    model = CaptionTransformer(cfg).to(device).train()
    rng = np.random.default_rng(0)
    scorer = CiderD(make_refs(rng, 500), VOCAB)
    grids = torch.randn(10, 7, 7, 256, device=device)
    mask = torch.ones(10, 7, 7, dtype=torch.bool, device=device)
    opt = torch.optim.Adam(model.parameters(), lr=5e-6)
    rows = []
    for r in range(rounds + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        loss, info = scst_step(model, grids, mask, rng.integers(0, 500, 10), scorer, 5, "greedy")
        t = time.perf_counter()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        info["t_backward"] = time.perf_counter() - t
        if r:  # the first round warms up
            rows.append(info)
    return {k: float(np.median([x[k] for x in rows])) for k in ("t_sample", "t_greedy", "t_reward", "t_backward")}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="auto: cuda when available, else cpu")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batches", type=int, default=40)
    args = p.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cpu":
        torch.set_num_threads(1)
    ours, base = bench_reward(np.random.default_rng(0), args.batches)
    print(f"CIDEr-D reward, 10 images x 5 samples a batch: vectorised {ours:,.0f} captions/s, "
          f"pycocoevalcap CiderScorer per batch {base:,.0f} captions/s, ratio x{ours / base:.1f}")
    split = bench_scst(torch.device(args.device), args.rounds)
    total = sum(split.values())
    print(f"SCST step (d 256, 3+3 layers, 10 images x 5 samples, 49 cells, {args.device}): {total:.3f} s = "
          + ", ".join(f"{k[2:]} {v:.3f} s ({100 * v / total:.0f}%)" for k, v in split.items()))


if __name__ == "__main__":
    main()
