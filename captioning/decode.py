"""Greedy, sampled and beam decoding of :class:`~captioning.model.CaptionTransformer`.

All return token ids (N, max_len) int64 padded with 0 (the end token) after a caption's end; a
caption that reaches ``max_len`` without an end token stops there. The decoder is rerun on the
whole prefix each step (captions are at most 16 tokens).
"""
from __future__ import annotations

import torch

from .data import BOS, END


def greedy(model, grids, mask, max_len: int | None = None) -> torch.Tensor:
    """Arg-max decoding: (B, max_len) ids."""
    memory, pad = model.encode(grids, mask)
    return _greedy_from_memory(model, memory, pad, max_len or model.cfg.max_len)


def _greedy_from_memory(model, memory, pad, max_len):
    n = memory.shape[0]
    tokens = torch.full((n, 1), BOS, dtype=torch.long, device=memory.device)
    done = torch.zeros(n, dtype=torch.bool, device=memory.device)
    for _ in range(max_len):
        logp = model.decode_logits(tokens, memory, pad)[:, -1]
        nxt = torch.where(done, torch.full_like(done, END, dtype=torch.long), logp.argmax(-1))
        tokens = torch.cat([tokens, nxt[:, None]], 1)
        done = done | (nxt == END)
        if done.all():
            break
    return _pad(tokens[:, 1:], max_len)


def sample(model, grids, mask, n: int, max_len: int | None = None, generator: torch.Generator | None = None,
           temperature: float = 1.0):
    """``n`` multinomial samples per image, image-major, drawn from softmax(logits / temperature).

    Returns:
        seqs (B * n, max_len) int64 and logprobs (B * n, max_len) float (each chosen token's
        log-probability under the model, temperature 1, with gradient; 0 after the end token).
    """
    max_len = max_len or model.cfg.max_len
    memory, pad = model.encode(grids, mask)
    memory, pad = memory.repeat_interleave(n, 0), pad.repeat_interleave(n, 0)
    m = memory.shape[0]
    tokens = torch.full((m, 1), BOS, dtype=torch.long, device=memory.device)
    done = torch.zeros(m, dtype=torch.bool, device=memory.device)
    logps = []
    for _ in range(max_len):
        logp = model.decode_logits(tokens, memory, pad)[:, -1]
        probs = logp.detach().exp() if temperature == 1.0 else torch.softmax(logp.detach() / temperature, -1)
        nxt = torch.multinomial(probs, 1, generator=generator)[:, 0]
        nxt = torch.where(done, torch.full_like(nxt, END), nxt)
        logps.append(torch.where(done, torch.zeros((), device=logp.device), logp.gather(1, nxt[:, None])[:, 0]))
        tokens = torch.cat([tokens, nxt[:, None]], 1)
        done = done | (nxt == END)
        if done.all():
            break
    lp = torch.stack(logps, 1)
    return _pad(tokens[:, 1:], max_len), torch.nn.functional.pad(lp, (0, max_len - lp.shape[1]))


def beam_search(model, grids, mask, beam: int = 5, max_len: int | None = None) -> torch.Tensor:
    """Beam search batched over images: the best of ``beam`` hypotheses by summed log-probability
    (no length penalty, as the released code's default). A finished hypothesis keeps its score.
    At ``beam=1`` it finds :func:`greedy`'s captions (same search, by the general path; the
    tests check it). Returns (B, max_len) ids."""
    max_len = max_len or model.cfg.max_len
    memory, pad = model.encode(grids, mask)
    b = memory.shape[0]
    memory, pad = memory.repeat_interleave(beam, 0), pad.repeat_interleave(beam, 0)
    dev = memory.device
    tokens = torch.full((b * beam, 1), BOS, dtype=torch.long, device=dev)
    score = torch.full((b, beam), float("-inf"), device=dev)
    score[:, 0] = 0.0  # all beams start identical: expand only the first
    done = torch.zeros(b * beam, dtype=torch.bool, device=dev)
    for _ in range(max_len):
        logp = model.decode_logits(tokens, memory, pad)[:, -1]  # (b*beam, V)
        v = logp.shape[1]
        ended = torch.full_like(logp, float("-inf"))
        ended[:, END] = 0.0
        logp = torch.where(done[:, None], ended, logp)
        cand = (score.reshape(-1, 1) + logp).reshape(b, beam * v)
        score, idx = cand.topk(beam, dim=1)
        src = (idx // v) + torch.arange(b, device=dev)[:, None] * beam
        nxt = (idx % v).reshape(-1)
        src = src.reshape(-1)
        tokens = torch.cat([tokens[src], nxt[:, None]], 1)
        done = done[src] | (nxt == END)
        if done.all():
            break
    best = tokens.reshape(b, beam, -1)[:, 0, 1:]  # topk sorts: beam 0 is the best
    return _pad(best, max_len)


def _pad(tokens: torch.Tensor, max_len: int) -> torch.Tensor:
    """Zero after the first end token, right-padded to max_len."""
    after = (tokens == END).long().cumsum(1) > 0
    tokens = tokens.masked_fill(after, END)
    return torch.nn.functional.pad(tokens, (0, max_len - tokens.shape[1]), value=END)
