"""Where CLIP looked: maps over the image grid of what drives its image-text similarity.

The target is the cosine of CLIP's L2-normalised image and text embeddings, ``s = <f(x), t>``.

* CLIP ResNets: Grad-CAM (Selvaraju et al. 2017) on the last block (``layer4``, the grid the
  attention pool reads): with A the (C, H, W) activations and alpha_k the spatial mean of
  ds/dA_k, the map is ``ReLU(sum_k alpha_k A_k)``, (H, W) = the input size / 32.
* CLIP ViTs: attention x gradient relevance rolled over the layers (Chefer et al. 2021, "Generic
  attention-model explainability", as their CLIP notebook does): R = I; for every block, with
  A its (heads, N, N) attention probabilities and dA = ds/dA, ``R <- R + mean_h(ReLU(dA * A)) R``;
  the map is the class token's row over the patches, ``R[0, 1:]`` on the (H, W) patch grid.

Both maps are non-negative and returned at the grid shape; :func:`overlay` upsamples one onto the
image the model saw (:func:`features.clip_text.clip_view`) and :func:`save_png` writes it atomically.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

METHODS = ("gradcam", "relevance")


@dataclass
class Explanation:
    """A map of one image and one text.

    Attributes:
        map: (H, W) float32, non-negative, on the CPU: the last block's grid.
        similarity: the cosine of the image and text embeddings.
        method: ``"gradcam"`` (ResNet) or ``"relevance"`` (ViT).
    """

    map: torch.Tensor
    similarity: float
    method: str


def method_of(visual: torch.nn.Module) -> str:
    """``"relevance"`` for an open_clip VisionTransformer, ``"gradcam"`` for a ModifiedResNet."""
    if hasattr(visual, "transformer") and hasattr(visual, "grid_size"):
        return "relevance"
    if hasattr(visual, "layer4") and hasattr(visual, "attnpool"):
        return "gradcam"
    raise TypeError(f"no explanation method for a {type(visual).__name__} image tower (CLIP ResNet or ViT)")


def gradcam(visual: torch.nn.Module, x: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Grad-CAM of a CLIP ModifiedResNet on its last block.

    Args:
        visual: the image tower (``clip.visual``).
        x: (1, 3, S, S) normalised image.
        text: (D,) L2-normalised text embedding.

    Returns:
        the (H, W) map (ReLU of the gradient-weighted channel sum) and the cosine similarity.
    """
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        out = visual.forward_intermediates(x, indices=1)
        acts = out["image_intermediates"][-1]  # (1, C, H, W): layer4, the attention pool's input
        sim = F.normalize(out["image_features"].float(), dim=-1)[0] @ text.float()
        (grad,) = torch.autograd.grad(sim, acts)
    weights = grad.float().mean(dim=(2, 3), keepdim=True)  # alpha_k, (1, C, 1, 1)
    cam = F.relu((weights * acts.detach().float()).sum(dim=1))[0]
    return cam.cpu(), float(sim.detach())


def _capture_attention(blocks):
    """Hooks making each ``nn.MultiheadAttention`` of ``blocks`` also return its per-head
    attention probabilities (the tensor its output is computed from) into a list."""
    captured, handles = [], []

    def pre(module, args, kwargs):
        kwargs = dict(kwargs, need_weights=True, average_attn_weights=False)
        return args, kwargs

    def post(module, args, output):
        # the (B, heads, N, N) weights are a view made after the output was computed: the gradient
        # flows through the tensor they view, the softmax output the values were multiplied with
        weights = output[1]
        if weights._base is None or weights._base.numel() != weights.numel():
            raise TypeError("nn.MultiheadAttention did not return its per-head attention probabilities")
        captured.append(weights._base)

    for blk in blocks:
        attn = getattr(blk, "attn", None)
        if not isinstance(attn, torch.nn.MultiheadAttention):
            raise TypeError(f"relevance needs nn.MultiheadAttention blocks; {type(blk).__name__} has "
                            f"{type(attn).__name__}")
        handles.append(attn.register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(attn.register_forward_hook(post))
    return captured, handles


def attention_relevance(visual: torch.nn.Module, x: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Attention x gradient relevance of a CLIP VisionTransformer, rolled over its blocks.

    Args: as :func:`gradcam`.

    Returns:
        the (H, W) relevance of the patches for the class token and the cosine similarity.
    """
    blocks = list(visual.transformer.resblocks)
    captured, handles = _capture_attention(blocks)
    try:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            sim = F.normalize(visual(x).float(), dim=-1)[0] @ text.float()
            grads = torch.autograd.grad(sim, captured)
    finally:
        for h in handles:
            h.remove()
    n = captured[0].shape[-1]
    rel = torch.eye(n, device=x.device)
    for attn, grad in zip(captured, grads):  # (heads, N, N) each: batch of one
        cam = (grad.float() * attn.detach().float()).reshape(-1, n, n).clamp(min=0).mean(dim=0)  # (N, N)
        rel = rel + cam @ rel
    h, w = visual.grid_size
    return rel[0, 1:].reshape(h, w).cpu(), float(sim.detach())


def explain(clip, pixels: torch.Tensor, text: str) -> Explanation:
    """The map of ``text`` on an image for a :class:`features.clip_text.ClipModel`.

    Args:
        pixels: (3, S, S) uint8 / [0, 255] pixels at the model's input size (:func:`clip_view`).
        text: the text the similarity is taken with.
    """
    visual = clip.clip.visual
    method = method_of(visual)
    t = clip.encode_texts([text])[0].clone()  # out of inference mode: the backward saves it
    x = clip.image.normalize(pixels[None].to(clip.device))
    fn = gradcam if method == "gradcam" else attention_relevance
    cam, sim = fn(visual, x, t)
    return Explanation(cam, sim, method)


def _jet(v: np.ndarray) -> np.ndarray:
    """(..., ) values in [0, 1] -> (..., 3) uint8 RGB of the jet colour map (blue - cyan - yellow - red)."""
    r = np.clip(1.5 - np.abs(4 * v - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * v - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * v - 1), 0, 1)
    return (np.stack([r, g, b], axis=-1) * 255).round().astype(np.uint8)


def overlay(image, cam: torch.Tensor, alpha: float = 0.5):
    """A PIL image of ``cam`` upsampled (bilinear) to ``image``'s size, scaled to its maximum,
    coloured (jet) and blended over ``image`` with weight ``alpha``."""
    from PIL import Image

    w, h = image.size
    up = F.interpolate(cam[None, None].float(), size=(h, w), mode="bilinear", align_corners=False)[0, 0]
    top = float(up.max())
    v = (up / top).clamp(0, 1).numpy() if top > 0 else np.zeros((h, w), np.float32)
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    blend = (1 - alpha) * base + alpha * _jet(v).astype(np.float32)
    return Image.fromarray(blend.round().clip(0, 255).astype(np.uint8))


def save_png(image, path: str | os.PathLike) -> None:
    """Write a PIL image as PNG, atomically (:func:`vln.io_utils.atomic_write_bytes`)."""
    from vln.io_utils import atomic_write_bytes

    buf = io.BytesIO()
    image.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
