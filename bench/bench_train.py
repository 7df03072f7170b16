"""Follower training iterations/s (batch 64, IL + A2C) against an EnvDrop-structured baseline.

Both sides run the same model, losses and optimiser from the same state on the same batches: each
round restores one snapshot (weights, RMSprop state, episode sampler, torch random state) before
each side, so they sample the same episodes and (up to float rounding of the angle features) the
same actions. They differ only in how a decoding step gets its inputs:

* ours (:class:`agents.bank.FeatureBank`): the features are one tensor on the device; a step moves
  only feature rows, candidate view indices and four angles per candidate;
* baseline (the original ``get_input_feat`` / ``_candidate_variable`` structure): a Python loop
  over the episodes builds each view and candidate feature (visual ++ angle) on the host, pads
  them, and copies them to the device every step.

Data: the synthetic world (``data/synthetic``, with ``synthetic_semantic`` features) when it
exists, else a small synthetic world generated in a temporary folder; with ``--data r2r`` the R2R
train split and graphs of ``../shared/data`` with a random 640-d store (the configuration of
``bench_train_speed.py``; skips when the data is absent, exits 1 under ``CI=true``). Runs on the
CPU, and on the GPU too when one is available (``--device`` picks one). The sides alternate in
interleaved rounds (which side goes first alternates too) and the ratio printed is the median of
the per-round ratios, with their range. Goal (issue 21): 10x the baseline on the GPU.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.bank import VIEW_INDEX_ANGLES, FeatureBank, StepInputs  # noqa: E402
from training.checkpoint import restore_rng_state, rng_state  # noqa: E402
from envs.angles import VIEW_ANGLE_FEATURES, angle_features  # noqa: E402
from devices import add_device_arg, devices_to_measure  # noqa: E402
from shared_data import SHARED_DATA as SHARED, add_require_data, skipped  # noqa: E402


class LoopBank:
    """Baseline step inputs: per-episode Python loops on the host, then a host-to-device copy."""

    def __init__(self, features: np.ndarray, device):
        self.features, self.device = features, torch.device(device)
        self.dim = int(features.shape[-1])

    def step_inputs(self, obs, env_mask=None, rows=None, lookahead: bool = False) -> StepInputs:
        """As :meth:`agents.bank.FeatureBank.step_inputs`: ``rows`` selects environments, ``env_mask``
        (B, D) scales the visual features (applied on the device after the copy); EnvDrop's
        candidates only (the bench's follower has no look-ahead)."""
        if lookahead:
            raise ValueError("LoopBank builds EnvDrop's candidates: it has no look-ahead (--candidate-lookahead)")
        sel = np.arange(obs["candidate_point_ids"].shape[0]) if rows is None else np.asarray(rows)
        B, K = len(sel), obs["candidate_point_ids"].shape[1]
        F = self.dim + 128
        views = np.zeros((B, 36, F), np.float32)
        cands = np.zeros((B, K + 1, F), np.float32)
        mask = np.ones((B, K + 1), bool)
        act = np.zeros((B, 128), np.float32)
        dist = np.zeros((B, K + 1), np.float32)
        for i, b in enumerate(sel.tolist()):  # as the original: one episode at a time, one candidate at a time
            view = int(obs["view_index"][b, 0])
            vis = self.features[int(obs["feature_row"][b, 0])]
            views[i] = np.concatenate([vis, VIEW_ANGLE_FEATURES[view % 12]], axis=1)
            for k, point in enumerate(obs["candidate_point_ids"][b].tolist()):
                if point < 0:
                    continue
                s, c, se, ce = obs["candidate_angles"][b, k]
                ang = angle_features(np.arctan2(s, c), np.arctan2(se, ce))
                cands[i, k] = np.concatenate([vis[point], ang])
                dist[i, k] = obs["candidate_distances"][b, k]
                mask[i, k] = False
            mask[i, K] = False
            act[i] = VIEW_INDEX_ANGLES[view]
        to = lambda a: torch.from_numpy(a).to(self.device)  # noqa: E731
        views, cands = to(views), to(cands)
        if env_mask is not None:
            m = (env_mask if rows is None else env_mask[torch.as_tensor(sel, device=env_mask.device)])[:, None, :]
            views[:, :, :self.dim] *= m
            cands[:, :, :self.dim] *= m
        return StepInputs(views, cands, to(mask), to(act), to(dist))


def data_root(tmp: Path) -> Path:
    from vln.synthetic import default_data_dir

    root = default_data_dir()
    if (root / "world.json").exists() and (root / "features" / "synthetic_semantic.feats").exists():
        return root
    from features.extract import run_extraction
    from vln.synthetic import generate_world

    root = tmp / "world"
    generate_world(root, houses=6, face_size=16, progress=False)
    run_extraction("synthetic_semantic", root, root / "connectivity", root / "features" / "synthetic_semantic.feats",
                   progress=False)
    return root


def snapshot(trainer) -> tuple:
    """Everything a follower iteration reads and changes: weights, optimiser, sampler, random state."""
    return copy.deepcopy((trainer.follower.state_dict(), trainer.optimizer.state_dict(),
                          trainer.sampler.state_dict(), rng_state(trainer.device)))


def restore(trainer, snap: tuple) -> None:
    weights, optim, sampler, rng = copy.deepcopy(snap)
    trainer.follower.load_state_dict(weights)
    trainer.optimizer.load_state_dict(optim)
    trainer.sampler.load_state_dict(sampler)
    restore_rng_state(rng, trainer.device)


def measure(trainer, bank, snap: tuple, iters: int) -> float:
    """Iterations/s of ``iters`` follower iterations (IL batch + A2C batch, backward, step) from ``snap``."""
    trainer.bank = bank
    restore(trainer, snap)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(iters):
        trainer.train_iteration()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    return iters / (time.perf_counter() - t)


def bench_device(trainer, rounds: int, iters: int) -> dict:
    """Interleaved rounds of both sides from one snapshot; medians and the per-round ratios."""
    banks = {"ours": FeatureBank(trainer.train_world.features, trainer.device),
             "baseline": LoopBank(np.asarray(trainer.train_world.features), trainer.device)}
    snap = snapshot(trainer)
    for bank in banks.values():  # warm-up (allocator, first-call costs), not timed
        measure(trainer, bank, snap, 1)
    rates = {k: [] for k in banks}
    for r in range(rounds):
        for k in (("ours", "baseline") if r % 2 == 0 else ("baseline", "ours")):
            rates[k].append(measure(trainer, banks[k], snap, iters))
    ratios = [o / b for o, b in zip(rates["ours"], rates["baseline"])]
    return {"ours_iters_per_s": float(np.median(rates["ours"])),
            "baseline_iters_per_s": float(np.median(rates["baseline"])),
            "ratio": float(np.median(ratios)), "ratio_min": min(ratios), "ratio_max": max(ratios)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--iters", type=int, default=2, help="timed iterations per side and round")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds per device")
    p.add_argument("--hidden", type=int, default=512, help="LSTM size (EnvDrop 512)")
    p.add_argument("--batch-size", type=int, default=64)
    add_device_arg(p)
    p.add_argument("--data", choices=("synthetic", "r2r"), default="synthetic",
                   help="synthetic: the synthetic world and its semantic features; r2r: the R2R train split and "
                        "graphs of ../shared/data with a random 640-d store (bench_train_speed.py's configuration)")
    add_require_data(p)
    args = p.parse_args(argv)
    if args.data == "r2r" and not (SHARED / "R2R" / "R2R_train.json").exists():
        return skipped("bench_train", f"no R2R data at {SHARED}", args.require_data)
    devices = devices_to_measure(p, args.device)
    from agents.config import TrainConfig
    from agents.trainer import Trainer
    from bench_train_speed import write_root

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.data == "r2r":
            root = write_root(Path(tmp))
            data = dict(features=str(root / "features" / "random640.feats"), dataset="r2r", allow_random_features=True)
        else:
            root = data_root(Path(tmp))
            data = dict(features="synthetic_semantic", dataset="synthetic")
        for dev in devices:
            cfg = TrainConfig(**data, data_dir=str(root), out=str(Path(tmp) / dev), eval_splits="",
                              batch_size=args.batch_size, hidden=args.hidden, device=dev, progress=False)
            trainer = Trainer(cfg)
            res = results[dev] = bench_device(trainer, args.rounds, args.iters)
            print(f"{dev} ({args.data}, {trainer.bank.dim}-d features): ours {res['ours_iters_per_s']:.3f} it/s, "
                  f"baseline {res['baseline_iters_per_s']:.3f} it/s, "
                  f"ratio {res['ratio']:.2f}x ({res['ratio_min']:.2f}-{res['ratio_max']:.2f} over {args.rounds} rounds; "
                  f"batch {args.batch_size}, hidden {args.hidden})", flush=True)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
