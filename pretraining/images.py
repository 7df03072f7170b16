"""Images of the pre-training and fine-tuning pairs: find them, resize them into a fixed canvas, normalise.

CLIP-ViLp feeds the CLIP backbone images with short side 384 and long side <= 640, zero-padded to
384 x 640 (``shared/reference/siblings.md``). Every image here is resized (bicubic, aspect kept)
to the largest size that fits the canvas and put in its top-left corner; the rest is padding.
For a landscape image that is exactly the ``pretrain`` grid preset; a portrait image is fitted
into the same landscape canvas (the preset would turn the canvas), so every batch stacks.

Public API::

    index = index_images("coco/")                 # image key -> path, every image file under the folder
    pix, size = read_resized(path, (384, 640))    # (3, 384, 640) uint8, zeros outside the image; size = (h, w)
    x = normalize(pix, size, "clip_r50")          # float32, the encoder's mean / std, padding exactly 0
    x, size = load_image(path, (384, 640), "clip_r50")   # both at once
    FolderImages(index, canvas)[key] -> (pix, size)      # the image source a PairDataset reads

Image keys are :func:`vqa.data.image_key` of the file stem: ``COCO_val2014_000000000042.jpg`` ->
``"42"``, ``2354786.jpg`` -> ``"2354786"``; LXMERT ``img_id``, VQA ``image_id``, GQA ``imageId``
and SNLI-VE ``Flikr30kID`` all map to it. Padding is 0 after normalisation (the mean colour), as
the batch padding of the original pre-training code; ``size`` lets a model mask padded cells
(:func:`features.grid.grid_mask`).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from vln.errors import DataFormatError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: The paper's pre-training input: 384 x 640 (height, width) pixels.
PRETRAIN_CANVAS = (384, 640)


def image_key(name) -> str:
    """Key of an image id or file name (``COCO_<split>_<12 digits>`` -> the number as text)."""
    from vqa.data import image_key as _key

    return _key(Path(str(name)).stem if str(name).lower().endswith(IMAGE_SUFFIXES) else name)


def index_images(folder: str | os.PathLike) -> dict[str, Path]:
    """Image key -> path of every image file under ``folder`` (recursively).

    Raises:
        FileNotFoundError: no such folder.
        DataFormatError: two files with one key, or no image at all.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    out: dict[str, Path] = {}
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
            key = image_key(p.name)
            if key in out:
                raise DataFormatError(p, f"image {key}", "file name", f"has the same image key as {out[key]}")
            out[key] = p
    if not out:
        raise DataFormatError(root, None, None, f"holds no image file ({', '.join(IMAGE_SUFFIXES)})")
    return out


def fit_size(h: int, w: int, canvas: tuple[int, int]) -> tuple[int, int]:
    """(height, width) of an ``h`` x ``w`` image scaled, aspect kept, to the largest size inside ``canvas``."""
    scale = min(canvas[0] / h, canvas[1] / w)
    return max(1, min(canvas[0], round(h * scale))), max(1, min(canvas[1], round(w * scale)))


def parse_canvas(value) -> tuple[int, int]:
    """``"384x640"`` or a (H, W) pair -> (height, width)."""
    from features.grid_presets import parse_size

    h, w = value if isinstance(value, (tuple, list)) else parse_size(str(value))
    if h < 8 or w < 8:
        raise ValueError(f"image size {h}x{w} is too small (at least 8x8)")
    return int(h), int(w)


def read_resized(path: str | os.PathLike, canvas: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    """Decode an image file, resize it (bicubic) into ``canvas`` and pad with zeros.

    Returns:
        (pixels, size): (3, H, W) uint8 RGB with the image in the top-left ``size`` = (h, w) pixels.

    Raises:
        FileNotFoundError: no such file. DataFormatError: the file is not a decodable image.
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            rh, rw = fit_size(h, w, canvas)
            if (rh, rw) != (h, w):
                im = im.resize((rw, rh), Image.Resampling.BICUBIC)
            arr = np.asarray(im)
    except FileNotFoundError:
        raise FileNotFoundError(f"image {path} does not exist") from None
    except (OSError, ValueError) as e:
        raise DataFormatError(path, None, "pixels", f"cannot be decoded as an image ({e})") from None
    out = torch.zeros(3, canvas[0], canvas[1], dtype=torch.uint8)
    out[:, :rh, :rw] = torch.from_numpy(arr.copy()).permute(2, 0, 1)
    return out, (rh, rw)


def _mean_std(encoder) -> tuple[tuple, tuple]:
    if isinstance(encoder, (tuple, list)):
        return tuple(encoder[0]), tuple(encoder[1])
    from features.registry import get_spec

    spec = get_spec(encoder) if isinstance(encoder, str) else encoder
    return spec.mean, spec.std


def normalize(pixels: torch.Tensor, sizes, encoder="clip_r50") -> torch.Tensor:
    """Normalise uint8 images with an encoder's mean / std; padding becomes exactly 0.

    Args:
        pixels: (3, H, W) or (B, 3, H, W) uint8 (or float in [0, 255]), on any device.
        sizes: (h, w) of the image content, or a (B, 2) tensor / list of them.
        encoder: registry name, an :class:`features.registry.EncoderSpec`, or ``(mean, std)``.

    Returns:
        float32 tensor of the input's shape.
    """
    mean, std = _mean_std(encoder)
    single = pixels.dim() == 3
    x = pixels[None] if single else pixels
    sizes = torch.as_tensor(sizes).reshape(-1, 2)
    m = torch.tensor(mean, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    x = (x.float() / 255.0 - m) / s
    rows = torch.arange(x.shape[2], device=x.device)
    cols = torch.arange(x.shape[3], device=x.device)
    sizes = sizes.to(x.device)
    inside = (rows[None, :, None] < sizes[:, 0, None, None]) & (cols[None, None, :] < sizes[:, 1, None, None])
    x = x * inside[:, None].to(x.dtype)
    return x[0] if single else x


def load_image(path: str | os.PathLike, canvas: tuple[int, int] = PRETRAIN_CANVAS,
               encoder="clip_r50") -> tuple[torch.Tensor, tuple[int, int]]:
    """(3, H, W) float32 input of an encoder for one image file, and the image's (h, w) in the canvas."""
    pix, size = read_resized(path, canvas)
    return normalize(pix, size, encoder), size


class FolderImages:
    """Images decoded from files on demand: ``images[key] -> ((3, H, W) uint8, (h, w))``.

    Args:
        index: image key -> path (:func:`index_images`).
        canvas: (height, width) every image is fitted into.
    """

    def __init__(self, index: dict[str, Path], canvas: tuple[int, int] = PRETRAIN_CANVAS):
        self.index, self.canvas = dict(index), parse_canvas(canvas)

    def __contains__(self, key: str) -> bool:
        return key in self.index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key: str) -> tuple[torch.Tensor, tuple[int, int]]:
        try:
            path = self.index[key]
        except KeyError:
            raise KeyError(f"image {key!r} is not in the image folder") from None
        return read_resized(path, self.canvas)
