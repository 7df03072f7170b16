"""The trainable CLIP ResNet trunk of CLIP-ViLp: images in, grid cells out.

Built from the encoder registry (``features.registry``) through the same weight loading as feature
extraction (``features.encoders.get_encoder``: OpenAI ``.pt`` archives, open_clip / Hugging Face
files, ``$CLIPVIL_WEIGHTS_DIR``), then unfrozen: in CLIP-ViLp the backbone is part of the model.
The attention pool is dropped (the grid is the last stage before it, ``forward_intermediates(...,
indices=1, intermediates_only=True)``), so any input size works and no parameter goes unused under
DistributedDataParallel.

BatchNorm policy (``bn_policy``):

* ``frozen``: running statistics and affine parameters fixed (eval-mode BatchNorm, no gradient), the
  usual choice for small per-device batches (detectron2's FrozenBatchNorm);
* ``train``: statistics of each device's batch, running statistics updated, affine parameters trained;
* ``sync``: as ``train`` with statistics over all devices (torch's ``SyncBatchNorm``, GPUs only),
  applied by :func:`pretraining.optim.apply_bn_policy` once the process group exists.
"""
from __future__ import annotations

import torch

from vln.errors import VLNError

from .images import normalize

BN_POLICIES = ("frozen", "train", "sync")


class BackboneError(VLNError, ValueError):
    """An encoder that cannot serve as the CLIP-ViLp backbone (one-line message)."""


class GridBackbone(torch.nn.Module):
    """A CLIP ResNet trunk up to its last stage (stride 32), trainable.

    Attributes:
        spec: the registry's :class:`features.registry.EncoderSpec`.
        grid_dim: channels per cell (RN50 2048, RN50x4 2560).
        stride: input pixels per cell (32).
        weights: the weights label (tag, file name or ``"random"``); ``random_weights``: True for random.
    """

    def __init__(self, encoder):
        super().__init__()
        spec = encoder.spec
        trunk = encoder.trunk
        trunk.attnpool = torch.nn.Identity()  # never run on the grid path: no unused parameters under DDP
        self.trunk = trunk.requires_grad_(True).train()
        self.spec = spec
        self.grid_dim = int(spec.grid_dim)
        self.stride = int(spec.grid_stride)
        self.weights, self.weights_sha256 = encoder.weights, encoder.weights_sha256
        self.random_weights = encoder.random_weights
        self.bn_policy = "train"

    def set_bn_policy(self, policy: str) -> None:
        """``frozen`` / ``train`` (``sync`` is ``train`` here; the conversion happens in the trainer)."""
        if policy not in BN_POLICIES:
            raise BackboneError(f"unknown BatchNorm policy {policy!r} (choose from {', '.join(BN_POLICIES)})")
        self.bn_policy = policy
        for m in self.batch_norms():
            m.requires_grad_(policy != "frozen")
        self.train(self.training)

    def batch_norms(self):
        return [m for m in self.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]

    def train(self, mode: bool = True):
        super().train(mode)
        if self.bn_policy == "frozen":
            for m in self.batch_norms():
                m.eval()
        return self

    def grid_shape(self, height: int, width: int) -> tuple[int, int]:
        """Cells (rows, columns) of an input of ``height`` x ``width`` pixels."""
        return height // self.stride, width // self.stride

    def forward(self, images: torch.Tensor, sizes: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 3, H, W) RGB pixels in [0, 255] (uint8 or float), optional (B, 2) content sizes ->
        (B, grid_dim, H / 32, W / 32) cells."""
        if sizes is None:
            sizes = torch.tensor(images.shape[-2:]).expand(images.shape[0], 2)
        # the encoder's mean / std, padding outside each image's content exactly 0 (the mean colour)
        x = normalize(images, sizes, (self.spec.mean, self.spec.std))
        if x.is_cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.trunk.forward_intermediates(x, indices=1, intermediates_only=True)["image_intermediates"][-1]


def cell_validity(sizes: torch.Tensor, canvas: tuple[int, int], grid: tuple[int, int]) -> torch.Tensor:
    """(B, 2) content sizes (h, w) in a ``canvas`` (H, W) -> (B, h, w) bool cells covering content
    (``features.grid_presets.valid_cells``: a cell counts if it starts inside the content)."""
    from features.grid_presets import valid_cells

    out = torch.zeros(sizes.shape[0], *grid, dtype=torch.bool, device=sizes.device)
    for i, (h, w) in enumerate(sizes.tolist()):
        vh, vw = valid_cells((h, w), tuple(canvas), tuple(grid))
        out[i, :vh, :vw] = True
    return out


def build_backbone(encoder: str, weights=None, cache_dir=None) -> GridBackbone:
    """The trainable trunk of the registered CLIP ResNet ``encoder`` (a name or a spec ``.json``).

    Args:
        weights: None (the default places, see ``features.weights``), a file or folder, a tag, or
            ``"random"`` (random initialisation: only when asked for by name).

    Raises:
        BackboneError: not a CLIP ResNet (ViTs and annotation encoders have no trainable conv trunk here).
        WeightsUnavailableError: weights cannot be had (the message says what to pass).
    """
    from features.encoders import get_encoder
    from features.registry import get_spec

    spec = get_spec(encoder)
    if spec.family != "clip" or not spec.architecture.startswith("RN") or not spec.grid_dim:
        raise BackboneError(f"encoder {spec.name!r} ({spec.architecture}) is not a CLIP ResNet; CLIP-ViLp trains a CLIP "
                            "ResNet trunk (clip_r50, clip_r101, clip_r50x4, or a spec .json of one)")
    return GridBackbone(get_encoder(encoder, weights, device="cpu", cache_dir=cache_dir))
