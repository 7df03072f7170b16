"""Parts both VQA models share: the question LSTM and the grid-cell input (features + positions)."""
from __future__ import annotations

import torch
from torch import nn


def flatten_grid(grid: torch.Tensor, mask: torch.Tensor, pos: torch.Tensor | None):
    """(B, H, W, C), (B, H, W), (B, H, W, 2) -> (B, N, C), (B, N) bool, (B, N, 2) or None; N = H * W."""
    b, h, w, c = grid.shape
    return grid.reshape(b, h * w, c), mask.reshape(b, h * w), None if pos is None else pos.reshape(b, h * w, 2)


class QuestionLSTM(nn.Module):
    """Word embedding (learned; ``glove`` rows may initialise it) + one-layer LSTM.

    Returns (B, T, hidden) states and the (B, T) bool word mask (id 0 = padding; the first
    position always counts so that an empty question still attends somewhere).
    """

    def __init__(self, num_words: int, word_dim: int, hidden: int, glove: torch.Tensor | None = None):
        super().__init__()
        self.embed = nn.Embedding(num_words, word_dim, padding_idx=0)
        if glove is not None:
            self.embed.weight.data.copy_(glove)
        self.lstm = nn.LSTM(word_dim, hidden, batch_first=True)

    def forward(self, tokens: torch.Tensor):
        mask = tokens != 0
        mask[:, 0] = True
        states, _ = self.lstm(self.embed(tokens))
        return states, mask


class CellInput(nn.Module):
    """Linear projection of each cell's features, plus a learned projection of its (y, x) centre."""

    def __init__(self, grid_dim: int, hidden: int):
        super().__init__()
        self.proj = nn.Linear(grid_dim, hidden)
        self.pos = nn.Linear(2, hidden)

    def forward(self, cells: torch.Tensor, pos: torch.Tensor | None) -> torch.Tensor:
        x = self.proj(cells)
        return x if pos is None else x + self.pos(pos)
