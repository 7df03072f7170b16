"""Benchmark: writing and reading a training checkpoint through the run layer vs bare torch.

Ours: :func:`training.checkpoint.save_checkpoint` (temporary file, fsync, atomic rename) and
:func:`training.checkpoint.load_checkpoint` (weights_only, format tag, zip checksums checked).
Baseline: ``torch.save(obj, path)`` and ``torch.load(path, weights_only=True)`` of the same payload,
what a training script would otherwise run. The payload is the EnvDrop follower for CLIP RN50x4
features (2,560-d, hidden 512) with its RMSprop state: what ``latest.pt`` holds. Rounds alternate
the two sides; the median ratio is printed with its range, and the cost of the default policy
(one write per 5 minutes) as a share of training time.

Run: ``python bench/bench_checkpoint.py [--rounds N]``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.follower import Follower, FollowerConfig  # noqa: E402
from training.checkpoint import load_checkpoint, rng_state, save_checkpoint  # noqa: E402


def payload() -> tuple[dict, dict]:
    model = Follower(FollowerConfig(vocab_size=991, feature_dim=2560))
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-4)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    return {"follower": model.state_dict(), "optimizer": opt.state_dict(), "rng": rng_state()}, {"iteration": 1}


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds (default: 5)")
    args = ap.parse_args(argv)
    tensors, meta = payload()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as d:
        ours, base = Path(d) / "latest.pt", Path(d) / "bare.pt"
        bare = {"format": "x", "tensors": tensors, "meta": "{}"}
        rows = {"save": ([], []), "load": ([], [])}
        for _ in range(args.rounds):
            rows["save"][0].append(timed(lambda: save_checkpoint(ours, tensors, meta)))
            rows["save"][1].append(timed(lambda: torch.save(bare, base)))
            rows["load"][0].append(timed(lambda: load_checkpoint(ours)))
            rows["load"][1].append(timed(lambda: torch.load(base, weights_only=True)))
        size = ours.stat().st_size / 1e6
    print(f"payload: follower RN50x4 hidden 512 + RMSprop state, {size:.1f} MB")
    out = {}
    for name, (a, b) in rows.items():
        ratios = [x / y for x, y in zip(a, b)]
        out[name] = statistics.median(a)
        print(f"{name}: ours {statistics.median(a):.3f} s, bare torch {statistics.median(b):.3f} s, "
              f"ratio x{statistics.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f}, median of {len(a)})")
    print(f"default policy (latest.pt every 5 minutes): {100 * out['save'] / 300:.2f}% of training time")
    return out


if __name__ == "__main__":
    main()
