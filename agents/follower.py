"""The EnvDrop follower (Tan et al. 2019, as used by CLIP-ViL): encoder, attentive decoder, critic.

Sizes default to the original: word embedding 256, bidirectional LSTM with 512 hidden units in
total, action embedding 64, decoder hidden 512, dropout 0.5, feature dropout 0.3 on the visual
channels only (never on the 128 angle channels).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from envs.angles import ANGLE_FEATURE_SIZE

from .attention import SoftDotAttention
from .packed_lstm import packed_bilstm
from .rows import Rows, drop_visual, dropout

__all__ = ["AttnDecoder", "Critic", "Follower", "FollowerConfig", "InstructionEncoder", "drop_visual"]


class ArchitectureConfig:
    """What the follower's and the speaker's configs share (both dataclasses with ``feature_dim``)."""

    @property
    def feature_size(self) -> int:
        """Visual channels plus the 128 angle channels of a view or candidate feature."""
        return self.feature_dim + ANGLE_FEATURE_SIZE

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class FollowerConfig(ArchitectureConfig):
    """Architecture of the follower (defaults = EnvDrop)."""

    vocab_size: int
    feature_dim: int  #: D, the visual part (0 for an angle-only agent)
    padding_idx: int = 0
    word_embedding: int = 256
    hidden: int = 512
    action_embedding: int = 64
    dropout: float = 0.5
    feature_dropout: float = 0.3


class InstructionEncoder(nn.Module):
    """Embedding + bidirectional LSTM; returns the context and the decoder's initial state."""

    def __init__(self, cfg: FollowerConfig):
        super().__init__()
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.word_embedding, padding_idx=cfg.padding_idx)
        self.lstm = nn.LSTM(cfg.word_embedding, cfg.hidden // 2, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(cfg.hidden, cfg.hidden)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, split_steps: bool = True, contiguous: bool = True):
        """tokens (B, L) int64, lengths (B,) -> ctx (B, L', 512), ctx padding mask (B, L') bool, (h0, c0).

        ``split_steps``: run the LSTM with :func:`agents.packed_lstm.packed_bilstm` (the same
        numbers as ``nn.LSTM``, a backward linear in the length on the CPU); False: ``nn.LSTM``.
        ``contiguous``: return ctx in row-major memory (``pad_packed_sequence`` gives a transposed
        view, which every attention step over it would copy again); the same numbers either way.
        """
        emb = self.drop(self.embedding(tokens))
        lengths_cpu = lengths.clamp(min=1).cpu()
        packed = pack_padded_sequence(emb, lengths_cpu, batch_first=True, enforce_sorted=False)
        out, (h, c) = packed_bilstm(self.lstm, packed) if split_steps else self.lstm(packed)
        ctx, _ = pad_packed_sequence(out, batch_first=True)
        h_cat = torch.cat([h[0], h[1]], dim=1)
        c_cat = torch.cat([c[0], c[1]], dim=1)
        h0 = torch.tanh(self.bridge(h_cat))
        mask = torch.arange(ctx.shape[1], device=ctx.device)[None, :] >= lengths_cpu.to(ctx.device)[:, None]
        ctx = self.drop(ctx)  # the mask is drawn in ctx's memory layout, as before
        return (ctx.contiguous() if contiguous else ctx), mask, (h0, c_cat)


class AttnDecoder(nn.Module):
    """One decoding step: action embedding, view attention, LSTMCell, instruction attention, logits."""

    def __init__(self, cfg: FollowerConfig):
        super().__init__()
        self.cfg = cfg
        self.action_embedding = nn.Sequential(nn.Linear(ANGLE_FEATURE_SIZE, cfg.action_embedding), nn.Tanh())
        self.drop = nn.Dropout(cfg.dropout)
        self.feat_drop = nn.Dropout(cfg.feature_dropout)
        self.lstm = nn.LSTMCell(cfg.action_embedding + cfg.feature_size, cfg.hidden)
        self.feat_attention = SoftDotAttention(cfg.hidden, cfg.feature_size, output_tilde=False)
        self.instr_attention = SoftDotAttention(cfg.hidden, cfg.hidden)
        self.candidate_attention = SoftDotAttention(cfg.hidden, cfg.feature_size, output_tilde=False)

    def forward(self, action_angles, views, candidates, candidate_mask, h, c, ctx, ctx_mask, rows: Rows | None = None):
        """Shapes: action_angles (B, 128), views (B, 36, F), candidates (B, K+1, F), candidate_mask
        (B, K+1) bool, h/c (B, 512), ctx (B, L, 512), ctx_mask (B, L) bool.

        ``rows``: the tensors hold only these rows of a batch of ``rows.batch`` (the dropout masks
        are drawn for the whole batch, see :mod:`agents.rows`); None: the whole batch.

        Returns (h1, c1, logits (B, K+1) with -inf on padding, h_tilde).
        """
        dim = self.cfg.feature_dim
        act = dropout(self.action_embedding(action_angles), self.drop, rows)
        views = drop_visual(views, self.feat_drop, dim, rows)
        candidates = drop_visual(candidates, self.feat_drop, dim, rows)
        attended, _ = self.feat_attention(dropout(h, self.drop, rows), views)
        h1, c1 = self.lstm(torch.cat([act, attended], dim=1), (h, c))
        h_tilde, _ = self.instr_attention(dropout(h1, self.drop, rows), ctx, ctx_mask)
        logits = self.candidate_attention.scores(dropout(h_tilde, self.drop, rows), candidates, candidate_mask)
        return h1, c1, logits, h_tilde


class Critic(nn.Module):
    """State value from the decoder's hidden state: Linear-ReLU-Dropout-Linear."""

    def __init__(self, hidden: int = 512, dropout: float = 0.5):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1))

    def forward(self, h: torch.Tensor, rows: Rows | None = None) -> torch.Tensor:
        """(B, 512) -> (B,) values; ``rows``: ``h`` holds only these rows of the batch (see the decoder)."""
        if rows is None:
            return self.net(h).squeeze(1)
        first, relu, drop, last = self.net
        return last(dropout(relu(first(h)), drop, rows)).squeeze(1)


class Follower(nn.Module):
    """Encoder + decoder + critic (the three optimiser groups of the original)."""

    def __init__(self, cfg: FollowerConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = InstructionEncoder(cfg)
        self.decoder = AttnDecoder(cfg)
        self.critic = Critic(cfg.hidden, cfg.dropout)
