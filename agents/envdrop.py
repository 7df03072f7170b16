"""Environmental dropout (Tan et al. 2019): one feature-dimension mask per environment.

Ordinary feature dropout zeroes entries independently per view; environmental dropout draws ONE
mask over the D visual channels and multiplies it into every view and candidate feature of an
environment, which looks to the agent like a new house (the same objects missing everywhere).
"""
from __future__ import annotations

import torch
from torch import nn


class EnvDropout(nn.Module):
    """Draws environmental-dropout masks.

    Args:
        p: drop probability of a feature channel (0.4 for back-translation, 0.3 for the follower).
        per: ``"episode"`` draws one mask per environment in the batch (shape (B, D)); ``"batch"``
            one mask shared by the whole batch, as the original ``drop_env(torch.ones(D))``.
    """

    def __init__(self, p: float = 0.4, per: str = "episode"):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        if per not in ("episode", "batch"):
            raise ValueError(f"per must be 'episode' or 'batch', got {per!r}")
        self.p, self.per = p, per

    def sample(self, batch_size: int, dim: int, device, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, D) float32 mask of 0 and 1/(1-p), constant over the views of an environment."""
        rows = batch_size if self.per == "episode" else 1
        keep = torch.rand(rows, dim, device=device, generator=generator) >= self.p
        mask = keep.float() / (1.0 - self.p)
        return mask.expand(batch_size, dim)
