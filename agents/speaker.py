"""The EnvDrop speaker (Tan et al. 2019): writes an instruction for a panoramic trajectory.

Encoder: a bidirectional LSTM (``hidden / 2`` units each way, EnvDrop's ``--bidir``) over the
features of the actions taken (candidate feature of each step, STOP = zeros), attention of each of
its states (after dropout, as the original) over that step's 36 view features, then a second
bidirectional LSTM over the attended sequence. Both LSTMs run over all T steps of the batch, the
padding included, as the original's do (a trajectory's padding repeats its last views and has zero
actions, :mod:`agents.trajectory`), so a backward state depends on the batch's longest trajectory
as there. Decoder: word embedding + LSTM (hidden 512, zero initial state) with soft-dot attention
over the encoded steps and a projection to the vocabulary. Trained with teacher forcing
(cross-entropy, ``<PAD>`` ignored) under element-wise feature dropout (EnvDrop's ``drop3``,
``featdropout``); instructions are generated greedily or by sampling, at most 120 tokens, never
``<UNK>``. Feature dropout applies to the visual channels only, never to the 128 angle ones.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .angle_encoding import check_harmonics, harmonic_angles
from .attention import SoftDotAttention
from .follower import ArchitectureConfig, drop_visual


@dataclass
class SpeakerConfig(ArchitectureConfig):
    """Architecture of the speaker (defaults = EnvDrop)."""

    vocab_size: int
    feature_dim: int  #: D, the visual part (0 for an angle-only speaker)
    padding_idx: int = 0
    bos_idx: int = 1
    eos_idx: int = 2
    word_embedding: int = 256
    hidden: int = 512
    dropout: float = 0.6
    feature_dropout: float = 0.3
    unk_idx: int = 1  #: never generated
    bidirectional: bool = True  #: the encoder's LSTMs (False: one direction of ``hidden`` units, before 2026-12-03)
    #: heading harmonics in the angle channels of the views and actions the encoder reads
    #: (:mod:`agents.angle_encoding`; 1: EnvDrop's, as every speaker saved before the field)
    angle_harmonics: int = 1


def length_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """(B, size) bool, True at positions ``>= lengths`` (padding)."""
    return torch.arange(size, device=lengths.device)[None, :] >= lengths[:, None]


class SpeakerEncoder(nn.Module):
    """Encodes a trajectory of T steps into (B, T, hidden) context vectors."""

    def __init__(self, cfg: SpeakerConfig):
        super().__init__()
        check_harmonics(cfg.angle_harmonics)
        self.cfg = cfg
        each_way = cfg.hidden // 2 if cfg.bidirectional else cfg.hidden
        self.lstm = nn.LSTM(cfg.feature_size, each_way, batch_first=True, bidirectional=cfg.bidirectional)
        self.feat_drop = nn.Dropout(cfg.feature_dropout)
        self.drop = nn.Dropout(cfg.dropout)
        self.attention = SoftDotAttention(cfg.hidden, cfg.feature_size)
        self.post_lstm = nn.LSTM(cfg.hidden, each_way, batch_first=True, bidirectional=cfg.bidirectional)

    def forward(self, views: torch.Tensor, actions: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """views (B, T, 36, F), actions (B, T, F), lengths (B,) -> ctx (B, T, hidden).

        Positions ``t >= lengths[b]`` are padding: the LSTMs run over them as the original's (the
        decoder masks them); ``lengths`` is not used here. With ``angle_harmonics`` > 1 the angle
        channels are re-encoded first (:func:`agents.angle_encoding.harmonic_angles`).
        """
        B, T = actions.shape[:2]
        dim = self.cfg.feature_dim
        views = harmonic_angles(views, dim, self.cfg.angle_harmonics)
        actions = harmonic_angles(actions, dim, self.cfg.angle_harmonics)
        ctx, _ = self.lstm(drop_visual(actions, self.feat_drop, dim))
        ctx = self.drop(ctx)  # the original drops the first LSTM's states before they query the views
        views = drop_visual(views, self.feat_drop, dim)
        attended, _ = self.attention(ctx.reshape(B * T, -1), views.reshape(B * T, 36, -1))
        out, _ = self.post_lstm(self.drop(attended.view(B, T, -1)))
        return self.drop(out)


class SpeakerDecoder(nn.Module):
    """Word embedding -> LSTM -> attention over the encoded steps -> vocabulary logits."""

    def __init__(self, cfg: SpeakerConfig):
        super().__init__()
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.word_embedding, padding_idx=cfg.padding_idx)
        self.drop = nn.Dropout(cfg.dropout)
        self.lstm = nn.LSTM(cfg.word_embedding, cfg.hidden, batch_first=True)
        self.attention = SoftDotAttention(cfg.hidden, cfg.hidden)
        self.projection = nn.Linear(cfg.hidden, cfg.vocab_size)

    def forward(self, words, ctx, ctx_mask, state=None):
        """words (B, L) int64, ctx (B, T, H), ctx_mask (B, T) bool (True = padding).

        Returns (logits (B, L, vocab), (h, c) each (1, B, H)).
        """
        B, L = words.shape
        emb = self.drop(self.embedding(words))
        out, state = self.lstm(emb, state)
        out = self.drop(out)
        T = ctx.shape[1]
        h_tilde, _ = self.attention(out.reshape(B * L, -1),
                                    ctx.unsqueeze(1).expand(B, L, T, ctx.shape[2]).reshape(B * L, T, -1),
                                    ctx_mask.unsqueeze(1).expand(B, L, T).reshape(B * L, T))
        logits = self.projection(self.drop(h_tilde)).view(B, L, -1)
        return logits, state


class Speaker(nn.Module):
    """Encoder + decoder; :meth:`loss` for teacher forcing and :meth:`generate` for decoding."""

    def __init__(self, cfg: SpeakerConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = SpeakerEncoder(cfg)
        self.decoder = SpeakerDecoder(cfg)

    def encode(self, views, actions, lengths):
        """(ctx (B, T, H), ctx_mask (B, T) bool)."""
        ctx = self.encoder(views, actions, lengths)
        return ctx, length_mask(lengths, ctx.shape[1])

    def loss(self, views, actions, lengths, tokens, token_lengths) -> torch.Tensor:
        """Mean cross-entropy of predicting ``tokens[:, 1:]`` from ``tokens[:, :-1]``.

        Args:
            views, actions, lengths: the trajectory (see :class:`SpeakerEncoder`).
            tokens: (B, L) int64 encoded instructions (``<BOS> words <EOS> <PAD>...``).
            token_lengths: (B,) tokens used per row; positions beyond are ignored.
        """
        L = int(token_lengths.max())
        tokens = tokens[:, :L]
        ctx, ctx_mask = self.encode(views, actions, lengths)
        logits, _ = self.decoder(tokens[:, :-1], ctx, ctx_mask)
        target = tokens[:, 1:].masked_fill(length_mask(token_lengths - 1, L - 1), -100)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100)

    @torch.no_grad()
    def generate(self, views, actions, lengths, max_length: int = 120, sample: bool = False,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode instructions token by token (greedy by default).

        Returns:
            ids (B, n) int64 starting with ``<BOS>``; each row ends with ``<EOS>`` and is padded
            with ``<PAD>`` after it (a row that reaches ``max_length`` words is closed with
            ``<EOS>``), and lengths (B,) int64 (``<BOS>`` and ``<EOS>`` included).
        """
        cfg = self.cfg
        ctx, ctx_mask = self.encode(views, actions, lengths)
        B, dev = ctx.shape[0], ctx.device
        word = torch.full((B, 1), cfg.bos_idx, dtype=torch.long, device=dev)
        out = [word[:, 0]]
        ended = torch.zeros(B, dtype=torch.bool, device=dev)
        state = None
        for _ in range(max_length):
            logits, state = self.decoder(word, ctx, ctx_mask, state)
            logits = logits[:, 0]
            logits[:, cfg.unk_idx] = float("-inf")  # the original's only exclusion
            logits[:, cfg.padding_idx] = float("-inf")
            logits[:, cfg.bos_idx] = float("-inf")
            if sample:
                nxt = torch.multinomial(torch.softmax(logits, dim=1), 1, generator=generator).squeeze(1)
            else:
                nxt = logits.argmax(dim=1)
            nxt = torch.where(ended, torch.full_like(nxt, cfg.padding_idx), nxt)
            out.append(nxt)
            ended = ended | (nxt == cfg.eos_idx)
            if bool(ended.all()):
                break
            word = nxt[:, None]
        ids = torch.stack(out, dim=1)
        if not bool(ended.all()):  # close rows cut at max_length
            ids = torch.cat([ids, torch.where(ended, cfg.padding_idx, cfg.eos_idx)[:, None]], dim=1)
        lengths_out = (ids != cfg.padding_idx).sum(dim=1)
        return ids, lengths_out
