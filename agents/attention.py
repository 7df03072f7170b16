"""Soft-dot attention, as in Luong et al. and the R2R / EnvDrop agents."""
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

    def scores(self, h: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, N) logits of h (B, Q) over context (B, N, C); ``mask`` (B, N) True = ignore."""
        return self.attend_scores(self.linear_in(h), context, mask)

    @staticmethod
    def attend_scores(query: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, N) logits of an already mapped query (B, C) over context (B, N, C)."""
        logits = torch.bmm(context, query.unsqueeze(2)).squeeze(2)
        if mask is not None:
            logits = logits.masked_fill(mask, float("-inf"))
        return logits

    @staticmethod
    def attend(query: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None):
        """(weighted context (B, C), attention weights (B, N)) of a mapped query (B, C)."""
        attn = torch.softmax(SoftDotAttention.attend_scores(query, context, mask), dim=1)
        return torch.bmm(attn.unsqueeze(1), context).squeeze(1), attn

    def forward(self, h, context, mask=None):
        """Returns (h_tilde or weighted context, attention weights (B, N))."""
        weighted, attn = self.attend(self.linear_in(h), context, mask)
        if not self.output_tilde:
            return weighted, attn
        return torch.tanh(self.linear_out(torch.cat([weighted, h], dim=1))), attn
