"""features.registry / features.encoders: specs and tiny random-weight trunks (weight files: test_features_weights.py)."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import torch

from features.encoders import build_open_clip, build_torchvision_resnet
from features.registry import ENCODERS, EncoderSpec, get_spec
from vln.registry import NameNotFound

DIMS = {"clip_r50": (1024, 2048, 224), "clip_r101": (512, 2048, 224), "clip_r50x4": (640, 2560, 288),
        "clip_vit_b32": (512, 768, 224), "imagenet_r152": (2048, 2048, 480)}


def test_registry_lists_the_encoders_with_their_dims():
    # tiny_* specs are what tests/grid_helpers.py registers in this process for the grid tests
    registered = {n for n in ENCODERS.names() if not n.startswith("tiny_")}
    assert set(DIMS) | {"synthetic_semantic", "synthetic_semantic_grid"} == registered
    for name, (pooled, grid, size) in DIMS.items():
        spec = get_spec(name)
        assert (spec.pooled_dim, spec.grid_dim, spec.input_size[0]) == (pooled, grid, size)
        assert len(spec.mean) == len(spec.std) == 3
    assert get_spec("clip_r50x4").architecture == "RN50x4-quickgelu"
    assert get_spec("synthetic_semantic").needs_pixels is False


def test_clip_dims_match_open_clip_configs():
    import open_clip

    for name in ("clip_r50", "clip_r101", "clip_r50x4", "clip_vit_b32"):
        spec = get_spec(name)
        cfg = open_clip.get_model_config(spec.architecture)
        assert cfg["embed_dim"] == spec.pooled_dim
        assert cfg["vision_cfg"]["image_size"] == spec.input_size[0]
        assert "openai" in open_clip.list_pretrained_tags_by_model(spec.architecture)


def test_unknown_encoder_suggests_a_name():
    with pytest.raises(NameNotFound, match="clip_r50x4"):
        get_spec("clip_r50x5")


def test_import_features_does_not_import_torch():
    code = "import sys, features; assert 'torch' not in sys.modules; print(features.ENCODERS.names())"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def tiny(spec_name, size, **changes):
    spec = get_spec(spec_name)
    opts = {"force_image_size": size} if spec.family == "clip" else {}
    return dataclasses.replace(spec, name=f"tiny_{spec_name}", input_size=(size, size), render_size=(size, size),
                               options=opts, **changes)


def test_clip_resnet_pooled_is_normalised_attnpool_and_grid_is_last_stage():
    torch.manual_seed(0)
    enc = build_open_clip(tiny("clip_r50", 64), "random")
    assert enc.random_weights and enc.weights == "random"
    images = torch.rand(3, 3, 64, 64) * 255
    pooled, grid = enc(images, grid=True)
    assert pooled.shape == (3, 1024) and grid.shape == (3, 2048, 2, 2)
    torch.testing.assert_close(pooled.norm(dim=-1), torch.ones(3))
    # pooled-only path gives the same vector as the path that also returns the grid
    torch.testing.assert_close(enc(images), pooled)
    # and it is the open_clip visual embedding of the normalised image, L2-normalised
    with torch.no_grad():
        ref = enc.trunk(enc.normalize(images))
    torch.testing.assert_close(pooled, torch.nn.functional.normalize(ref, dim=-1))


def test_clip_vit_grid_is_patch_tokens():
    enc = build_open_clip(tiny("clip_vit_b32", 64), "random")
    pooled, grid = enc(torch.rand(2, 3, 64, 64) * 255, grid=True)
    assert pooled.shape == (2, 512) and grid.shape == (2, 768, 2, 2)


def test_imagenet_resnet_pooled_is_mean_of_grid():
    spec = tiny("imagenet_r152", 64, architecture="resnet18", pooled_dim=512, grid_dim=512)
    enc = build_torchvision_resnet(spec, "random")
    pooled, grid = enc(torch.rand(2, 3, 64, 64) * 255, grid=True)
    assert grid.shape == (2, 512, 2, 2)
    torch.testing.assert_close(pooled, grid.mean(dim=(2, 3)))


def test_spec_to_dict_is_json_ready():
    import json

    d = get_spec("clip_r50x4").to_dict()
    assert json.loads(json.dumps(d))["input_size"] == [288, 288]
    assert isinstance(get_spec("clip_r50"), EncoderSpec)
