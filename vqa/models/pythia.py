"""Pythia v0.1 (Jiang et al., 2018) over grid cells, the CLIP-ViL VQA baseline.

Question: word embedding (300-d) -> LSTM (1024) -> self-attention with ``q_glimpses`` (2)
glimpses (Linear 512 -> ReLU -> Linear -> softmax over the question's words), glimpses
concatenated. Image: top-down attention over the valid cells (``ReLU(W_v v) * ReLU(W_q q)`` ->
Linear -> softmax over cells). Fusion: element-wise product of ``ReLU(Linear(v_att))`` and
``ReLU(Linear(q))`` at ``hidden`` (5000), then an MLP classifier to the answers.
"""
from __future__ import annotations

import torch
from torch import nn

from . import MODELS
from .common import QuestionLSTM, flatten_grid


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over dim 1 of (B, N, G) logits where (B, N) mask is True."""
    return logits.masked_fill(~mask[..., None], float("-inf")).softmax(dim=1)


class Pythia(nn.Module):
    """See the module docstring. Forward: see :mod:`vqa.models`."""

    def __init__(self, num_words: int, num_answers: int, grid_dim: int, hidden: int = 5000, lstm: int = 1024,
                 word_dim: int = 300, q_glimpses: int = 2, att_hidden: int = 1024, dropout: float = 0.1,
                 glove: torch.Tensor | None = None):
        super().__init__()
        self.question = QuestionLSTM(num_words, word_dim, lstm, glove)
        self.q_att = nn.Sequential(nn.Linear(lstm, 512), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                   nn.Linear(512, q_glimpses))
        q_dim = lstm * q_glimpses
        self.pos = nn.Linear(2, grid_dim)
        self.att_v, self.att_q = nn.Linear(grid_dim, att_hidden), nn.Linear(q_dim, att_hidden)
        self.att_out = nn.Sequential(nn.Dropout(dropout), nn.Linear(att_hidden, 1))
        self.fuse_v, self.fuse_q = nn.Linear(grid_dim, hidden), nn.Linear(q_dim, hidden)
        self.classify = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, 2 * lstm), nn.ReLU(inplace=True),
                                      nn.Dropout(dropout), nn.Linear(2 * lstm, num_answers))

    def forward(self, tokens, grid, mask, pos=None):
        states, q_mask = self.question(tokens)
        w = masked_softmax(self.q_att(states), q_mask)                           # (B, T, G)
        q = torch.einsum("btg,btd->bgd", w, states).flatten(1)                    # (B, G * lstm)
        v, v_mask, pos = flatten_grid(grid, mask, pos)
        if pos is not None:
            v = v + self.pos(pos)
        joint = torch.relu(self.att_v(v)) * torch.relu(self.att_q(q))[:, None]   # (B, N, att_hidden)
        a = masked_softmax(self.att_out(joint), v_mask)                          # (B, N, 1)
        v_att = (a * v).sum(dim=1)                                               # (B, C)
        fused = torch.relu(self.fuse_v(v_att)) * torch.relu(self.fuse_q(q))
        return self.classify(fused)


@MODELS.register("pythia")
def build_pythia(num_words: int, num_answers: int, grid_dim: int, **options) -> Pythia:
    """Pythia with the paper's sizes unless ``options`` override them."""
    return Pythia(num_words, num_answers, grid_dim, **options)
