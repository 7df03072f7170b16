"""Which rows of a decoding step's tensors are running episodes, and the random draws made for them.

A rollout of B episodes computes only the episodes still running (:mod:`agents.rollout`), where the
original EnvDrop computes every row until the last episode ends and throws the finished rows'
results away. Every random draw of a step (the dropout and feature-dropout masks, the sampled
actions, the critic's dropout) is made for the running episodes only, in row order, on either
path: a computation that holds finished rows too (the per-row baseline) gives them no dropout and
STOP, results no loss and no action uses, and takes the same random numbers as the computation of
the running rows alone. So the two compute the same losses, gradients and sampled actions (to
float rounding), and the draws cost what the running rows need (a step's feature-dropout masks
alone are B x 36 x D uniform numbers: a fifth of an iteration when drawn for every row).

The draws come from torch's global generator, or from the generator of an enclosing
:func:`draws_from` block of the drawing thread: the trainer rolls out an iteration's two batches
(IL and A2C) each on its own generator, so that the two can run on two threads at once and still
draw what they draw one after the other.
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np
import torch
from torch import nn

_thread = threading.local()


@contextlib.contextmanager
def draws_from(generator: torch.Generator | None):
    """Within the block, this thread's rollout draws (dropout masks, sampled actions) come from
    ``generator`` (on the tensors' device; None: torch's global generator)."""
    previous = getattr(_thread, "generator", None)
    _thread.generator = generator
    try:
        yield generator
    finally:
        _thread.generator = previous


def draw_generator() -> torch.Generator | None:
    """The generator of this thread's enclosing :func:`draws_from` block (None: the global one)."""
    return getattr(_thread, "generator", None)


class Rows:
    """The running rows among the ``held`` rows a step's tensors hold.

    Args:
        index: (n,) int64 positions of the running rows in the tensors, ascending, on the model's device.
        held: the number of rows the tensors hold.
    """

    def __init__(self, index: torch.Tensor, held: int):
        self.index, self.held = index, held

    @classmethod
    def of(cls, running: np.ndarray, held: int, device) -> "Rows | None":
        """The running positions ``running`` ((n,) ints, ascending), or None when every held row runs."""
        if len(running) == held:
            return None
        return cls(torch.as_tensor(running, device=device), held)

    def scatter(self, part: torch.Tensor, fill: float = 1.0) -> torch.Tensor:
        """(held, ...) tensor with the running rows' ``part`` (n, ...) and ``fill`` elsewhere."""
        full = part.new_full((self.held,) + tuple(part.shape[1:]), fill)
        full[self.index] = part
        return full


def keep_mask_(out: torch.Tensor, p: float) -> torch.Tensor:
    """Fill ``out`` in place with an inverted-dropout mask: each entry 1 / (1 - p) with probability
    1 - p, else 0; returns ``out``.

    Drawn with ``torch.rand``'s uniform numbers (entry kept where the number is >= p): the
    distribution ``torch.dropout`` draws with its Bernoulli sampler, which on the CPU is 3-4x slower
    (a fifth of the instruction encoder's forward pass). p >= 1 drops everything, as
    ``torch.dropout`` (no 0 * inf). The numbers come from :func:`draw_generator`.
    """
    if p >= 1.0:
        return out.zero_()
    return out.uniform_(generator=draw_generator()).ge_(p).mul_(1.0 / (1.0 - p))


def keep_mask(shape: tuple, p: float, like: torch.Tensor) -> torch.Tensor:
    """A new mask of ``shape`` on ``like``'s device and dtype (:func:`keep_mask_`)."""
    return keep_mask_(torch.empty(shape, device=like.device, dtype=like.dtype), p)


def dropout(x: torch.Tensor, module: nn.Dropout, rows: Rows | None = None) -> torch.Tensor:
    """``module(x)`` (in distribution: see :func:`keep_mask`) on the running rows of ``x``; the other
    rows unchanged (None: every row runs). The mask is drawn for the n running rows."""
    if not module.training or module.p == 0:
        return x
    if rows is None:
        return x * keep_mask(x.shape, module.p, x)
    return x * rows.scatter(keep_mask((len(rows.index),) + tuple(x.shape[1:]), module.p, x))


def drop_visual(x: torch.Tensor, module: nn.Dropout, dim: int, rows: Rows | None = None) -> torch.Tensor:
    """Dropout on the first ``dim`` channels of the last axis (the visual part) only.

    Same distribution as ``module(x[..., :dim])`` (each entry kept with probability 1 - p and
    scaled by 1 / (1 - p), :func:`keep_mask`). With ``rows``, the mask is drawn for the running
    rows only and the other rows are not dropped.
    """
    if dim == 0 or not module.training or module.p == 0:
        return x
    n = x.shape[0] if rows is None else len(rows.index)
    # one (n, ..., C) factor: the mask on the visual channels, 1 on the rest, then one product
    factor = torch.empty((n,) + tuple(x.shape[1:]), device=x.device, dtype=x.dtype)
    keep_mask_(factor[..., :dim], module.p)
    factor[..., dim:] = 1.0
    if rows is not None:
        factor = rows.scatter(factor)
    return x * factor
