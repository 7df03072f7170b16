"""Soft-dot attention's two forms of the logits give the same numbers and gradients."""
import pytest
import torch

from agents.attention import SoftDotAttention


@pytest.mark.parametrize("shape", [(5, 7, 6), (1, 1, 3), (4, 36, 16)])
def test_row_scores_equal_the_originals_column_form(shape):
    """``row_scores`` (query row times the context's transpose) against the original's
    ``bmm(context, query column)``: logits, weighted context, and the gradients of the query, the
    context and the map's weight, with masked entries -inf and given no gradient."""
    B, N, C = shape
    g = torch.Generator().manual_seed(sum(shape))
    att = SoftDotAttention(C, C).double()  # float64: the two orders of summation agree to 1e-12
    h0 = torch.randn(B, C, generator=g, dtype=torch.float64)
    ctx0 = torch.randn(B, N, C, generator=g, dtype=torch.float64)
    mask = torch.zeros(B, N, dtype=torch.bool)
    mask[0, N // 2 + 1:] = True
    out = {}
    for row in (False, True):
        att.zero_grad()
        h, ctx = h0.clone().requires_grad_(True), ctx0.clone().requires_grad_(True)
        logits = att.scores(h, ctx, mask, row_scores=row)
        tilde, attn = att(h, ctx, mask, row_scores=row)
        (tilde.pow(2).sum() + logits.masked_fill(mask, 0).sin().sum()).backward()
        out[row] = (logits.detach(), tilde.detach(), attn.detach(), h.grad, ctx.grad, att.linear_in.weight.grad.clone())
    for a, b in zip(out[False], out[True]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    logits, _, attn, _, ctx_grad, _ = out[True]
    assert torch.isinf(logits[mask]).all() and (attn[mask] == 0).all()
    assert (ctx_grad[0, N // 2 + 1:] == 0).all() and ctx_grad.abs().sum() > 0
