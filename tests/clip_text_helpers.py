"""Small random CLIPs with a text tower open_clip's tokenizer can feed (zero-shot probe, Grad-CAM tests).

``tiny_text_clips`` (session): ``{"rn": {...}, "vit": {...}}``, each ``{"spec": <name>.json,
"weights": <name>.safetensors, "spec_obj": EncoderSpec}`` (:data:`clip_archives.TINY_ARCHS`
``rn_text`` / ``vit_text``: 128 x 128 input, 4 x 4 grid, 64-d embeddings, seed 0).
"""
from __future__ import annotations

import json

import pytest


def write_text_clip(folder, kind: str, seed: int = 0, state_edit=None) -> dict:
    """Spec and safetensors weights of the tiny text-capable CLIP ``kind`` (``"rn"`` / ``"vit"``);
    ``state_edit(model)`` may change the random model before it is written (a constructed case)."""
    from safetensors.torch import save_file

    from clip_archives import random_clip, tiny_clip_spec

    spec = tiny_clip_spec(f"{kind}_text")
    model = random_clip(spec, seed)
    if state_edit is not None:
        state_edit(model)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{spec.name}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    (folder / f"{spec.name}.json").write_text(json.dumps(spec.to_dict()))
    return {"spec": folder / f"{spec.name}.json", "weights": weights, "spec_obj": spec}


@pytest.fixture(scope="session")
def tiny_text_clips(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("tiny_text_clip")
    return {kind: write_text_clip(folder, kind) for kind in ("rn", "vit")}


def load(files: dict):
    """The :class:`features.clip_text.ClipModel` of :func:`write_text_clip` files, on the CPU."""
    from features.encoders import get_clip_model

    return get_clip_model(str(files["spec"]), weights=str(files["weights"]), device="cpu")
