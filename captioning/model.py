"""The Transformer captioner of CLIP-ViL §3.2 (ImageCaptioning.pytorch's ``TransformerModel``).

Grid cells are embedded by Linear + ReLU + dropout (no position code, as the original), encoded by
``n_layers`` pre-norm Transformer encoder layers over the valid cells (padded cells are masked),
and a ``n_layers`` decoder with sinusoidal positions and tied-free output projection predicts the
next word. Paper defaults: 6 + 6 layers, d 512, FF 2048, 8 heads, dropout 0.1.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass
class CaptionModelConfig:
    vocab_size: int
    feat_dim: int
    d_model: int = 512
    n_layers: int = 6
    n_heads: int = 8
    d_ff: int = 2048
    dropout: float = 0.1
    max_len: int = 16

    def to_dict(self) -> dict:
        return asdict(self)


def sinusoid(length: int, d: int) -> torch.Tensor:
    """(length, d) sinusoidal position codes (Vaswani et al.)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(length, d)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)
    return pe


class CaptionTransformer(nn.Module):
    """Args: cfg (:class:`CaptionModelConfig`)."""

    def __init__(self, cfg: CaptionModelConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.att_embed = nn.Sequential(nn.Linear(cfg.feat_dim, d), nn.ReLU(), nn.Dropout(cfg.dropout))
        enc = nn.TransformerEncoderLayer(d, cfg.n_heads, cfg.d_ff, cfg.dropout, batch_first=True, norm_first=True)
        dec = nn.TransformerDecoderLayer(d, cfg.n_heads, cfg.d_ff, cfg.dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(enc, cfg.n_layers, norm=nn.LayerNorm(d), enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(dec, cfg.n_layers, norm=nn.LayerNorm(d))
        self.embed = nn.Embedding(cfg.vocab_size, d)
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(d, cfg.vocab_size)
        self.register_buffer("pos", sinusoid(cfg.max_len + 2, d), persistent=False)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def encode(self, grids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """grids (B, H, W, C) float, mask (B, H, W) bool (True = real cell) ->
        memory (B, H*W, d) and its padding mask (B, H*W) (True = padding, as torch wants)."""
        b = grids.shape[0]
        x = self.att_embed(grids.reshape(b, -1, grids.shape[-1]))
        pad = ~mask.reshape(b, -1)
        return self.encoder(x, src_key_padding_mask=pad), pad

    def decode_logits(self, tokens: torch.Tensor, memory: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """tokens (N, T) starting with BOS; memory (N, S, d) -> log-probabilities (N, T, V)."""
        t = tokens.shape[1]
        x = self.drop(self.embed(tokens) * math.sqrt(self.cfg.d_model) + self.pos[:t])
        causal = torch.triu(torch.full((t, t), float("-inf"), device=tokens.device), diagonal=1)
        h = self.decoder(x, memory, tgt_mask=causal, memory_key_padding_mask=pad)
        return torch.log_softmax(self.out(h), dim=-1)

    def forward(self, grids, mask, tokens, seq_per_img: int = 1) -> torch.Tensor:
        """Teacher forcing: tokens (B * seq_per_img, T) (BOS first) -> log-probs (B * seq_per_img, T, V)."""
        memory, pad = self.encode(grids, mask)
        if seq_per_img > 1:
            memory, pad = memory.repeat_interleave(seq_per_img, 0), pad.repeat_interleave(seq_per_img, 0)
        return self.decode_logits(tokens, memory, pad)
