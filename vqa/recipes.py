"""Named training recipes: the optimiser, batch size, epochs and learning-rate schedule of a paper.

* ``mcan`` (MILVLG/mcan-vqa, as CLIP-ViL trains it): Adam (0.9, 0.98), eps 1e-9, lr 5e-5 x
  warm-up 1/4, 2/4, 3/4 in epochs 1-3, x0.2 from epoch 11 on and x0.04 from epoch 13 on (decay
  "at epochs 10 and 12", counted from 0), 13 epochs, batch 64.
* ``pythia`` (Pythia v0.1): Adamax lr 0.01, batch 512, constant rate.

Epochs are counted from 0; the factor of an iteration is that of the epoch it falls in.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from vln.registry import Registry


@dataclass(frozen=True)
class Recipe:
    """Attributes: optimiser name and keyword arguments, base lr, batch size, epochs, warm-up
    epochs (factor (e+1)/(warmup+1) in epoch e < warmup), decay epochs and their factor."""

    optimizer: str
    lr: float
    batch_size: int
    epochs: int
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup_epochs: int = 0
    decay_epochs: tuple[int, ...] = ()
    decay: float = 1.0

    def lr_factor(self, epoch: int) -> float:
        """Multiplier of the base lr in ``epoch`` (from 0)."""
        f = (epoch + 1) / (self.warmup_epochs + 1) if epoch < self.warmup_epochs else 1.0
        for d in self.decay_epochs:
            if epoch >= d:
                f *= self.decay
        return f

    def make_optimizer(self, params, lr: float | None = None) -> torch.optim.Optimizer:
        lr = self.lr if lr is None else lr
        if self.optimizer == "adam":
            return torch.optim.Adam(params, lr=lr, betas=self.betas, eps=self.eps)
        if self.optimizer == "adamax":
            return torch.optim.Adamax(params, lr=lr, betas=self.betas, eps=self.eps)
        raise ValueError(f"unknown optimizer {self.optimizer!r}")


RECIPES: Registry = Registry("vqa recipe")
RECIPES.register("mcan", Recipe("adam", 5e-5, 64, 13, betas=(0.9, 0.98), eps=1e-9, warmup_epochs=3,
                                decay_epochs=(10, 12), decay=0.2))
RECIPES.register("pythia", Recipe("adamax", 0.01, 512, 13))
