"""A rollout's weight and context gradients, formed once over all its decoding steps.

A rollout applies the decoder's linear maps to the running rows of every time step and attends
over the same instruction context at every step. In each step's backward, autograd forms every
map's weight gradient (a product of rank n_t, the step's rows, written into a full (out, in)
matrix) and the context's gradient (two outer products, a full (n_t, L, H) tensor), and adds each
into its running sum: about 70 full-size writes and additions per weight in an IL + A2C iteration,
which on the CPU cost more than the steps' own arithmetic (cuDNN's RNNs avoid the same cost the
same way). :class:`StepGrads` keeps, in each step's backward, only what those products are made of
(the step's inputs and output gradients, the attention weights) and forms each gradient with one
matrix product over the rows of all steps, after the last step's backward. The gradients are the
same sums in another order (float rounding).

Ordering: :class:`StepGrads` hangs one autograd node (:class:`_Collect`) on the weights and the
context; its output is a scalar *anchor* that every step's function takes as an input (and gives a
zero gradient), so autograd runs the node after every step that used it, with every step's part
collected, and the node hands the formed gradients to the weights and the context.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import SoftDotAttention


class StepGrads:
    """Per-step linear maps and context attention whose weight / context gradients are deferred.

    Args:
        linears: name -> (weight (out, in), bias (out,) or None) of the maps the steps apply.
        context: (B, L, H) the attended context as the encoder produced it (carrying its autograd
            history), or None when no step attends over one.
    """

    def __init__(self, linears: dict[str, tuple[torch.Tensor, torch.Tensor | None]],
                 context: torch.Tensor | None = None):
        self.names = list(linears)
        self.params = [linears[n] for n in self.names]
        self.slot = {n: i for i, n in enumerate(self.names)}
        self.saved: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in self.names]
        self.context = context
        self.context_parts: list[tuple] = []
        #: the context rows the next steps hold ((n,) int64 on its device; None: all B in order)
        self.rows: torch.Tensor | None = None
        tensors = [context if context is not None else torch.zeros(())]
        for w, b in self.params:
            tensors += [w, b if b is not None else torch.zeros(())]
        self.anchor = _Collect.apply(self, *tensors)

    def linear(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """``F.linear(x, weight, bias)`` of the map ``name``; x (n, in) -> (n, out)."""
        return _StepLinear.apply(x, self.anchor, self, self.slot[name])

    def attend(self, query: torch.Tensor, context_rows: torch.Tensor, mask: torch.Tensor | None,
               row_scores: bool = True) -> torch.Tensor:
        """Soft-dot attention of ``query`` (n, H) over ``context_rows`` (n, L, H), the rows
        :attr:`rows` of the context, detached; ``mask`` (n, L) True = ignore; ``row_scores``: the
        form of the logits and of their gradient (:mod:`agents.attention`).

        Returns the weighted context (n, H), as :class:`agents.attention.SoftDotAttention` forms it.
        """
        return _StepAttention.apply(query, self.anchor, self, context_rows, mask, self.rows, row_scores)

    def gradients(self, needs: tuple[bool, ...]) -> list[torch.Tensor | None]:
        """The gradients of (context, weight, bias, ...) from every step's saved parts."""
        out: list[torch.Tensor | None] = [self._context_grad() if needs[0] and self.context_parts else None]
        for i, (w, b) in enumerate(self.params):
            xs, gs = zip(*self.saved[i]) if self.saved[i] else ((), ())
            need_w, need_b = needs[1 + 2 * i], needs[2 + 2 * i] and b is not None
            if not gs:
                out += [None, None]
                continue
            g, x = torch.cat(gs), torch.cat(xs)
            out += [g.t().mm(x) if need_w else None, g.sum(0) if need_b else None]
        self.saved = [[] for _ in self.names]
        self.context_parts = []
        return out

    def _context_grad(self) -> torch.Tensor:
        """(B, L, H): sum over steps t of attn_t^T grad_t + dlogits_t^T query_t, row by row, as one bmm."""
        B, L, H = self.context.shape
        T = len(self.context_parts)
        dev = self.context.device
        full = torch.arange(B, device=dev)
        weights = self.context.new_zeros(B * 2 * T, L)
        vectors = self.context.new_zeros(B * 2 * T, H)
        for t, (rows, attn, grad, dlogits, query) in enumerate(self.context_parts):
            r = (full if rows is None else rows) * (2 * T)
            weights.index_copy_(0, r + t, attn)
            vectors.index_copy_(0, r + t, grad)
            weights.index_copy_(0, r + T + t, dlogits)
            vectors.index_copy_(0, r + T + t, query)
        return torch.bmm(weights.view(B, 2 * T, L).transpose(1, 2), vectors.view(B, 2 * T, H))


class _Collect(torch.autograd.Function):
    """anchor = 0; backward: the deferred gradients of (context, weights, biases) of ``store``."""

    @staticmethod
    def forward(ctx, store: StepGrads, *tensors):
        ctx.store = store
        return tensors[1].new_zeros(())

    @staticmethod
    def backward(ctx, _grad):
        return (None, *ctx.store.gradients(ctx.needs_input_grad[1:]))


class _StepLinear(torch.autograd.Function):
    """y = x W^T + b; backward gives x's gradient and leaves (x, dy) for W's and b's."""

    @staticmethod
    def forward(ctx, x, anchor, store: StepGrads, slot: int):
        w, b = store.params[slot]
        ctx.save_for_backward(x)
        ctx.store, ctx.slot = store, slot
        return F.linear(x, w, b)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        store, slot = ctx.store, ctx.slot
        store.saved[slot].append((x, grad))
        grad_x = grad.mm(store.params[slot][0]) if ctx.needs_input_grad[0] else None
        return grad_x, grad.new_zeros(()), None, None


class _StepAttention(torch.autograd.Function):
    """Soft-dot attention over detached context rows; backward leaves the context's part behind."""

    @staticmethod
    def forward(ctx, query, anchor, store: StepGrads, context_rows, mask, rows, row_scores):
        weighted, attn = SoftDotAttention.attend(query, context_rows, mask, row_scores)
        ctx.save_for_backward(query, attn, context_rows)
        ctx.store, ctx.rows, ctx.row_scores = store, rows, row_scores
        return weighted

    @staticmethod
    def backward(ctx, grad):
        query, attn, context_rows = ctx.saved_tensors
        if ctx.row_scores:  # the gradient's dot products with each context row, in the logits' form
            d_attn = torch.bmm(grad.unsqueeze(1), context_rows.transpose(1, 2)).squeeze(1)
        else:
            d_attn = torch.bmm(context_rows, grad.unsqueeze(2)).squeeze(2)
        d_logits = attn * (d_attn - (d_attn * attn).sum(1, keepdim=True))  # softmax; masked entries: attn 0
        ctx.store.context_parts.append((ctx.rows, attn, grad, d_logits, query))
        grad_query = torch.bmm(d_logits.unsqueeze(1), context_rows).squeeze(1)
        return grad_query, grad.new_zeros(()), None, None, None, None, None


def linear_params(module: nn.Linear) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(weight, bias) of an ``nn.Linear``."""
    return module.weight, module.bias
