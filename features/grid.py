"""Grid features of whole images at any input size, from the encoders the registry builds.

:class:`GridEncoder` wraps an :class:`features.encoders.ImageEncoder` (no model code edited):

* CLIP ResNets: the last stage before attention pooling,
  ``visual.forward_intermediates(x, indices=1, intermediates_only=True)`` (stride 32; RN50 /
  RN101 2048 channels, RN50x4 2560). The attention pool never runs on the grid path, so any
  input size works (600 x 1000, 448 x 448, ...).
* CLIP ViT: the final patch tokens without the class token, reshaped to the patch grid, from a
  view of the tower at the forced image size whose position embedding is the trained one
  interpolated (bicubic, open_clip's ``resize_pos_embed``, exactly what
  ``create_model(force_image_size=...)`` does when it loads weights) -- never zeros, the bug of
  the original CLIP-ViL ViT features.
* ImageNet ResNets (torchvision): the last stage (``layer4``).

Pooled vector (the ``caption`` preset): CLIP ResNets run their attention pool on the grid with
the positional embedding interpolated bicubically from the trained 7 x 7 (9 x 9 for RN50x4) to
the grid size, so at 448 x 448 the vector stays in CLIP's image-text embedding space (what the
zero-shot probe and a CLIP-space captioner need; a plain mean of the grid would not be). At the
trained size it is exactly the model's own embedding. CLIP ViT: the projected class token of
the resized tower. ImageNet: the mean of the grid. Pooled vectors are L2-normalised when the
spec says so (every CLIP encoder), as the registry's pooled features are.
"""
from __future__ import annotations

import copy
from contextlib import nullcontext
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from .grid_presets import valid_cells


def interpolate_pos_embed(pos: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Resize a (1 + S*S, C) positional embedding (class token first) to ``grid`` cells with
    open_clip's own ``resize_pos_embed`` (bicubic, antialiased); unchanged when it already fits."""
    from open_clip.model import resize_pos_embed

    state = {"visual.positional_embedding": pos}
    resize_pos_embed(state, SimpleNamespace(visual=SimpleNamespace(grid_size=tuple(grid))))
    return state["visual.positional_embedding"]


def vit_at_size(visual: torch.nn.Module, size: tuple[int, int]) -> torch.nn.Module:
    """The open_clip ViT tower as if built with ``force_image_size=size``: every weight shared
    with ``visual`` except the position embedding, which is the trained one interpolated."""
    ph, pw = visual.patch_size
    grid = (size[0] // ph, size[1] // pw)
    if tuple(grid) == tuple(visual.grid_size):
        return visual
    resized = copy.copy(visual)  # shallow: submodules are shared, not copied
    resized._parameters = dict(visual._parameters)
    resized._parameters["positional_embedding"] = torch.nn.Parameter(
        interpolate_pos_embed(visual.positional_embedding.detach(), grid), requires_grad=False)
    resized.image_size, resized.grid_size = tuple(size), grid
    return resized


class GridEncoder:
    """Grid (and optionally pooled) features of normalised image batches of any size.

    Args:
        encoder: an ``ImageEncoder`` from :func:`features.encoders.get_encoder` (pixel family).
        pooled: also compute the pooled vector (see the module docstring).
    """

    def __init__(self, encoder, pooled: bool = False):
        if not encoder.spec.needs_pixels:
            raise ValueError(f"encoder {encoder.spec.name!r} reads annotations, not pixels: "
                             "its grids are written by the corpus builder, not extracted")
        self.encoder, self.spec, self.pooled = encoder, encoder.spec, pooled
        trunk = encoder.trunk
        self.kind = ("imagenet" if encoder.spec.family == "imagenet"
                     else "clip_vit" if hasattr(trunk, "patch_size") else "clip_resnet")
        self._vit_cache: dict = {}
        self._pos_cache: dict = {}

    @property
    def device(self) -> torch.device:
        return self.encoder.device

    def prepare(self, images: list[torch.Tensor], canvas: tuple[int, int]) -> torch.Tensor:
        """Normalise a list of (3, h, w) uint8 images and zero-pad each (after normalisation,
        i.e. with the mean colour) into the top-left of a (B, 3, H, W) ``canvas`` batch."""
        dev = self.device
        if all(tuple(im.shape[1:]) == tuple(canvas) for im in images):  # copy the (pinned) images, then stack
            x = self.encoder.normalize(torch.stack([im.to(dev, non_blocking=True) for im in images]))
        else:
            x = torch.zeros(len(images), 3, *canvas, device=dev)
            for b, im in enumerate(images):
                x[b, :, :im.shape[1], :im.shape[2]] = self.encoder.normalize(im[None].to(dev, non_blocking=True))[0]
        if dev.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor, amp_dtype: torch.dtype | None = None):
        """Encode a normalised (B, 3, H, W) batch.

        Returns:
            grid (B, C, H / stride, W / stride) float32, and pooled (B, D) float32 or None.
        """
        ctx = torch.autocast(x.device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()
        with ctx:
            grid, pooled = getattr(self, f"_{self.kind}")(x)
        if pooled is not None:
            pooled = pooled.float()
            if self.spec.l2_normalize:
                pooled = F.normalize(pooled, dim=-1)
        return grid.float(), pooled

    def _clip_resnet(self, x):
        trunk = self.encoder.trunk
        fmap = trunk.forward_intermediates(x, indices=1, intermediates_only=True)["image_intermediates"][-1]
        if not self.pooled:
            return fmap, None
        pool = trunk.attnpool
        key = tuple(fmap.shape[2:])
        pos = self._pos_cache.get(key)
        if pos is None:
            pos = self._pos_cache[key] = interpolate_pos_embed(pool.positional_embedding.detach(), key)
        pooled = torch.func.functional_call(pool, {"positional_embedding": pos}, (fmap,), strict=False)
        return fmap, pooled

    def _clip_vit(self, x):
        key = tuple(x.shape[2:])
        vit = self._vit_cache.get(key)
        if vit is None:
            vit = self._vit_cache[key] = vit_at_size(self.encoder.trunk, key)
        out = vit.forward_intermediates(x, indices=1, intermediates_only=not self.pooled)
        return out["image_intermediates"][-1], out.get("image_features")

    def _imagenet(self, x):
        fmap = self.encoder.trunk(x)
        return fmap, (fmap.mean(dim=(2, 3)) if self.pooled else None)


def grid_mask(resized: tuple[int, int], canvas: tuple[int, int], grid: tuple[int, int]) -> torch.Tensor:
    """(H, W) bool validity mask of a grid over a padded canvas (True = covers image content)."""
    vh, vw = valid_cells(resized, canvas, grid)
    mask = torch.zeros(grid, dtype=torch.bool)
    mask[:vh, :vw] = True
    return mask
