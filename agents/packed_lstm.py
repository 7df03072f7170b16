"""A bidirectional one-layer LSTM over a packed sequence, computed as ``nn.LSTM`` computes it on
the CPU, with a backward pass linear in the instruction length.

On the CPU, ``nn.LSTM`` on a :class:`~torch.nn.utils.rnn.PackedSequence` takes each time step as
a ``narrow`` of the packed input projection; the backward of each of those slices fills a zero
tensor of the whole projection ((sum of lengths, 4H) floats) and adds into it, once per step and
direction, so the backward is quadratic in the length. For EnvDrop's instruction encoder (64
instructions of up to 80 tokens) that was a third of a training iteration.

:func:`packed_bilstm` runs the same steps (the step of time t computes the ``batch_sizes[t]``
sequences longer than t, sorted by length; the reverse direction starts each sequence at its last
token with a zero state) and the same cell arithmetic, but splits the projection into steps with
one ``split``, whose backward concatenates the step gradients once, and forms the hidden-to-hidden
weights' gradients once over all steps (:mod:`agents.step_grads`).

:func:`pad_packed` pads the packed output as ``pad_packed_sequence`` does, with one ``index_copy``:
``pad_packed_sequence`` writes each time step into a slice of the padded tensor, and the backward
of each of those writes copies the whole padded gradient (another cost quadratic in the length).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from .step_grads import StepGrads


def lstm_gates(gates: torch.Tensor, c: torch.Tensor):
    """(h, c) of an LSTM step from its pre-activation gates (n, 4H) (i, f, g, o, as torch orders them)."""
    i, f, g, o = gates.chunk(4, 1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def _forward(steps, batch_sizes, hidden_map, H):
    """Forward direction over the packed steps; (outputs per step, final h, final c) in sorted order.

    ``hidden_map(h)``: the hidden state's part of the gates, ``h W_hh^T + b_hh``."""
    h = c = steps[0].new_zeros(batch_sizes[0], H)
    outs, done_h, done_c = [], [], []
    for xw, n in zip(steps, batch_sizes):
        if n < h.shape[0]:  # the sequences from row n on ended at the previous step: their final state
            done_h.append(h[n:])
            done_c.append(c[n:])
            h, c = h[:n], c[:n]
        h, c = lstm_gates(hidden_map(h) + xw, c)
        outs.append(h)
    return outs, torch.cat([h] + done_h[::-1]), torch.cat([c] + done_c[::-1])


def _reverse(steps, batch_sizes, hidden_map, H):
    """Reverse direction: from the last step back, sequences join with a zero state at their last token."""
    h = c = steps[0].new_zeros(0, H)
    outs = [None] * len(steps)
    for t in range(len(steps) - 1, -1, -1):
        n = batch_sizes[t]
        if n > h.shape[0]:
            zeros = h.new_zeros(n - h.shape[0], H)
            h, c = torch.cat([h, zeros]), torch.cat([c, zeros])
        h, c = lstm_gates(hidden_map(h) + steps[t], c)
        outs[t] = h
    return outs, h, c


def packed_bilstm(lstm: nn.LSTM, packed: PackedSequence):
    """``lstm(packed)`` for a bidirectional, one-layer LSTM with biases and no initial state.

    Returns the packed output ((sum of lengths, 2H) data, forward direction first) and ``(h, c)``,
    each (2, B, H) in the caller's row order, as ``nn.LSTM`` returns them.
    """
    if not (lstm.bidirectional and lstm.num_layers == 1 and lstm.bias and lstm.proj_size == 0):
        raise ValueError("packed_bilstm runs a one-layer bidirectional LSTM with biases")
    H = lstm.hidden_size
    sizes = packed.batch_sizes.tolist()
    proj_f = F.linear(packed.data, lstm.weight_ih_l0, lstm.bias_ih_l0).split(sizes)
    proj_r = F.linear(packed.data, lstm.weight_ih_l0_reverse, lstm.bias_ih_l0_reverse).split(sizes)
    hidden = {"forward": (lstm.weight_hh_l0, lstm.bias_hh_l0), "reverse": (lstm.weight_hh_l0_reverse, lstm.bias_hh_l0_reverse)}
    if torch.is_grad_enabled() and lstm.weight_hh_l0.requires_grad:  # W_hh's gradient formed once over the steps
        grads = StepGrads(hidden)
        maps = {d: (lambda h, d=d: grads.linear(d, h)) for d in hidden}
    else:
        maps = {d: (lambda h, w=w, b=b: F.linear(h, w, b)) for d, (w, b) in hidden.items()}
    out_f, h_f, c_f = _forward(proj_f, sizes, maps["forward"], H)
    out_r, h_r, c_r = _reverse(proj_r, sizes, maps["reverse"], H)
    data = torch.cat([torch.cat(out_f), torch.cat(out_r)], dim=1)
    h, c = torch.stack([h_f, h_r]), torch.stack([c_f, c_r])
    if packed.unsorted_indices is not None:  # back to the caller's row order
        h, c = h.index_select(1, packed.unsorted_indices), c.index_select(1, packed.unsorted_indices)
    return PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices), (h, c)


def pad_packed(packed: PackedSequence) -> torch.Tensor:
    """``pad_packed_sequence(packed, batch_first=True)[0]``: (B, L, C) zero-padded, in the caller's
    row order and the same memory layout (row-major when the sequence was packed unsorted, else a
    transposed view of a time-major (L, B, C) tensor), so a dropout mask drawn on it is the same."""
    sizes = packed.batch_sizes.tolist()
    B, L = sizes[0], len(sizes)
    dev = packed.data.device
    counts = packed.batch_sizes.to(dev)
    steps = torch.repeat_interleave(torch.arange(L, device=dev), counts)  # packed row -> its time step
    starts = torch.cumsum(counts, 0) - counts
    sorted_rows = torch.arange(len(steps), device=dev) - starts[steps]  # packed row -> its sorted position
    if packed.sorted_indices is None:  # time-major, transposed, as pad_packed_sequence leaves it
        dest = steps * B + sorted_rows
        return packed.data.new_zeros(L * B, packed.data.shape[1]).index_copy(0, dest, packed.data).view(L, B, -1).transpose(0, 1)
    dest = packed.sorted_indices[sorted_rows] * L + steps
    return packed.data.new_zeros(B * L, packed.data.shape[1]).index_copy(0, dest, packed.data).view(B, L, -1)
