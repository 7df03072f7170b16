"""Both registered VQA models: shapes, masking of padding, the paper sizes, overfitting a handful of questions."""
import time

import pytest
import torch

from vln.registry import NameNotFound
from vqa.models import MODELS
from vqa.models.mcan import SIZES

TINY = {"mcan": dict(hidden=32, ff=64, heads=4, layers=2, flat_out=64, flat_mlp=32, word_dim=16),
        "pythia": dict(hidden=64, lstm=32, word_dim=16, att_hidden=32)}


def batch(b=3, h=4, w=5, c=12, words=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, words, (b, 7), generator=g)
    tokens[0, 4:] = 0
    mask = torch.ones(b, h, w, dtype=torch.bool)
    mask[0, 3:] = False
    return tokens, torch.randn(b, h, w, c, generator=g), mask, torch.rand(b, h, w, 2, generator=g)


@pytest.mark.parametrize("name", ["mcan", "pythia"])
def test_logits_shape_and_padding_ignored(name):
    torch.manual_seed(0)
    model = MODELS.get(name)(num_words=20, num_answers=11, grid_dim=12, dropout=0.0, **TINY[name]).eval()
    tokens, grid, mask, pos = batch()
    out = model(tokens, grid, mask, pos)
    assert out.shape == (3, 11) and torch.isfinite(out).all()
    assert model(tokens, grid, mask).shape == (3, 11)             # positions are optional
    grid2 = grid.clone()
    grid2[0, 3:] = 100.0                                           # padding cells of example 0
    tokens2 = tokens.clone()
    tokens2[0, 4:] = 0
    torch.testing.assert_close(model(tokens2, grid2, mask, pos)[0], out[0])
    grid2[0, 0, 0] += 1.0                                          # a real cell does matter
    assert not torch.allclose(model(tokens, grid2, mask, pos)[0], out[0])


def test_registry_and_paper_sizes():
    assert {"mcan", "pythia"} <= set(MODELS.names())
    with pytest.raises(NameNotFound, match="mcan"):
        MODELS.get("mcann")
    assert SIZES["small"]["hidden"] == 512 and SIZES["large"] == dict(hidden=1024, ff=4096, heads=8, layers=6, flat_out=2048)
    large = MODELS.get("mcan")(num_words=10, num_answers=5, grid_dim=8, size="large", layers=1)
    assert large.classify.in_features == 2048 and large.encoder[0].ffn[0].out_features == 4096
    assert large.encoder[0].att.heads == 8 and large.flat_v.mlp[0].out_features == 512
    with pytest.raises(ValueError, match="size"):
        MODELS.get("mcan")(num_words=10, num_answers=5, grid_dim=8, size="huge")


@pytest.mark.parametrize("name", ["mcan", "pythia"])
def test_overfits_a_handful_of_questions(name):
    """8 questions with 8 different answers: the model must learn every one (BCE on one-hot targets)."""
    torch.manual_seed(0)
    tokens, grid, mask, pos = batch(b=8, seed=1)
    target = torch.eye(8)
    model = MODELS.get(name)(num_words=20, num_answers=8, grid_dim=12, dropout=0.0, **TINY[name])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    start = time.process_time()  # CPU seconds: wall time on a shared machine measures the neighbours
    for step in range(300):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(tokens, grid, mask, pos), target, reduction="sum")
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 10 == 9 and (model(tokens, grid, mask, pos).argmax(1) == torch.arange(8)).all():
            break
    model.eval()
    assert (model(tokens, grid, mask, pos).argmax(1) == torch.arange(8)).all(), f"not learned after {step + 1} steps"
    assert time.process_time() - start < 60


def test_sdpa_attention_equals_the_plain_formula():
    import copy

    torch.manual_seed(0)
    model = MODELS.get("mcan")(num_words=20, num_answers=11, grid_dim=12, dropout=0.0, **TINY["mcan"]).eval()
    plain = copy.deepcopy(model)
    for m in plain.modules():
        if hasattr(m, "plain"):
            m.plain = True
    tokens, grid, mask, pos = batch()
    torch.testing.assert_close(plain(tokens, grid, mask, pos), model(tokens, grid, mask, pos), rtol=1e-5, atol=1e-5)
