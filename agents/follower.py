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

from .angle_encoding import check_harmonics, harmonic_angles
from .attention import SoftDotAttention
from .packed_lstm import lstm_gates, packed_bilstm, pad_packed
from .rows import Rows, drop_visual, dropout
from .step_grads import StepGrads, linear_params

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
    #: the decoder's first hidden state from the encoder's final states (``"tanh"``, EnvDrop's
    #: ``--subout`` default) or from the element-wise maximum of its outputs over the padded
    #: batch (``"max"``, what EnvDrop's and CLIP-ViL's run scripts pass)
    sub_out: str = "tanh"
    #: heading harmonics in the angle channels of the views and candidates the decoder sees
    #: (:mod:`agents.angle_encoding`; 1: EnvDrop's ``[sin h, cos h, sin e, cos e]`` * 32)
    angle_harmonics: int = 1
    #: the candidates' angle channels also carry their distance (:mod:`agents.angle_encoding`;
    #: False: EnvDrop's, which carry none)
    candidate_distance: bool = False
    #: each candidate also carries the view one step ahead: the feature of the candidate's
    #: viewpoint in the view the agent faces on arriving (:meth:`agents.bank.FeatureBank.step_inputs`;
    #: False: EnvDrop's candidates, the view from where the agent stands only)
    candidate_lookahead: bool = False

    @property
    def candidate_visual_dim(self) -> int:
        """Visual channels of a candidate: D, or 2D with the look-ahead view after the candidate's own."""
        return self.feature_dim * (2 if self.candidate_lookahead else 1)

    @property
    def candidate_size(self) -> int:
        """Channels of a candidate: its visual part, then the 128 angle channels."""
        return self.candidate_visual_dim + ANGLE_FEATURE_SIZE


SUB_OUTS = ("tanh", "max")


class InstructionEncoder(nn.Module):
    """Embedding + bidirectional LSTM; returns the context and the decoder's initial state."""

    def __init__(self, cfg: FollowerConfig):
        super().__init__()
        if cfg.sub_out not in SUB_OUTS:
            raise ValueError(f"sub_out must be one of {SUB_OUTS}, got {cfg.sub_out!r}")
        self.sub_out = cfg.sub_out
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.word_embedding, padding_idx=cfg.padding_idx)
        self.lstm = nn.LSTM(cfg.word_embedding, cfg.hidden // 2, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(cfg.hidden, cfg.hidden)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, split_steps: bool = True, contiguous: bool = True):
        """tokens (B, L) int64, lengths (B,) -> ctx (B, L', 512), ctx padding mask (B, L') bool, (h0, c0).

        ``h0 = tanh(bridge([h_bwd ++ h_fwd]))`` and ``c0 = [c_bwd ++ c_fwd]`` (B, 512) from the LSTM's
        final states, backward direction first as the original's; c0 is the decoder's first cell state.
        With ``sub_out="max"``, ``h0 = tanh(bridge(max_t ctx[:, t]))`` over the context before its
        dropout, padding included (zeros past a row's length up to the batch's longest, as the
        original's ``pad_packed_sequence`` output).

        ``split_steps``: run the LSTM with :func:`agents.packed_lstm.packed_bilstm` and pad with
        :func:`agents.packed_lstm.pad_packed` (the same numbers as ``nn.LSTM`` and
        ``pad_packed_sequence``, backwards linear in the length on the CPU); False: those two.
        ``contiguous``: return ctx in row-major memory (padding a batch packed in sorted order gives
        a transposed view, which every attention step over it would copy again; this encoder packs
        unsorted, whose padding is row-major already); the same numbers either way.
        """
        emb = dropout(self.embedding(tokens), self.drop)
        lengths_cpu = lengths.clamp(min=1).cpu()
        packed = pack_padded_sequence(emb, lengths_cpu, batch_first=True, enforce_sorted=False)
        if split_steps:
            out, (h, c) = packed_bilstm(self.lstm, packed)
            ctx = pad_packed(out)
        else:
            out, (h, c) = self.lstm(packed)
            ctx, _ = pad_packed_sequence(out, batch_first=True)
        # The final states in the original's order: backward direction first (R2R-EnvDrop
        # ``EncoderLSTM``: ``torch.cat((enc_h_t[-1], enc_h_t[-2]), 1)``, and likewise the cells).
        h_cat = torch.cat([h[1], h[0]], dim=1)
        c_cat = torch.cat([c[1], c[0]], dim=1)
        h0 = torch.tanh(self.bridge(ctx.max(dim=1).values if self.sub_out == "max" else h_cat))
        mask = torch.arange(ctx.shape[1], device=ctx.device)[None, :] >= lengths_cpu.to(ctx.device)[:, None]
        ctx = dropout(ctx, self.drop)
        return (ctx.contiguous() if contiguous else ctx), mask, (h0, c_cat)


class AttnDecoder(nn.Module):
    """One decoding step: action embedding, view attention, LSTMCell, instruction attention, logits."""

    def __init__(self, cfg: FollowerConfig):
        super().__init__()
        check_harmonics(cfg.angle_harmonics, cfg.candidate_distance)
        self.cfg = cfg
        self.action_embedding = nn.Sequential(nn.Linear(ANGLE_FEATURE_SIZE, cfg.action_embedding), nn.Tanh())
        self.drop = nn.Dropout(cfg.dropout)
        self.feat_drop = nn.Dropout(cfg.feature_dropout)
        self.lstm = nn.LSTMCell(cfg.action_embedding + cfg.feature_size, cfg.hidden)
        self.feat_attention = SoftDotAttention(cfg.hidden, cfg.feature_size, output_tilde=False)
        self.instr_attention = SoftDotAttention(cfg.hidden, cfg.hidden)
        self.candidate_attention = SoftDotAttention(cfg.hidden, cfg.candidate_size, output_tilde=False)

    def step_linears(self) -> dict:
        """name -> (weight, bias) of every linear map a step applies (for :class:`StepGrads`)."""
        return {"action": linear_params(self.action_embedding[0]), "feat_in": linear_params(self.feat_attention.linear_in),
                "lstm_ih": (self.lstm.weight_ih, self.lstm.bias_ih), "lstm_hh": (self.lstm.weight_hh, self.lstm.bias_hh),
                "instr_in": linear_params(self.instr_attention.linear_in),
                "instr_out": linear_params(self.instr_attention.linear_out),
                "cand_in": linear_params(self.candidate_attention.linear_in)}

    def forward(self, action_angles, views, candidates, candidate_mask, h, c, ctx, ctx_mask, rows: Rows | None = None,
                grads: StepGrads | None = None, candidate_distances: torch.Tensor | None = None,
                row_scores: bool = True):
        """Shapes: action_angles (B, 128), views (B, 36, F), candidates (B, K+1, F') (F' = F, or F + D
        with ``candidate_lookahead``: :attr:`FollowerConfig.candidate_size`), candidate_mask
        (B, K+1) bool, h/c (B, 512), ctx (B, L, 512), ctx_mask (B, L) bool.

        ``h`` is the previous step's ``h_tilde`` (the encoder's bridged state at the first step),
        as the original's ``prev_h1``: it queries the views and is the LSTMCell's hidden input,
        so the instruction context attended at one step reaches the next.

        ``rows``: which of the rows the tensors hold are running episodes (the dropout masks are
        drawn for those, the others are not dropped, see :mod:`agents.rows`); None: all of them.
        ``grads``: form the weight and context gradients once per rollout (:class:`StepGrads`,
        made over :meth:`step_linears` and the encoder's context; ``ctx`` is then detached).

        ``views`` and ``candidates`` carry EnvDrop's angle channels; with ``angle_harmonics`` > 1
        the decoder re-encodes them first (:func:`agents.angle_encoding.harmonic_angles`), and
        with ``candidate_distance`` the candidates' channels take ``candidate_distances`` (B, K+1)
        metres (:attr:`agents.bank.StepInputs.candidate_distances`; required then, unused otherwise).
        ``row_scores``: the form of the three attentions' logits (:mod:`agents.attention`; False:
        the original's, the same numbers to float rounding).

        Returns (h1, c1, logits (B, K+1) with -inf on padding, h_tilde).
        """
        views = harmonic_angles(views, self.cfg.feature_dim, self.cfg.angle_harmonics)
        if self.cfg.candidate_distance and candidate_distances is None:
            raise ValueError("this follower reads candidate distances (candidate_distance=True): pass candidate_distances")
        candidates = harmonic_angles(candidates, self.cfg.candidate_visual_dim, self.cfg.angle_harmonics,
                                     candidate_distances if self.cfg.candidate_distance else None)
        if grads is not None:
            return self._deferred_step(action_angles, views, candidates, candidate_mask, h, c, ctx, ctx_mask, rows, grads,
                                       row_scores)
        dim = self.cfg.feature_dim
        act = dropout(self.action_embedding(action_angles), self.drop, rows)
        views = drop_visual(views, self.feat_drop, dim, rows)
        candidates = drop_visual(candidates, self.feat_drop, self.cfg.candidate_visual_dim, rows)
        attended, _ = self.feat_attention(dropout(h, self.drop, rows), views, row_scores=row_scores)
        h1, c1 = self.lstm(torch.cat([act, attended], dim=1), (h, c))
        h_tilde, _ = self.instr_attention(dropout(h1, self.drop, rows), ctx, ctx_mask, row_scores)
        logits = self.candidate_attention.scores(dropout(h_tilde, self.drop, rows), candidates, candidate_mask,
                                                 row_scores)
        return h1, c1, logits, h_tilde

    def _deferred_step(self, action_angles, views, candidates, candidate_mask, h, c, ctx, ctx_mask, rows, grads,
                       row_scores):
        """:meth:`forward`'s arithmetic with the linear maps and the context attention of ``grads``."""
        dim = self.cfg.feature_dim
        act = dropout(torch.tanh(grads.linear("action", action_angles)), self.drop, rows)
        views = drop_visual(views, self.feat_drop, dim, rows)
        candidates = drop_visual(candidates, self.feat_drop, self.cfg.candidate_visual_dim, rows)
        query = grads.linear("feat_in", dropout(h, self.drop, rows))
        attended, _ = self.feat_attention.attend(query, views, row_scores=row_scores)
        gates = grads.linear("lstm_ih", torch.cat([act, attended], dim=1)) + grads.linear("lstm_hh", h)
        h1, c1 = lstm_gates(gates, c)
        h1_drop = dropout(h1, self.drop, rows)
        weighted = grads.attend(grads.linear("instr_in", h1_drop), ctx, ctx_mask, row_scores)
        h_tilde = torch.tanh(grads.linear("instr_out", torch.cat([weighted, h1_drop], dim=1)))
        query = grads.linear("cand_in", dropout(h_tilde, self.drop, rows))
        logits = self.candidate_attention.attend_scores(query, candidates, candidate_mask, row_scores)
        return h1, c1, logits, h_tilde


class Critic(nn.Module):
    """State value from the decoder's hidden state: Linear-ReLU-Dropout-Linear."""

    def __init__(self, hidden: int = 512, dropout: float = 0.5):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1))

    def forward(self, h: torch.Tensor, rows: Rows | None = None) -> torch.Tensor:
        """(B, 512) -> (B,) values; ``rows``: the running rows of ``h``, whose dropout is drawn (see the decoder)."""
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
