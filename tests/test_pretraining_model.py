"""CLIP-ViLp model: shapes, text and cell masks, cell sampling, tied MLM decoder, backbone choice."""
import pytest
import torch

from pretrain_helpers import CANVAS, VOCAB, make_batch, tiny_model
from pretraining.backbone import BackboneError, build_backbone
from pretraining.model import SIZES, CLIPViLp, ModelInputError, sample_cells


def test_shapes_of_hidden_states_and_heads(tiny_clip_rn):
    model = tiny_model(tiny_clip_rn).eval()
    b = make_batch(3)
    enc = model(b["input_ids"], b["attention_mask"], images=b["images"], num_cells=4)
    d = SIZES["tiny"].hidden
    assert enc.hidden.shape == (3, 8 + 4, d) and enc.text.shape == (3, 8, d) and enc.pooled.shape == (3, d)
    assert model.mlm_logits(enc.text).shape == (3, 8, VOCAB)
    assert model.itm_logits(enc.pooled).shape == (3, 2) and model.qa_logits(enc.pooled).shape == (3, 5)
    every = model(b["input_ids"], b["attention_mask"], images=b["images"])  # fine-tuning: all 2 x 3 cells
    assert every.hidden.shape == (3, 8 + 6, d) and every.cell_mask.all()


def test_padding_tokens_and_padded_pixels_change_nothing(tiny_clip_rn):
    model = tiny_model(tiny_clip_rn).eval()
    b = make_batch(2, lengths=[3, 5])
    sizes = torch.tensor([[64, 40], [40, 96]])  # content 64 x 40 -> 2 x 2 cells; 40 x 96 -> 2 x 3
    ref = model(b["input_ids"], b["attention_mask"], images=b["images"], image_sizes=sizes)
    assert ref.cell_mask.tolist() == [[True, True, False, True, True, False], [True] * 6]
    ids, images = b["input_ids"].clone(), b["images"].clone()
    ids[b["attention_mask"] == 0] = 17
    images[0, :, :, 40:] = 255 - images[0, :, :, 40:]  # outside the first image's content
    images[1, :, 40:, :] = 0
    out = model(ids, b["attention_mask"], images=images, image_sizes=sizes)
    real = torch.cat([b["attention_mask"].bool(), ref.cell_mask], 1)
    torch.testing.assert_close(out.hidden[real], ref.hidden[real], rtol=1e-5, atol=1e-5)


def test_cell_sampling_takes_valid_cells_by_seed():
    valid = torch.tensor([[True] * 6 + [False] * 4, [True] * 10])
    seeds = torch.tensor([11, 12])
    a, ma = sample_cells(valid, 4, seeds)
    b, _ = sample_cells(valid, 4, seeds)
    assert torch.equal(a, b) and ma.all() and (a[0] < 6).all()
    assert (a.diff(dim=1) > 0).all()  # distinct, in grid order
    few, mask = sample_cells(valid, 8, seeds)
    assert mask[0].sum() == 6 and mask[1].all()  # an image with 6 valid cells pads the rest
    draws = {tuple(sample_cells(valid[1:], 3, torch.tensor([s]))[0][0].tolist()) for s in range(30)}
    assert len(draws) > 10
    assert torch.equal(sample_cells(valid, None)[0][0], torch.arange(10))


def test_mlm_decoder_is_the_word_embedding_matrix(tiny_clip_rn):
    model = tiny_model(tiny_clip_rn)
    h = torch.randn(4, SIZES["tiny"].hidden)
    with torch.no_grad():
        model.word_embeddings.weight[7].zero_()
        model.mlm_bias[7] = 0.25
    assert torch.allclose(model.mlm_logits(h)[:, 7], torch.full((4,), 0.25))
    assert not any("decoder" in n for n, _ in model.named_parameters())


def test_precomputed_cells_and_input_errors():
    model = CLIPViLp(VOCAB, 0, "tiny", grid_dim=16).eval()
    ids, mask = torch.full((2, 5), 6), torch.ones(2, 5, dtype=torch.long)
    enc = model(ids, mask, cells=torch.randn(2, 16, 3, 4), num_cells=5)
    assert enc.hidden.shape == (2, 10, SIZES["tiny"].hidden)
    with pytest.raises(ModelInputError, match="exactly one of images"):
        model(ids, mask)
    with pytest.raises(ModelInputError, match=r"\(B, 16, h, w\)"):
        model(ids, mask, cells=torch.randn(2, 8, 3, 4))
    with pytest.raises(ModelInputError, match="answer table"):
        model.qa_logits(enc.pooled)
    with pytest.raises(ModelInputError, match="no backbone"):
        model(ids, mask, images=torch.zeros(2, 3, *CANVAS, dtype=torch.uint8))


def test_backbone_is_a_trainable_clip_resnet_with_real_or_explicitly_random_weights(tiny_clip_rn, tmp_path, monkeypatch):
    from features.weights import WeightsUnavailableError

    bb = build_backbone(str(tiny_clip_rn["spec"]), str(tiny_clip_rn["openai"]))
    assert all(p.requires_grad for p in bb.parameters()) and not bb.random_weights
    assert bb(torch.zeros(1, 3, *CANVAS, dtype=torch.uint8)).shape == (1, 512, 2, 3)
    monkeypatch.setenv("CLIPVIL_WEIGHTS_DIR", str(tmp_path))  # nothing there: no silent random weights
    with pytest.raises(WeightsUnavailableError):
        build_backbone(str(tiny_clip_rn["spec"]))
    assert build_backbone(str(tiny_clip_rn["spec"]), "random").random_weights
    with pytest.raises(BackboneError, match="not a CLIP ResNet"):
        build_backbone("clip_vit_b32", "random")
