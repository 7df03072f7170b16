"""Image encoders built from :mod:`features.registry` specs (open_clip and torchvision).

Every encoder maps rendered views to a pooled vector per view and, on request, a grid feature
map, without editing any model code: open_clip trunks through ``forward_intermediates``,
torchvision ResNets through their child modules.

Weights (``weights=`` / ``--weights``):

* ``None``: a local file ``$CLIPVIL_WEIGHTS_DIR/<spec.weights_file>`` if that variable is set,
  else the usual open_clip / torchvision download of ``spec.weights_tag``;
* a file path: that checkpoint;
* a tag (``"openai"``): that pretrained tag;
* ``"random"``: random initialisation, only when asked for by name. It is recorded as
  ``random_weights=True`` in every feature file written with it.
"""
from __future__ import annotations

import importlib
import logging
import os
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F

from vln.errors import DependencyNotInstalled

from .registry import WEIGHTS_DIR_ENV, EncoderSpec, get_spec

logger = logging.getLogger(__name__)

RANDOM = "random"


class WeightsUnavailableError(DependencyNotInstalled):
    """Pretrained weights could not be loaded or downloaded; the message says what to pass."""


def weights_advice(spec: EncoderSpec) -> str:
    """How to make weights for ``spec`` available offline (used in error messages)."""
    return (
        f"pass --weights PATH (weights=PATH) pointing to a local copy of {spec.weights_file!r}, "
        f"or set {WEIGHTS_DIR_ENV} to a folder containing {spec.weights_file!r}; "
        f"'--weights random' gives random weights for tests only"
    )


def resolve_weights(spec: EncoderSpec, weights: str | os.PathLike | None) -> tuple[str | None, str]:
    """Decide where weights come from.

    Returns:
        (source, label): ``source`` is what the builder loads (a file path, a tag, or ``None`` for
        random weights); ``label`` is what feature metadata records.
    """
    if weights is not None and str(weights) == RANDOM:
        return None, RANDOM
    if weights is None:
        wdir = os.environ.get(WEIGHTS_DIR_ENV)
        if wdir:
            path = Path(wdir) / spec.weights_file
            if not path.is_file():
                raise WeightsUnavailableError(
                    f"encoder {spec.name!r}: {WEIGHTS_DIR_ENV}={wdir} but {path} does not exist; "
                    f"{weights_advice(spec)}"
                )
            return str(path), str(path)
        return spec.weights_tag, spec.weights_tag
    w = str(weights)
    if os.path.isfile(w):
        return w, os.path.abspath(w)
    if os.sep in w or w.endswith((".pt", ".pth", ".bin", ".safetensors")):
        raise WeightsUnavailableError(f"encoder {spec.name!r}: weights file {w} does not exist; {weights_advice(spec)}")
    return w, w


class ImageEncoder(torch.nn.Module):
    """A frozen visual trunk with CLIP/ImageNet preprocessing and two outputs.

    Attributes:
        spec: the :class:`EncoderSpec` it was built from.
        weights: the weights label (tag, absolute path or ``"random"``).
        random_weights: True when built with ``weights="random"``.
    """

    def __init__(self, spec: EncoderSpec, trunk: torch.nn.Module, weights: str):
        super().__init__()
        self.spec = spec
        self.trunk = trunk.eval().requires_grad_(False)
        self.weights = weights
        self.random_weights = weights == RANDOM
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1) * 255.0, persistent=False)

    @property
    def device(self) -> torch.device:
        return self.mean.device

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) pixels in [0, 255] (any float or uint8 dtype) -> normalised float."""
        return (images.float() - self.mean) / self.std

    def _features(self, x: torch.Tensor, grid: bool):
        raise NotImplementedError

    @torch.inference_mode()
    def forward(self, images: torch.Tensor, grid: bool = False, amp_dtype: torch.dtype | None = None):
        """Encode a batch of rendered views.

        Args:
            images: (B, 3, H, W) RGB pixels in [0, 255], H x W = ``spec.input_size``.
            grid: also return the grid feature map.
            amp_dtype: ``torch.bfloat16`` / ``torch.float16`` to run under autocast (GPU), or None.

        Returns:
            pooled (B, pooled_dim) float32, and with ``grid=True`` also
            (B, grid_dim, H / stride, W / stride) float32.
        """
        x = self.normalize(images)
        if x.is_cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        ctx = torch.autocast(x.device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()
        with ctx:
            pooled, fmap = self._features(x, grid)
        pooled = pooled.float()
        if self.spec.l2_normalize:
            pooled = F.normalize(pooled, dim=-1)
        if grid:
            return pooled, fmap.float()
        return pooled


class OpenClipEncoder(ImageEncoder):
    """CLIP visual tower: attention-pooled projected embedding (ResNets) or projected class
    token (ViT); grid = last ResNet stage before pooling / ViT patch tokens on their grid."""

    def _features(self, x, grid):
        if not grid:
            return self.trunk(x), None
        out = self.trunk.forward_intermediates(x, indices=1)
        return out["image_features"], out["image_intermediates"][-1]


class TorchvisionResNetEncoder(ImageEncoder):
    """torchvision ResNet: pooled = mean of the last feature map, grid = that map."""

    def _features(self, x, grid):
        fmap = self.trunk(x)
        return fmap.mean(dim=(2, 3)), (fmap if grid else None)


def build_open_clip(spec: EncoderSpec, weights, cache_dir=None) -> ImageEncoder:
    """Build an open_clip visual tower (text tower dropped) for ``spec``.

    ``spec.options`` are passed to ``open_clip.create_model`` (e.g. ``force_image_size`` for a
    small test encoder).
    """
    import open_clip

    source, label = resolve_weights(spec, weights)
    try:
        model = open_clip.create_model(spec.architecture, pretrained=source, cache_dir=cache_dir, **spec.options)
    except Exception as e:  # open_clip wraps network failures in RuntimeError
        raise WeightsUnavailableError(
            f"encoder {spec.name!r}: could not load weights {source!r} for {spec.architecture} ({e}); "
            f"{weights_advice(spec)}"
        ) from e
    return OpenClipEncoder(spec, model.visual, label)


def build_torchvision_resnet(spec: EncoderSpec, weights, cache_dir=None) -> ImageEncoder:
    """Build a torchvision ResNet trunk (up to ``layer4``) for ``spec``."""
    import torchvision

    source, label = resolve_weights(spec, weights)
    ctor = getattr(torchvision.models, spec.architecture)
    if source is None or os.path.isfile(str(source)):
        net = ctor(weights=None)
        if source is not None:
            state = torch.load(source, map_location="cpu", weights_only=True)
            net.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
    else:
        try:
            tv_weights = torchvision.models.get_model_weights(spec.architecture)[source]
        except KeyError as e:
            raise WeightsUnavailableError(f"encoder {spec.name!r}: unknown torchvision weights {source!r}; "
                                          f"{weights_advice(spec)}") from e
        old_hub = torch.hub.get_dir()
        if cache_dir is not None:
            torch.hub.set_dir(str(cache_dir))
        try:
            net = ctor(weights=tv_weights)
        except Exception as e:
            raise WeightsUnavailableError(
                f"encoder {spec.name!r}: could not download torchvision weights {source!r} ({e}); "
                f"{weights_advice(spec)}"
            ) from e
        finally:
            torch.hub.set_dir(old_hub)
    trunk = torch.nn.Sequential(*list(net.children())[:-2])  # drop avgpool + fc
    return TorchvisionResNetEncoder(spec, trunk, label)


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def get_encoder(name: str, weights: str | os.PathLike | None = None, device=None, cache_dir=None):
    """Build the encoder registered as ``name``.

    Args:
        name: an :data:`features.registry.ENCODERS` name.
        weights: ``None`` (default source), a checkpoint path, a tag, or ``"random"``.
        device: torch device (default: CUDA if available). Annotation encoders ignore it.
        cache_dir: download cache for pretrained weights.

    Raises:
        NameNotFound: unknown name (lists the known ones).
        WeightsUnavailableError: weights cannot be had; says to pass ``--weights PATH`` or set
            ``$CLIPVIL_WEIGHTS_DIR``.
    """
    spec = get_spec(name)
    module, func = spec.builder.split(":")
    builder = getattr(importlib.import_module(module), func)
    enc = builder(spec, weights, cache_dir=cache_dir)
    if isinstance(enc, torch.nn.Module):
        enc = enc.to(default_device() if device is None else torch.device(device))
        if enc.device.type == "cuda":
            enc = enc.to(memory_format=torch.channels_last)
    logger.info("built encoder %s (weights %s)", name, enc.weights)
    return enc
