#!/usr/bin/env python
"""Train a 2-layer MLP on a seeded regression task with the run layer (the pattern of every trainer).

The tests run it for a few iterations, kill it with SIGKILL (``--die-at``), resume it, and compare
its parameters with an uninterrupted run. Each step draws from torch (batch, dropout), NumPy
(noise) and Python (a coin for the loss weight), so every saved random state matters.
"""
from __future__ import annotations

import os
import random
import signal
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.checkpoint import restore_rng_state, rng_state  # noqa: E402
from training.config import parse_config, setting  # noqa: E402
from training.logging import TrainLog  # noqa: E402
from training.run import LatestPolicy, RunDir, run_name  # noqa: E402

FORMAT = "clipvil-toy-checkpoint-v1"


@dataclass
class ToyConfig:
    out: str | None = setting(None, "run folder (default: runs/toy__<seed>__<time>); an existing one resumes")
    iters: int = setting(20, "training iterations", may_change_on_resume=True)
    hidden: int = setting(16, "hidden units of the MLP")
    lr: float = setting(1e-2, "Adam learning rate")
    batch_size: int = setting(8, "examples per batch")
    dropout: float = setting(0.1, "dropout after the hidden layer")
    seed: int = setting(0, "random seed")
    latest_every: int = setting(3, "iterations between latest.pt writes (0: off)", may_change_on_resume=True)
    latest_minutes: float = setting(0.0, "minutes between latest.pt writes (0: off)", may_change_on_resume=True)
    log_every: int = setting(5, "iterations between logged losses", may_change_on_resume=True)
    progress: bool = setting(False, "show a progress bar", may_change_on_resume=True)
    die_at: int = setting(0, "tests: kill this process with SIGKILL after this iteration (0: never)",
                          may_change_on_resume=True)


def build(cfg: ToyConfig):
    model = torch.nn.Sequential(torch.nn.Linear(4, cfg.hidden), torch.nn.ReLU(), torch.nn.Dropout(cfg.dropout),
                                torch.nn.Linear(cfg.hidden, 1))
    return model, torch.optim.Adam(model.parameters(), lr=cfg.lr)


def step(model, opt, cfg: ToyConfig) -> dict:
    x = torch.randn(cfg.batch_size, 4)
    y = x.sum(1, keepdim=True) + torch.from_numpy(np.random.normal(0, 0.1, (cfg.batch_size, 1))).float()
    weight = 1.0 if random.random() < 0.5 else 0.5
    loss = weight * torch.nn.functional.mse_loss(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return {"loss": float(loss.detach())}


def main(argv=None) -> dict:
    """Train; returns ``{"run": RunDir, "iteration": int, "model": state_dict}``."""
    cfg, given = parse_config(ToyConfig, argv, __doc__.splitlines()[0])
    run = RunDir(cfg.out or Path("runs") / run_name("toy", cfg.seed), fmt=FORMAT)
    cfg = run.resolve_config(cfg, given)
    torch.manual_seed(cfg.seed), np.random.seed(cfg.seed), random.seed(cfg.seed)
    model, opt = build(cfg)
    it = 0
    if run.resuming:
        tensors, meta = run.load_latest()
        model.load_state_dict(tensors["model"])
        opt.load_state_dict(tensors["optimizer"])
        restore_rng_state(tensors["rng"])
        it = meta["iteration"]
    run.check_iterations(it, cfg.iters)
    run.write_params(cfg)

    def save():
        run.save_latest({"model": model.state_dict(), "optimizer": opt.state_dict(), "rng": rng_state()},
                        {"iteration": it})
        policy.saved(it)

    policy = LatestPolicy(cfg.latest_every, cfg.latest_minutes)
    with TrainLog(run.tb_dir, cfg.iters, it, cfg.log_every, cfg.progress) as log:
        if it == 0:
            log.hparams(asdict(cfg))
        while it < cfg.iters:
            model.train()
            losses = step(model, opt, cfg)
            it += 1
            log.step(it, losses)
            if policy.due(it) or it == cfg.iters:
                save()
            if it == cfg.die_at:
                os.kill(os.getpid(), signal.SIGKILL)
    return {"run": run, "iteration": it, "model": model.state_dict()}


if __name__ == "__main__":
    from vln.errors import run_script

    run_script(main)
