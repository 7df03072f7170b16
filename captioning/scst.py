"""Self-critical sequence training (Rennie et al. 2017) with the CIDEr-D reward.

Per image, ``n`` captions are sampled; each gets reward r = CIDEr-D against the image's training
references (df from all training reference sets) minus a baseline b:

* ``greedy``: the CIDEr-D of the image's greedy caption (decoded in eval mode, no gradient), as the
  released code;
* ``mean``: the mean reward of the image's *other* samples (Luo 2020), no extra decoding.

The loss is ImageCaptioning.pytorch's ``RewardCriterion``: -sum((r - b) * logp * mask) / sum(mask),
mask covering each sampled token up to and including its end token.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from .data import END
from .decode import greedy, sample


def token_mask(seqs: torch.Tensor) -> torch.Tensor:
    """(N, T) float: 1 for tokens up to and including the first end token."""
    is_end = (seqs == END).long()
    before = is_end.cumsum(1) - is_end  # end tokens strictly before this position
    return (before == 0).float()


def mean_of_others(rewards: np.ndarray, n: int) -> np.ndarray:
    """(B * n,) image-major rewards -> each sample's baseline: the mean of its image's other samples."""
    r = rewards.reshape(-1, n)
    return ((r.sum(1, keepdims=True) - r) / (n - 1)).reshape(-1)


def scst_step(model, grids, mask, set_index: np.ndarray, scorer, n: int, baseline: str,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
    """The SCST loss of one batch and its timings.

    Args:
        grids, mask: the batch's (B, H, W, C) grids and (B, H, W) mask.
        set_index: (B,) index of each image's reference set in ``scorer`` (a CiderD).
        n: samples per image; baseline: ``greedy`` or ``mean``.
    Returns:
        (loss, info) with info ``reward`` (mean sample reward), ``baseline``, and seconds
        ``t_sample``, ``t_greedy``, ``t_reward``.
    """
    if baseline == "mean" and n < 2:
        raise ValueError("the mean-of-others baseline needs at least 2 samples per image")
    t0 = time.perf_counter()
    seqs, logp = sample(model, grids, mask, n, generator=generator)
    t1 = time.perf_counter()
    if baseline == "greedy":
        was_training = model.training
        model.eval()
        with torch.no_grad():
            g = greedy(model, grids, mask)
        model.train(was_training)
    t2 = time.perf_counter()
    sample_np = _to_padded(seqs)
    rewards = scorer.score(sample_np, np.repeat(set_index, n))
    if baseline == "greedy":
        base = np.repeat(scorer.score(_to_padded(g), set_index), n)
    else:
        base = mean_of_others(rewards, n)
    t3 = time.perf_counter()
    adv = torch.as_tensor(rewards - base, dtype=logp.dtype, device=logp.device)
    m = token_mask(seqs)
    loss = -(adv[:, None] * logp * m).sum() / m.sum()
    return loss, {"reward": float(rewards.mean()), "baseline": float(base.mean()),
                  "t_sample": t1 - t0, "t_greedy": t2 - t1, "t_reward": t3 - t2}


def _to_padded(seqs: torch.Tensor) -> np.ndarray:
    """Token ids with everything from the end token on set to -1 (CiderD's padding)."""
    s = seqs.detach().cpu().numpy().astype(np.int64)
    after = np.cumsum(s == END, axis=1) > 0
    s[after] = -1
    return s
