"""Gradient-norm clipping per module, as the original EnvDrop code clips.

R2R-EnvDrop clips its encoder's and its decoder's gradients separately (``clip_grad_norm(
self.encoder.parameters(), 40.)`` and then the decoder's), for the follower and for the speaker,
and leaves the follower's critic unclipped. One clip over all parameters differs whenever a norm
exceeds the bound: it scales the parts by one factor and counts the critic in the norm.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def clip_each(modules: Iterable[nn.Module], max_norm: float) -> list[float]:
    """Clip the gradient norm of each module's parameters to ``max_norm`` on its own.

    Returns each module's total gradient norm (L2, over its parameters' gradients) before clipping.
    """
    return [float(torch.nn.utils.clip_grad_norm_(m.parameters(), max_norm)) for m in modules]
