"""Small random CLIPs in every file format real weights come in (tests and benchmarks).

:func:`tiny_clip_spec` is an :class:`EncoderSpec` of a small open_clip CLIP (a ModifiedResNet or a
ViT whose ``options`` override the named config); :func:`write_tiny_clip` gives it random weights
and writes them as

* ``<name>.pt``: a TorchScript archive laid out as OpenAI's releases are (a traced ``CLIP`` with
  ``input_resolution`` / ``context_length`` / ``vocab_size`` entries and float16 convolution,
  linear and projection weights), which ``open_clip.load_openai_model`` accepts;
* ``open_clip_pytorch_model.bin`` and ``open_clip_model.safetensors``: the same values as open_clip /
  Hugging Face state dicts;
* ``<name>.json``: the spec, usable wherever an encoder name is (``--encoder <name>.json``).

The weights are random, rounded to float16 first, so that every format holds the same values and
features extracted from any of them are equal.

Example (an end-to-end test)::

    files = write_tiny_clip(tmp_path / "weights", kind="rn")
    extract_main(["--encoder", str(files["spec"]), "--weights", str(files["openai"]), ...,
                  "--allow-random-features"])   # not needed: these weights are not "random"
"""
from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import torch

from features.registry import CLIP_MEAN, CLIP_STD, R2R_VFOV, EncoderSpec

#: Small architectures: (open_clip base name, options overriding its config, input size, grid channels).
TINY_ARCHS = {
    "rn": ("RN50-quickgelu", {
        "embed_dim": 64,
        "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 16, "patch_size": None},
        "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 64, "heads": 1, "layers": 1},
    }, 64, 16 * 32),
    "vit": ("ViT-B-32-quickgelu", {
        "embed_dim": 64,
        "vision_cfg": {"image_size": 64, "layers": 1, "width": 64, "patch_size": 32},
        "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 64, "heads": 1, "layers": 1},
    }, 64, 64),
}
#: A text tower open_clip's BPE tokenizer can feed (its 49,408 token ids), kept small otherwise.
TINY_TEXT_CFG = {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 1, "layers": 1}
#: Small CLIPs with a usable text tower and a 4 x 4 grid at 128 x 128 (zero-shot probe, Grad-CAM).
TINY_ARCHS["rn_text"] = ("RN50-quickgelu", {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 128, "layers": [1, 1, 1, 1], "width": 16, "patch_size": None},
    "text_cfg": TINY_TEXT_CFG,
}, 128, 16 * 32)
TINY_ARCHS["vit_text"] = ("ViT-B-32-quickgelu", {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 128, "layers": 2, "width": 64, "patch_size": 32},
    "text_cfg": TINY_TEXT_CFG,
}, 128, 64)


def tiny_clip_spec(kind: str = "rn", name: str | None = None) -> EncoderSpec:
    """The spec of a small CLIP (``kind`` ``"rn"``: ModifiedResNet, width 16, 512-channel grid;
    ``"vit"``: one-layer ViT, width 64): 64 x 64 input, 64-d pooled output, 2 x 2 grid; ``"rn_text"`` /
    ``"vit_text"`` (two layers): 128 x 128 input, 4 x 4 grid, a text tower open_clip's tokenizer can feed."""
    arch, options, size, grid = TINY_ARCHS[kind]
    name = name or f"tiny_clip_{kind}"
    return EncoderSpec(
        name=name, family="clip", architecture=arch, weights_tag=None, weights_file=f"{name}.pt",
        input_size=(size, size), render_size=(size, size), render_vfov=R2R_VFOV, mean=CLIP_MEAN, std=CLIP_STD,
        pooled_dim=options["embed_dim"], grid_dim=grid, grid_stride=32, l2_normalize=True,
        builder="features.encoders:build_open_clip", options=copy.deepcopy(options),
    )


def random_clip(spec: EncoderSpec, seed: int = 0):
    """The open_clip ``CLIP`` of ``spec`` with open_clip's random initialisation, every value
    rounded to float16 (as OpenAI's files hold them)."""
    import open_clip

    from features.encoders import quiet_random_init

    torch.manual_seed(seed)
    with quiet_random_init():
        model = open_clip.create_model(spec.architecture, pretrained=None, **spec.options).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
        for name, b in model.named_buffers():
            if b.is_floating_point():
                b.copy_(b.half().float())
    return model


def _half_keys(model) -> set:
    """State-dict keys OpenAI stores in float16 (open_clip's ``convert_weights_to_lp`` mirrors
    OpenAI's ``convert_weights``)."""
    from open_clip.model import convert_weights_to_lp

    lp = copy.deepcopy(model)
    convert_weights_to_lp(lp, torch.float16)
    return {k for k, v in lp.state_dict().items() if v.dtype == torch.float16}


def write_openai_archive(model, path) -> Path:
    """Write ``model`` as OpenAI did: ``torch.jit.trace`` of the whole CLIP (``forward``,
    ``encode_image``, ``encode_text``), with the extra state-dict entries and float16 weights."""
    m = copy.deepcopy(model).eval()
    size = m.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    image = torch.ones(1, 3, size, size)
    text = torch.zeros(1, m.context_length, dtype=torch.int)
    for key, value in (("input_resolution", size), ("context_length", m.context_length), ("vocab_size", m.vocab_size)):
        if key in vars(m):
            delattr(m, key)
        m.register_buffer(key, torch.tensor(value))
    if "attn_mask" in m._buffers:  # OpenAI's causal mask is a plain attribute, not a state-dict entry
        mask = m._buffers.pop("attn_mask")
        m.attn_mask = mask
    half = _half_keys(model)
    with warnings.catch_warnings():  # torch 2.14 marks TorchScript deprecated; the format is what we emulate
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace_module(m, {"forward": (image, text), "encode_image": (image,), "encode_text": (text,)},
                                        check_trace=False)
    with torch.no_grad():  # (a traced module's state_dict() holds copies; its parameters are its own)
        for key, t in traced.named_parameters():
            if key in half:
                t.data = t.data.half()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(traced, str(path))
    return path


def write_tiny_clip(folder, kind: str = "rn", seed: int = 0, name: str | None = None) -> dict:
    """Random small-CLIP weights in every accepted format, in ``folder``.

    Returns:
        dict of paths: ``spec`` (``<name>.json``), ``openai`` (``<name>.pt``, TorchScript),
        ``bin`` (``<name>/open_clip_pytorch_model.bin``), ``safetensors``
        (``<name>/open_clip_model.safetensors``); and ``spec_obj``, the :class:`EncoderSpec`.
    """
    from safetensors.torch import save_file

    spec = tiny_clip_spec(kind, name)
    folder = Path(folder)
    model = random_clip(spec, seed)
    snap = folder / spec.name
    snap.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    torch.save(state, snap / "open_clip_pytorch_model.bin")
    save_file(state, str(snap / "open_clip_model.safetensors"))
    (folder / f"{spec.name}.json").write_text(json.dumps(spec.to_dict(), indent=1))
    return {"spec": folder / f"{spec.name}.json", "openai": write_openai_archive(model, folder / spec.weights_file),
            "bin": snap / "open_clip_pytorch_model.bin", "safetensors": snap / "open_clip_model.safetensors",
            "spec_obj": spec}
