"""Soft-dot attention, as in Luong et al. and the R2R / EnvDrop agents.

The logits are the dot products of a query with each context vector. The original forms them as
``bmm(context (B, N, C), query (B, C, 1))``; on the CPU torch's ``bmm`` takes a slow path for a
single output column, and the query's gradient through it (``bmm(context^T, grad)``) likewise:
6-10x slower than the same dot products formed as ``bmm(query (B, 1, C), context^T (B, C, N))``,
whose gradients are a row times a matrix and an outer product (measured at the follower's shapes,
(64, 80, 512) and (64, 36, 640), two threads). ``row_scores`` picks the form (default: the row);
the numbers are the same dot products summed in another order (float rounding).
"""
from __future__ import annotations

import torch
from torch import nn


class SoftDotAttention(nn.Module):
    """Attention of a query over a context by dot products after a linear map of the query.

    Args:
        query_dim: size of the query h.
        ctx_dim: size of each context vector.
        output_tilde: also return ``tanh(Linear([weighted ctx ++ h]))`` (size ``query_dim``).
    """

    def __init__(self, query_dim: int, ctx_dim: int, output_tilde: bool = True):
        super().__init__()
        self.linear_in = nn.Linear(query_dim, ctx_dim, bias=False)
        self.output_tilde = output_tilde
        if output_tilde:
            self.linear_out = nn.Linear(query_dim + ctx_dim, query_dim, bias=False)

    def scores(self, h: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None,
               row_scores: bool = True) -> torch.Tensor:
        """(B, N) logits of h (B, Q) over context (B, N, C); ``mask`` (B, N) True = ignore."""
        return self.attend_scores(self.linear_in(h), context, mask, row_scores)

    @staticmethod
    def attend_scores(query: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None,
                      row_scores: bool = True) -> torch.Tensor:
        """(B, N) logits of an already mapped query (B, C) over context (B, N, C).

        ``row_scores``: the query row times the context's transpose; False: the context times the
        query column, as the original (see the module's docstring)."""
        if row_scores:
            logits = torch.bmm(query.unsqueeze(1), context.transpose(1, 2)).squeeze(1)
        else:
            logits = torch.bmm(context, query.unsqueeze(2)).squeeze(2)
        if mask is not None:
            logits = logits.masked_fill(mask, float("-inf"))
        return logits

    @staticmethod
    def attend(query: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None, row_scores: bool = True):
        """(weighted context (B, C), attention weights (B, N)) of a mapped query (B, C)."""
        attn = torch.softmax(SoftDotAttention.attend_scores(query, context, mask, row_scores), dim=1)
        return torch.bmm(attn.unsqueeze(1), context).squeeze(1), attn

    def forward(self, h, context, mask=None, row_scores: bool = True):
        """Returns (h_tilde or weighted context, attention weights (B, N))."""
        weighted, attn = self.attend(self.linear_in(h), context, mask, row_scores)
        if not self.output_tilde:
            return weighted, attn
        return torch.tanh(self.linear_out(torch.cat([weighted, h], dim=1))), attn
