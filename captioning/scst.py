"""Self-critical sequence training (Rennie et al. 2017) with the CIDEr-D reward.

Per image, ``n`` captions are sampled; each gets reward r = CIDEr-D against the image's training
references (df from all training reference sets) minus a baseline b:

* ``greedy``: the CIDEr-D of the image's greedy caption (decoded in eval mode, no gradient), as the
  released code;
* ``mean``: the mean reward of the image's *other* samples (Luo 2020), no extra decoding.

The reward counts the end token as a word (``count_end``, default), as the released code does (its
``array_to_str`` keeps the ``0`` that ends a caption shorter than the maximum length, in samples and
references alike): the bigram "<last word> <end>" is then rewarded only for endings the references
have. Without it, samples learn to stop mid-phrase ("a grey towel rack in a"), which the words-only
CIDEr-D barely penalises and the evaluation metric does.

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


def reward_scorer(enc, vocab_size: int, max_len: int, count_end: bool = True):
    """The CIDEr-D reward's scorer: df from the training references ``enc`` (EncodedCaptions),
    each ending with the end token when ``count_end`` and shorter than ``max_len`` (as samples)."""
    from .cider import CiderD

    def ref(r):
        return r + [END] if count_end and len(r) < max_len else r

    return CiderD([[ref(r) for r in enc.refs(i)] for i in range(len(enc.image_ids))], vocab_size)


def scst_step(model, grids, mask, set_index: np.ndarray, scorer, n: int, baseline: str,
              generator: torch.Generator | None = None, temperature: float = 1.0,
              count_end: bool = True) -> tuple[torch.Tensor, dict]:
    """The SCST loss of one batch and its timings.

    Args:
        grids, mask: the batch's (B, H, W, C) grids and (B, H, W) mask.
        set_index: (B,) index of each image's reference set in ``scorer`` (a CiderD,
            :func:`reward_scorer` built with the same ``count_end``).
        n: samples per image; baseline: ``greedy`` or ``mean``; temperature: of the sampling
            (the log-probabilities of the loss are the model's, at temperature 1).
    Returns:
        (loss, info) with info ``reward`` (mean sample reward), ``baseline``, and seconds
        ``t_sample``, ``t_greedy``, ``t_reward``.
    """
    if baseline == "mean" and n < 2:
        raise ValueError("the mean-of-others baseline needs at least 2 samples per image")
    t0 = time.perf_counter()
    seqs, logp = sample(model, grids, mask, n, generator=generator, temperature=temperature)
    t1 = time.perf_counter()
    if baseline == "greedy":
        was_training = model.training
        model.eval()
        with torch.no_grad():
            g = greedy(model, grids, mask)
        model.train(was_training)
    t2 = time.perf_counter()
    rewards = scorer.score(reward_tokens(seqs, count_end), np.repeat(set_index, n))
    if baseline == "greedy":
        base = np.repeat(scorer.score(reward_tokens(g, count_end), set_index), n)
    else:
        base = mean_of_others(rewards, n)
    t3 = time.perf_counter()
    adv = torch.as_tensor(rewards - base, dtype=logp.dtype, device=logp.device)
    m = token_mask(seqs)
    loss = -(adv[:, None] * logp * m).sum() / m.sum()
    return loss, {"reward": float(rewards.mean()), "baseline": float(base.mean()),
                  "t_sample": t1 - t0, "t_greedy": t2 - t1, "t_reward": t3 - t2}


def reward_tokens(seqs: torch.Tensor, count_end: bool = True) -> np.ndarray:
    """(N, T) decoded ids -> CiderD's -1-padded ids: the words, and the first end token when
    ``count_end`` (a caption cut at the maximum length has none, as in the released code)."""
    s = seqs.detach().cpu().numpy().astype(np.int64)
    is_end = s == END
    after = np.cumsum(is_end, axis=1) - (is_end if count_end else 0) > 0
    s[after] = -1
    return s
