"""Image encoders built from :mod:`features.registry` specs (open_clip and torchvision).

Every encoder maps rendered views to a pooled vector per view and, on request, a grid feature
map, without editing any model code: open_clip trunks through ``forward_intermediates``,
torchvision ResNets through their child modules.

Weights (``weights=`` / ``--weights``): see :mod:`features.weights` for the files accepted and
where they are looked for. ``"random"`` gives random initialisation, only when asked for by name;
it is recorded as ``"random": true`` in the provenance of every feature file written with it.
"""
from __future__ import annotations

import importlib
import logging
import os
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

import torch
import torch.nn.functional as F

from .registry import EncoderSpec, get_spec
from .weights import (
    RANDOM,
    CacheSources,
    WeightsSource,
    WeightsUnavailableError,
    load_into,
    locate_weights,
    read_state_dict,
    weights_advice,
)

logger = logging.getLogger(__name__)

__all__ = ["get_encoder", "get_clip_model", "load_open_clip", "build_open_clip", "build_torchvision_resnet", "ImageEncoder", "WeightsUnavailableError",
           "weights_advice", "RANDOM"]


class ImageEncoder(torch.nn.Module):
    """A frozen visual trunk with CLIP/ImageNet preprocessing and two outputs.

    Attributes:
        spec: the :class:`EncoderSpec` it was built from.
        weights: the weights label (tag, file name or ``"random"``).
        weights_path: the file the weights were read from (None: random).
        weights_sha256: that file's SHA-256 (None: random).
        random_weights: True when built with ``weights="random"``.
    """

    def __init__(self, spec: EncoderSpec, trunk: torch.nn.Module, source: WeightsSource):
        super().__init__()
        self.spec = spec
        self.trunk = trunk.eval().requires_grad_(False)
        self.weights = source.label
        self.weights_path = None if source.path is None else str(source.path)
        self.weights_sha256 = source.sha256
        self.random_weights = source.random
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


@contextmanager
def root_log_filter(keep: Callable[[logging.LogRecord], bool]):
    """Drop the records of the root logger (where open_clip logs) for which ``keep`` is False."""
    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def quiet_random_init():
    """Hide open_clip's "initialized randomly" warning: weights are loaded right after."""
    return root_log_filter(lambda record: not str(record.msg).startswith("No pretrained weights loaded"))


def open_clip_sources(spec: EncoderSpec, cache_dir=None) -> Callable[[str], CacheSources]:
    """``tag -> CacheSources`` of open_clip's pretrained table for ``spec.architecture``."""
    import open_clip
    from open_clip import pretrained as P

    def sources(tag: str) -> CacheSources:
        cfg = P.get_pretrained_cfg(spec.architecture, tag)
        if not cfg:
            raise WeightsUnavailableError(
                f"encoder {spec.name!r}: {spec.architecture} has no pretrained weights {tag!r} (open_clip knows "
                f"{open_clip.list_pretrained_tags_by_model(spec.architecture)}); {weights_advice(spec)}")
        hf_files, host = (), None
        if cfg.get("hf_hub") and P.has_hf_hub():
            from huggingface_hub import constants

            repo, filename = os.path.split(cfg["hf_hub"])  # "org/name/" -> ("org/name", ""), as open_clip reads it
            names = (filename,) if filename else (P.HF_SAFE_WEIGHTS_NAME, P.HF_WEIGHTS_NAME)
            hf_files = tuple((repo, n) for n in names)
            host = urlparse(constants.ENDPOINT).hostname
        url_dir = Path(cache_dir) if cache_dir else Path.home() / ".cache" / "clip"
        cached = (url_dir / os.path.basename(cfg["url"]),) if cfg.get("url") else ()
        host = host or (urlparse(cfg["url"]).hostname if cfg.get("url") else None)
        return CacheSources(hf_files=hf_files, hf_cache=cache_dir, cached=cached,
                            cache_dirs=(cache_dir or _hf_cache_dir(), url_dir), host=host,
                            fetch=lambda: P.download_pretrained(cfg, cache_dir=cache_dir), known=known)

    # OpenAI's release URLs hold each file's SHA-256: .../clip/models/<sha256>/RN50x4.pt
    known = {}
    for tag in open_clip.list_pretrained_tags_by_model(spec.architecture):
        url = P.get_pretrained_cfg(spec.architecture, tag).get("url", "")
        if "openaipublic" in url:
            known[url.split("/")[-2]] = tag

    return sources


def _hf_cache_dir() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def load_open_clip(spec: EncoderSpec, weights, cache_dir=None):
    """The whole open_clip ``CLIP`` of ``spec`` (image and text towers, logit scale) with its
    weights loaded, and where they came from: ``(model, WeightsSource)``. The one place CLIP
    weights are read: :func:`build_open_clip` keeps its image tower, :func:`get_clip_model` all of it.

    ``spec.options`` are passed to ``open_clip.create_model``: ``force_image_size``, or a whole
    custom architecture (``embed_dim``, ``vision_cfg``, ``text_cfg`` override the named config),
    so a small random CLIP for tests is a spec, not a code path.
    """
    import open_clip

    source = locate_weights(spec, weights, open_clip_sources(spec, cache_dir))
    state = None if source.path is None else read_state_dict(source.path)  # a bad file fails before the build
    with quiet_random_init():
        model = open_clip.create_model(spec.architecture, pretrained=None, **spec.options)
    if state is not None:
        load_into(model, state, source.path, spec)
    return model.eval().requires_grad_(False), source


def build_open_clip(spec: EncoderSpec, weights, cache_dir=None) -> ImageEncoder:
    """Build an open_clip visual tower (text tower dropped) for ``spec`` and load its weights
    (:func:`load_open_clip`)."""
    model, source = load_open_clip(spec, weights, cache_dir)
    return OpenClipEncoder(spec, model.visual, source)


def torchvision_sources(spec: EncoderSpec, cache_dir=None) -> Callable[[str], CacheSources]:
    """``tag -> CacheSources`` of a torchvision weights enum (files cached under torch hub)."""
    import torchvision

    ckpt_dir = Path(cache_dir or torch.hub.get_dir()) / "checkpoints"

    def sources(tag: str) -> CacheSources:
        try:
            url = torchvision.models.get_model_weights(spec.architecture)[tag].url
        except KeyError:
            raise WeightsUnavailableError(f"encoder {spec.name!r}: unknown torchvision weights {tag!r}; "
                                          f"{weights_advice(spec)}") from None
        dst = ckpt_dir / os.path.basename(url)

        def fetch():
            dst.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(url, str(dst))
            return dst

        return CacheSources(cached=(dst,), cache_dirs=(ckpt_dir,), host=urlparse(url).hostname, fetch=fetch,
                            known=known)

    # torchvision's file names end in the first 8 hex digits of their SHA-256: resnet152-394f9c45.pth
    known = {}
    for w in torchvision.models.get_model_weights(spec.architecture):
        stem = os.path.splitext(os.path.basename(w.url))[0]
        if "-" in stem:
            known[stem.rsplit("-", 1)[1]] = w.name
    return sources


def build_torchvision_resnet(spec: EncoderSpec, weights, cache_dir=None) -> ImageEncoder:
    """Build a torchvision ResNet trunk (up to ``layer4``) for ``spec`` and load its weights."""
    import torchvision

    source = locate_weights(spec, weights, torchvision_sources(spec, cache_dir))
    state = None if source.path is None else read_state_dict(source.path)
    net = getattr(torchvision.models, spec.architecture)(weights=None)
    if state is not None:
        load_into(net, state, source.path, spec)
    trunk = torch.nn.Sequential(*list(net.children())[:-2])  # drop avgpool + fc
    return TorchvisionResNetEncoder(spec, trunk, source)


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


def get_clip_model(name: str, weights: str | os.PathLike | None = None, device=None, cache_dir=None):
    """The whole CLIP (image and text towers, logit scale) of the CLIP encoder registered as ``name``,
    as a :class:`features.clip_text.ClipModel`; weights exactly as :func:`get_encoder` finds them.

    Raises:
        NameNotFound: unknown name. TextTowerError: ``name`` is not an open_clip CLIP (an ImageNet or
            annotation encoder). WeightsUnavailableError: as :func:`get_encoder`.
    """
    from .clip_text import ClipModel, TextTowerError

    spec = get_spec(name)
    if spec.builder != "features.encoders:build_open_clip":
        raise TextTowerError(f"encoder {spec.name!r} ({spec.family}, {spec.architecture}) has no text tower; "
                             f"use a CLIP encoder ({', '.join(n for n in _clip_names())})")
    model, source = load_open_clip(spec, weights, cache_dir)
    clip = ClipModel(spec, model, source).to(default_device() if device is None else torch.device(device))
    logger.info("built CLIP %s with its text tower (weights %s)", name, clip.image.weights)
    return clip


def _clip_names() -> list[str]:
    from .registry import ENCODERS

    return [n for n in ENCODERS.names() if ENCODERS.get(n).builder == "features.encoders:build_open_clip"]
