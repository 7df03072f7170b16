"""Input sizes of the grid features of CLIP-ViL's sibling tasks (``shared/reference/siblings.md``).

A :class:`GridPreset` says how an image of H x W pixels is resized (and padded) before the
encoder sees it; the grid has one cell per ``stride`` pixels of the network input:

=========  =================================================  ==========================  ========
preset     input                                              grid (stride 32)            pooled
=========  =================================================  ==========================  ========
vqa        short side 600, long side <= 1000, aspect kept     18 x 25 for a 4:3 image     no
vqa fixed  600 x 1000 whatever the image (the released code)  18 x 31 = 558 cells         no
caption    448 x 448, bicubic, aspect not kept                14 x 14                     yes
pretrain   short side 384, long side <= 640, zero-padded      12 x 20 (+ validity mask)   no
           to 384 x 640 (640 x 384 for a portrait image)
=========  =================================================  ==========================  ========

``vqa`` keeps each image at its own size (the paper; no padding, so no mask is stored: a
training batch is padded by :func:`features.image_store.pad_grids`, which returns the mask);
``--resize fixed`` gives the released code's 600 x 1000. Padding is zeros after normalisation
(the mean colour), as a padded image batch of the original pre-training code. Custom presets:
:func:`make_preset`. Pure Python (no torch), so the CLI can list presets cheaply.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from vln.registry import Registry

RESIZE_MODES = ("keep-aspect", "fixed")


@dataclass(frozen=True)
class GridPreset:
    """How images are sized for grid extraction.

    Attributes:
        name: ``vqa``, ``caption``, ``pretrain`` or ``custom``.
        resize: ``"keep-aspect"`` (scale by ``short_side`` / ``max_long_side``) or ``"fixed"``
            (stretch to ``size``).
        size: (height, width) in pixels for ``fixed``.
        short_side: target shorter side in pixels for ``keep-aspect``.
        max_long_side: cap on the longer side (pixels) for ``keep-aspect``, or None.
        pad_to: (height, width) canvas for a landscape image, zero-padded bottom / right (a
            portrait image gets the transposed canvas); None: no padding.
        pooled: also store one pooled vector per image.
        interpolation: PIL resampling filter name (``"bicubic"``, as CLIP's preprocessing).
    """

    name: str
    resize: str
    size: tuple | None = None
    short_side: int | None = None
    max_long_side: int | None = None
    pad_to: tuple | None = None
    pooled: bool = False
    interpolation: str = "bicubic"

    def __post_init__(self):
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"preset {self.name!r}: resize must be one of {RESIZE_MODES}, got {self.resize!r}")
        if self.resize == "fixed" and not self.size:
            raise ValueError(f"preset {self.name!r}: resize 'fixed' needs size=(H, W)")
        if self.resize == "keep-aspect" and not self.short_side:
            raise ValueError(f"preset {self.name!r}: resize 'keep-aspect' needs short_side")

    def resized(self, h: int, w: int) -> tuple[int, int]:
        """(height, width) in pixels an ``h`` x ``w`` image is resized to."""
        if self.resize == "fixed":
            return tuple(self.size)
        scale = self.short_side / min(h, w)
        if self.max_long_side is not None:
            scale = min(scale, self.max_long_side / max(h, w))
        return max(1, round(h * scale)), max(1, round(w * scale))

    def canvas(self, h: int, w: int) -> tuple[int, int]:
        """(height, width) of the network input for an ``h`` x ``w`` image (after padding)."""
        rh, rw = self.resized(h, w)
        if self.pad_to is None:
            return rh, rw
        ph, pw = self.pad_to
        if h > w:  # portrait: the canvas turns with the image
            ph, pw = pw, ph
        if rh > ph or rw > pw:
            raise ValueError(f"preset {self.name!r}: a {h} x {w} image resized to {rh} x {rw} "
                             f"does not fit the {ph} x {pw} canvas")
        return ph, pw

    @property
    def has_mask(self) -> bool:
        """Whether grids carry a validity mask (only padded presets have padding cells)."""
        return self.pad_to is not None

    def to_dict(self) -> dict:
        """JSON-ready record (stored as ``meta["preset"]`` of every grid store)."""
        d = asdict(self)
        for k in ("size", "pad_to"):
            if d[k] is not None:
                d[k] = list(d[k])
        return d


def valid_cells(resized: tuple[int, int], canvas: tuple[int, int], grid: tuple[int, int]) -> tuple[int, int]:
    """Rows and columns of a ``grid`` (cells) over a ``canvas`` (pixels) that cover the image
    content in its top-left ``resized`` (pixels) corner: a cell counts if it starts inside it."""
    return (min(grid[0], math.ceil(resized[0] * grid[0] / canvas[0])),
            min(grid[1], math.ceil(resized[1] * grid[1] / canvas[1])))


PRESETS: Registry[GridPreset] = Registry("grid preset")
PRESETS.register("vqa", GridPreset("vqa", "keep-aspect", short_side=600, max_long_side=1000))
PRESETS.register("caption", GridPreset("caption", "fixed", size=(448, 448), pooled=True))
PRESETS.register("pretrain", GridPreset("pretrain", "keep-aspect", short_side=384, max_long_side=640,
                                        pad_to=(384, 640)))
#: What ``--resize fixed`` turns a keep-aspect preset into (the released VQA code's 600 x 1000).
FIXED_SIZES = {"vqa": (600, 1000), "pretrain": (384, 640)}


def make_preset(name: str = "custom", *, resize: str | None = None, size=None, short_side=None,
                max_long_side=None, pad_to=None, pooled: bool | None = None) -> GridPreset:
    """A registered preset, optionally changed, or a custom one.

    Args:
        name: a :data:`PRESETS` name or ``"custom"``.
        resize: ``"fixed"`` turns ``vqa`` into 600 x 1000 (``pretrain`` into 384 x 640).
        size: (H, W) for a fixed custom size; short_side / max_long_side / pad_to for a
            keep-aspect custom one.
        pooled: override whether a pooled vector is stored.
    """
    if name == "custom":
        if size is not None:
            p = GridPreset("custom", "fixed", size=tuple(size))
        elif short_side is not None:
            p = GridPreset("custom", "keep-aspect", short_side=short_side, max_long_side=max_long_side,
                           pad_to=tuple(pad_to) if pad_to else None)
        else:
            raise ValueError("a custom preset needs --size HxW or --short-side S")
    else:
        p = PRESETS.get(name)
        if size is not None or short_side is not None:
            raise ValueError(f"--size / --short-side make a custom preset; use --preset custom, not {name!r}")
        if resize == "fixed" and p.resize != "fixed":
            p = replace(p, resize="fixed", size=FIXED_SIZES[name], pad_to=None)
    if pooled is not None:
        p = replace(p, pooled=pooled)
    return p


def parse_size(text: str) -> tuple[int, int]:
    """``"600x1000"`` -> (600, 1000) (height x width, pixels)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size {text!r} must be HEIGHTxWIDTH, e.g. 600x1000") from None
    if h < 1 or w < 1:
        raise ValueError(f"size {text!r} must be positive")
    return h, w
