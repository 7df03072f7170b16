"""features.grid / grid_presets: grid shapes per encoder and preset, the ViT position embedding,
the pooled vector at any size, validity masks."""
from __future__ import annotations

import functools
from types import SimpleNamespace

import pytest
import torch

from features.grid import GridEncoder, grid_mask, interpolate_pos_embed, vit_at_size
from features.provenance import record_of_encoder
from features.grid_presets import PRESETS, make_preset, parse_size, valid_cells

from grid_helpers import TINY_OPTIONS, tiny_encoder

# (image H, W) -> preset name -> (grid for CLIP towers, grid for torchvision ResNets)
LANDSCAPE = (480, 640)
EXPECTED = {
    "vqa": ((18, 25), (19, 25)),          # 600 x 800, aspect kept
    "vqa-fixed": ((18, 31), (19, 32)),    # 600 x 1000: the released code's 558 cells
    "caption": ((14, 14), (14, 14)),      # 448 x 448
    "pretrain": ((12, 20), (12, 20)),     # 384 x 512 padded to 384 x 640
}


def preset_named(name):
    return make_preset("vqa", resize="fixed") if name == "vqa-fixed" else make_preset(name)


# resnet18 runs at full width (torchvision fixes it), slow on CPU at 600 x 800: the fixed 600 x 1000
# and 448 x 448 cases cover its stride-32 arithmetic.
CASES = [(e, p) for e in ("clip_r50x4", "clip_vit_b32", "imagenet_r152") for p in EXPECTED
         if not (e == "imagenet_r152" and p in ("vqa", "pretrain"))]


@functools.lru_cache(maxsize=None)
def cached_encoder(name):
    torch.manual_seed(0)
    return tiny_encoder(name)


def run_preset(enc, preset, hw=LANDSCAPE):
    canvas = preset.canvas(*hw)
    image = torch.randint(0, 256, (3, *preset.resized(*hw)), dtype=torch.uint8)
    g = GridEncoder(enc, pooled=preset.pooled)
    return g(g.prepare([image], canvas))


@pytest.mark.parametrize("name,preset_name", CASES)
def test_grid_shapes_per_encoder_and_preset(name, preset_name):
    encoder = cached_encoder(name)
    preset = preset_named(preset_name)
    grid, pooled = run_preset(encoder, preset)
    want = EXPECTED[preset_name][encoder.spec.family == "imagenet"]
    assert grid.shape == (1, encoder.spec.grid_dim, *want)
    assert torch.isfinite(grid).all()
    if preset.pooled:
        assert pooled.shape == (1, encoder.spec.pooled_dim)
    else:
        assert pooled is None


def test_portrait_pretrain_canvas_turns_and_masks_padding():
    p = make_preset("pretrain")
    assert p.resized(480, 640) == (384, 512) and p.canvas(480, 640) == (384, 640)
    assert p.resized(640, 480) == (512, 384) and p.canvas(640, 480) == (640, 384)
    assert p.resized(300, 1000) == (192, 640)  # long side capped at 640
    assert valid_cells((384, 512), (384, 640), (12, 20)) == (12, 16)
    m = grid_mask((192, 640), (384, 640), (12, 20))
    assert m.shape == (12, 20) and m[:6].all() and not m[6:].any()


def test_presets_and_custom_sizes():
    assert set(PRESETS.names()) == {"vqa", "caption", "pretrain"}
    vqa = make_preset("vqa")
    assert vqa.resized(480, 640) == (600, 800) and vqa.resized(300, 1000) == (300, 1000)
    assert vqa.canvas(480, 640) == (600, 800) and not vqa.has_mask
    assert make_preset("vqa", resize="fixed").resized(480, 640) == (600, 1000)
    assert make_preset("caption").pooled and make_preset("caption", pooled=False).pooled is False
    assert make_preset("custom", size=(256, 320)).resized(10, 10) == (256, 320)
    assert make_preset("custom", short_side=100, max_long_side=150, pad_to=(100, 150)).canvas(50, 60) == (100, 150)
    assert parse_size("600x1000") == (600, 1000)
    with pytest.raises(ValueError, match="HEIGHTxWIDTH"):
        parse_size("600")
    with pytest.raises(ValueError, match="--preset custom"):
        make_preset("vqa", size=(10, 10))


def test_vit_position_embedding_is_the_trained_one_interpolated():
    """Regression for the original CLIP-ViL ViT features (issues #13, #20): the resized position
    embedding must be the trained one interpolated, used by the forward pass, never zeros."""
    import open_clip

    torch.manual_seed(0)
    enc = tiny_encoder("clip_vit_b32")
    native = enc.trunk.positional_embedding.detach()
    resized = vit_at_size(enc.trunk, (96, 128))
    pos = resized.positional_embedding
    assert resized.grid_size == (3, 4) and pos.shape == (1 + 12, native.shape[1])
    assert pos.abs().min() > 0  # not the zeros of the original bug
    torch.testing.assert_close(pos[0], native[0])  # class token position unchanged
    img = native[1:].reshape(1, 2, 2, -1).permute(0, 3, 1, 2)
    want = torch.nn.functional.interpolate(img, size=(3, 4), mode="bicubic", antialias=True, align_corners=False)
    torch.testing.assert_close(pos[1:], want.permute(0, 2, 3, 1).reshape(12, -1))
    assert enc.trunk.positional_embedding.shape == native.shape  # the registry's tower is untouched
    # the same tower built by open_clip at the forced size from the trained weights gives the same grid
    opts = TINY_OPTIONS["clip_vit_b32"]
    opts = {**opts, "vision_cfg": {**opts["vision_cfg"], "image_size": (96, 128)}}  # = force_image_size
    forced = open_clip.create_model("ViT-B-32-quickgelu", pretrained=None, **opts).visual
    state = {f"visual.{k}": v for k, v in enc.trunk.state_dict().items()}
    open_clip.model.resize_pos_embed(state, SimpleNamespace(visual=forced))
    forced.load_state_dict({k[len("visual."):]: v for k, v in state.items()})
    x = torch.randn(2, 3, 96, 128)
    g = GridEncoder(enc, pooled=True)
    grid, pooled = g(x)
    ref = forced.eval().forward_intermediates(x, indices=1)
    torch.testing.assert_close(grid, ref["image_intermediates"][-1])
    torch.testing.assert_close(pooled, torch.nn.functional.normalize(ref["image_features"], dim=-1))


def test_clip_resnet_pooled_at_any_size_is_its_attention_pool():
    torch.manual_seed(0)
    enc = tiny_encoder("clip_r50x4")
    g = GridEncoder(enc, pooled=True)
    pixels = torch.rand(2, 3, 64, 64) * 255
    x = enc.normalize(pixels)
    grid, pooled = g(x)
    with torch.no_grad():  # at the trained size: exactly the model's own embedding
        torch.testing.assert_close(pooled, torch.nn.functional.normalize(enc.trunk(x), dim=-1))
    reg_pooled, reg_grid = enc(pixels, grid=True)  # the registry's panoramic path agrees
    torch.testing.assert_close(grid, reg_grid)
    torch.testing.assert_close(pooled, reg_pooled)
    big = torch.randn(1, 3, 448, 448)
    with pytest.raises(RuntimeError):  # what the plain tower does at 448: the attention pool fails
        enc.trunk(big)
    grid, pooled = g(big)
    assert grid.shape[2:] == (14, 14) and pooled.shape == (1, 16)
    pos = interpolate_pos_embed(enc.trunk.attnpool.positional_embedding.detach(), (14, 14))
    assert pos.shape == (1 + 196, 256)


def test_encoder_record_hashes_a_weights_file(tmp_path):
    enc = tiny_encoder("clip_r50x4")  # a fresh one: the attributes changed below stay in this test
    rec = record_of_encoder(enc)
    assert rec == {"name": "tiny_clip_r50x4", "architecture": "RN50x4-quickgelu", "weights": "random",
                   "weights_sha256": None, "random": True}
    f = tmp_path / "w.pt"
    f.write_bytes(b"abc")
    enc.weights = str(f)
    enc.random_weights = False
    rec = record_of_encoder(enc)
    assert rec["weights_sha256"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert rec["weights"] == "w.pt" and rec["random"] is False  # the file's name, not where it lies


def test_annotation_encoders_are_refused():
    from features.encoders import get_encoder

    with pytest.raises(ValueError, match="reads annotations"):
        GridEncoder(get_encoder("synthetic_semantic"))
