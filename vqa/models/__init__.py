"""VQA models by name: ``MODELS.get(name)(num_words=..., num_answers=..., grid_dim=..., **options)``.

Every model maps ``(tokens (B, T) int64, grid (B, H, W, C) float, mask (B, H, W) bool, pos
(B, H, W, 2) float or None)`` to answer logits ``(B, A)``; padding cells (mask False) and padding
words (id 0) never receive attention.

Registered: ``mcan`` (:mod:`vqa.models.mcan`, ``size="small"|"large"``), ``pythia``
(:mod:`vqa.models.pythia`). Importing this package imports torch.
"""
from __future__ import annotations

from vln.registry import Registry

MODELS: Registry = Registry("vqa model")

from . import mcan, pythia  # noqa: E402,F401  (registrations)

__all__ = ["MODELS"]
