"""The Transformer captioner and its decoders: shapes, masking, beam 1 = greedy, overfitting."""
import numpy as np
import pytest
import torch

from caption_helpers import one_thread  # noqa: F401 - autouse fixture

from captioning.data import BOS, END
from captioning.decode import beam_search, greedy, sample
from captioning.model import CaptionModelConfig, CaptionTransformer
from captioning.scst import mean_of_others, token_mask


def tiny_model(vocab=12, feat=6, seed=0, dropout=0.0, max_len=8, d=32):
    torch.manual_seed(seed)
    return CaptionTransformer(CaptionModelConfig(vocab, feat, d_model=d, n_layers=2, n_heads=4, d_ff=64,
                                                 dropout=dropout, max_len=max_len)).eval()


def grids(b=3, h=3, w=4, c=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, h, w, c, generator=g)
    mask = torch.ones(b, h, w, dtype=torch.bool)
    mask[1, 2:, :] = False  # a smaller grid, padded
    return x, mask


def test_shapes_and_padding_is_ignored():
    model = tiny_model()
    x, mask = grids()
    tokens = torch.randint(3, 12, (6, 5))
    tokens[:, 0] = BOS
    logp = model(x, mask, tokens, seq_per_img=2)
    assert logp.shape == (6, 5, 12)
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(6, 5))
    x2 = x.clone()
    x2[1, 2:] = 100.0  # padded cells: whatever they hold changes nothing
    torch.testing.assert_close(model(x2, mask, tokens, seq_per_img=2), logp)
    assert greedy(model, x, mask).shape == (3, 8) and beam_search(model, x, mask, beam=3).shape == (3, 8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_one_equals_greedy_and_wider_beams_score_at_least_as_well(seed):
    model = tiny_model(seed=seed)
    x, mask = grids(b=4, seed=seed)
    g = greedy(model, x, mask)
    assert torch.equal(beam_search(model, x, mask, beam=1), g)

    def logprob(seqs):
        tokens = torch.cat([torch.full((len(seqs), 1), BOS), seqs], 1)
        lp = model(x, mask, tokens[:, :-1]).gather(2, seqs[..., None])[..., 0]
        return (lp * token_mask(seqs)).sum(1)

    b5 = beam_search(model, x, mask, beam=5)
    assert (logprob(b5) >= logprob(g) - 1e-4).all()


def test_samples_and_their_logprobs():
    model = tiny_model()
    x, mask = grids()
    seqs, lp = sample(model, x, mask, n=4, generator=torch.Generator().manual_seed(0))
    assert seqs.shape == lp.shape == (12, 8)
    after = (seqs == END).long().cumsum(1) - (seqs == END).long() > 0
    assert (seqs[after] == END).all() and (lp[after] == 0).all() and (lp <= 0).all()
    tokens = torch.cat([torch.full((12, 1), BOS), seqs], 1)
    ref = model(x, mask, tokens[:, :-1], seq_per_img=4).gather(2, seqs[..., None])[..., 0]
    torch.testing.assert_close(lp, ref * token_mask(seqs), atol=1e-5, rtol=1e-5)


def test_mean_of_other_samples_baseline():
    r = np.array([1.0, 2.0, 3.0, 10.0, 20.0, 30.0])
    np.testing.assert_allclose(mean_of_others(r, 3), [2.5, 2.0, 1.5, 25.0, 20.0, 15.0])


def test_overfits_a_handful_of_images_to_their_exact_captions():
    torch.manual_seed(0)
    captions = torch.tensor([[3, 4, 5, 0, 0, 0], [6, 7, 8, 9, 0, 0], [4, 3, 10, 11, 5, 0], [9, 9, 6, 0, 0, 0]])
    x, mask = grids(b=4, seed=3)
    model = tiny_model(dropout=0.1, max_len=6).train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    inputs = torch.cat([torch.full((4, 1), BOS), captions[:, :-1]], 1)
    tmask = token_mask(captions)
    for _ in range(150):
        logp = model(x, mask, inputs)
        loss = -(logp.gather(2, captions[..., None])[..., 0] * tmask).sum() / tmask.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert torch.equal(greedy(model, x, mask), captions)
    assert torch.equal(beam_search(model, x, mask, beam=3), captions)


def test_sampling_temperature_near_zero_gives_the_greedy_caption_with_model_logprobs():
    model = tiny_model()
    x, mask = grids()
    seqs, lp = sample(model, x, mask, n=2, temperature=1e-4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(seqs, greedy(model, x, mask).repeat_interleave(2, 0))
    tokens = torch.cat([torch.full((6, 1), BOS), seqs], 1)
    ref = model(x, mask, tokens[:, :-1], seq_per_img=2).gather(2, seqs[..., None])[..., 0]
    torch.testing.assert_close(lp, ref * token_mask(seqs), atol=1e-5, rtol=1e-5)  # temperature-1 log-probs
