"""MCAN (Yu et al., CVPR 2019), encoder-decoder variant, over grid cells (as CLIP-ViL runs it).

Follows MILVLG/mcan-vqa: question LSTM -> ``layers`` self-attention (SA) encoder layers; cells ->
Linear -> ``layers`` self-guided-attention (SGA: self-attention, then attention to the final
question states) decoder layers; each block is post-norm ``LayerNorm(x + Dropout(sublayer(x)))``
with a ReLU feed-forward; both sides pooled by AttFlat (MLP -> glimpse weights over valid
positions -> Linear to ``flat_out``), summed, LayerNorm, Linear to the answers. Attention is
``torch.nn.functional.scaled_dot_product_attention`` with a boolean key mask.

Sizes (``size=``): ``small`` hidden 512, FF 2048, 8 heads, 6 layers, flat out 1024; ``large``
hidden 1024, FF 4096, 8 heads, 6 layers, flat out 2048; flat MLP 512, dropout 0.1, words 300-d.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import MODELS
from .common import CellInput, QuestionLSTM, flatten_grid

SIZES = {"small": dict(hidden=512, ff=2048, heads=8, layers=6, flat_out=1024),
         "large": dict(hidden=1024, ff=4096, heads=8, layers=6, flat_out=2048)}


def plain_attention(q, k, v, key_mask, dropout: float):
    """softmax(q k^T / sqrt(d)) v written out (the original MCAN code's way; the benchmark's baseline)."""
    scores = (q @ k.transpose(-2, -1)) / q.shape[-1] ** 0.5
    att = scores.masked_fill(~key_mask[:, None, None, :], float("-inf")).softmax(dim=-1)
    return F.dropout(att, dropout) @ v


class MultiHeadAttention(nn.Module):
    """Multi-head attention on SDPA (``plain=True``: :func:`plain_attention`). ``key_mask`` (B, Nk)
    bool: True = may be attended."""

    def __init__(self, hidden: int, heads: int, dropout: float, plain: bool = False):
        super().__init__()
        self.heads, self.dropout, self.plain = heads, dropout, plain
        self.q, self.k, self.v, self.out = (nn.Linear(hidden, hidden) for _ in range(4))

    def split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, q, k, v, key_mask):
        b, n, d = q.shape
        q, k, v, p = self.split(self.q(q)), self.split(self.k(k)), self.split(self.v(v)), self.dropout if self.training else 0.0
        if self.plain:
            att = plain_attention(q, k, v, key_mask, p)
        else:
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :], dropout_p=p)
        return self.out(att.transpose(1, 2).reshape(b, n, d))


class FeedForward(nn.Sequential):
    def __init__(self, hidden: int, ff: int, dropout: float):
        super().__init__(nn.Linear(hidden, ff), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(ff, hidden))


class SelfAttentionLayer(nn.Module):
    """MCAN's SA: x = LN(x + MHA(x, x, x)); x = LN(x + FFN(x))."""

    def __init__(self, hidden, ff, heads, dropout):
        super().__init__()
        self.att, self.ffn = MultiHeadAttention(hidden, heads, dropout), FeedForward(hidden, ff, dropout)
        self.norm1, self.norm2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.drop1, self.drop2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x, mask):
        x = self.norm1(x + self.drop1(self.att(x, x, x, mask)))
        return self.norm2(x + self.drop2(self.ffn(x)))


class GuidedAttentionLayer(SelfAttentionLayer):
    """MCAN's SGA: SA on x, then x = LN(x + MHA(x, y, y)) guided by y, then the FFN."""

    def __init__(self, hidden, ff, heads, dropout):
        super().__init__(hidden, ff, heads, dropout)
        self.guide, self.norm_g, self.drop_g = MultiHeadAttention(hidden, heads, dropout), nn.LayerNorm(hidden), nn.Dropout(dropout)

    def forward(self, x, mask, y, y_mask):
        x = self.norm1(x + self.drop1(self.att(x, x, x, mask)))
        x = self.norm_g(x + self.drop_g(self.guide(x, y, y, y_mask)))
        return self.norm2(x + self.drop2(self.ffn(x)))


class AttFlat(nn.Module):
    """Attention pooling: (B, N, hidden), (B, N) mask -> (B, flat_out)."""

    def __init__(self, hidden: int, flat_mlp: int, glimpses: int, flat_out: int, dropout: float):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(hidden, flat_mlp), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                 nn.Linear(flat_mlp, glimpses))
        self.merge = nn.Linear(hidden * glimpses, flat_out)

    def forward(self, x, mask):
        w = self.mlp(x).masked_fill(~mask[..., None], float("-inf")).softmax(dim=1)  # (B, N, G)
        return self.merge(torch.einsum("bng,bnd->bgd", w, x).flatten(1))


class MCAN(nn.Module):
    """MCAN encoder-decoder; see the module docstring. Forward: see :mod:`vqa.models`."""

    def __init__(self, num_words: int, num_answers: int, grid_dim: int, hidden: int = 512, ff: int = 2048,
                 heads: int = 8, layers: int = 6, flat_out: int = 1024, flat_mlp: int = 512, glimpses: int = 1,
                 word_dim: int = 300, dropout: float = 0.1, glove: torch.Tensor | None = None):
        super().__init__()
        self.question = QuestionLSTM(num_words, word_dim, hidden, glove)
        self.cells = CellInput(grid_dim, hidden)
        self.encoder = nn.ModuleList(SelfAttentionLayer(hidden, ff, heads, dropout) for _ in range(layers))
        self.decoder = nn.ModuleList(GuidedAttentionLayer(hidden, ff, heads, dropout) for _ in range(layers))
        self.flat_q = AttFlat(hidden, flat_mlp, glimpses, flat_out, dropout)
        self.flat_v = AttFlat(hidden, flat_mlp, glimpses, flat_out, dropout)
        self.norm = nn.LayerNorm(flat_out)
        self.classify = nn.Linear(flat_out, num_answers)

    def forward(self, tokens, grid, mask, pos=None):
        q, q_mask = self.question(tokens)
        cells, v_mask, pos = flatten_grid(grid, mask, pos)
        v = self.cells(cells, pos)
        for layer in self.encoder:
            q = layer(q, q_mask)
        for layer in self.decoder:
            v = layer(v, v_mask, q, q_mask)
        return self.classify(self.norm(self.flat_q(q, q_mask) + self.flat_v(v, v_mask)))


@MODELS.register("mcan")
def build_mcan(num_words: int, num_answers: int, grid_dim: int, size: str = "small", **options) -> MCAN:
    """MCAN of a named size (``small`` / ``large``); ``options`` override single sizes."""
    if size not in SIZES:
        raise ValueError(f"MCAN size {size!r} is not one of {sorted(SIZES)}")
    return MCAN(num_words, num_answers, grid_dim, **{**SIZES[size], **options})
