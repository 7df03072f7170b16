"""Tiny random-weight versions of the registry's pixel encoders (real architectures, small widths),
images written to tmp folders, and an entry point that runs the grid extraction script with the
tiny encoders registered (so ``torchrun`` can start it in fresh processes).

The tiny CLIP towers are the registry's own open_clip architectures with ``vision_cfg`` /
``text_cfg`` overridden through ``spec.options`` (open_clip's model kwargs): same classes, same
stride-32 downsampling, a fraction of the channels.
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from features.registry import ENCODERS, get_spec, register_encoder

TEXT = {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1}
TINY_OPTIONS = {
    "clip_r50x4": {"embed_dim": 16, "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 8,
                                                   "head_width": 8}, "text_cfg": TEXT},
    "clip_vit_b32": {"embed_dim": 16, "vision_cfg": {"image_size": 64, "layers": 1, "width": 32, "patch_size": 32,
                                                     "head_width": 16}, "text_cfg": TEXT},
}
#: tiny name -> (pooled dim, grid channels)
TINY_DIMS = {"tiny_clip_r50x4": (16, 256), "tiny_clip_vit_b32": (16, 32), "tiny_imagenet_r152": (512, 512)}


def tiny_spec(name: str):
    """The registry spec ``name`` shrunk to a tiny random-weight architecture of the same family."""
    spec = get_spec(name)
    tiny = f"tiny_{name}"
    pooled, grid = TINY_DIMS[tiny]
    if spec.family == "imagenet":
        return dataclasses.replace(spec, name=tiny, architecture="resnet18", pooled_dim=pooled, grid_dim=grid,
                                   input_size=(64, 64), render_size=(64, 64))
    return dataclasses.replace(spec, name=tiny, pooled_dim=pooled, grid_dim=grid, input_size=(64, 64),
                               render_size=(64, 64), options=TINY_OPTIONS[name])


TINY_NAMES = ("clip_r50x4", "clip_vit_b32", "imagenet_r152")


def register_tiny_encoders() -> list[str]:
    """Register the tiny specs in the encoder registry for good (the torchrun entry's own process)."""
    for name in TINY_NAMES:
        register_encoder(tiny_spec(name))
    return [f"tiny_{n}" for n in TINY_NAMES]


@contextlib.contextmanager
def tiny_encoders_registered():
    """The tiny specs in the encoder registry for the duration of a block (so the CLI's
    ``--encoder`` choices include them), removed afterwards: other tests see the real registry."""
    with pytest.MonkeyPatch.context() as mp:
        for name in TINY_NAMES:
            spec = tiny_spec(name)
            mp.setitem(ENCODERS._items, spec.name, spec)
        yield


def tiny_encoder(name: str):
    """A built tiny encoder (random weights, CPU) for the registry encoder ``name``, made by the
    spec's own builder (as ``get_encoder`` does, without registering it)."""
    spec = tiny_spec(name)
    module, func = spec.builder.split(":")
    return getattr(importlib.import_module(module), func)(spec, "random")


def write_images(folder: Path, sizes, seed: int = 0) -> list[Path]:
    """Random RGB JPEG / PNG images of the given (height, width) sizes; returns their paths."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for n, (h, w) in enumerate(sizes):
        pix = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        path = folder / f"{n:04d}.{'png' if n % 2 else 'jpg'}"
        Image.fromarray(pix).save(path)
        paths.append(path)
    return paths


if __name__ == "__main__":  # torchrun entry: the extraction script with the tiny encoders known
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    register_tiny_encoders()
    from extract_grid_features import main

    main(sys.argv[1:])
