"""Pre-resized image shards: images decoded and fitted into the canvas once, then read at disk speed.

Decoding and resizing JPEGs is what made the original LXMERT-style epochs input-bound (28 h on 8
GPUs). A shard folder holds every image already at the canvas (e.g. 384 x 640), as fixed-size
uint8 records, so reading image ``i`` is one seek and one copy, any DataLoader worker can read any
record, and nothing but the index is held in memory (9M pairs over ~180k images: the index is a
few MB, the pixels stay on disk)::

    DIR/meta.json        {"format": "clipvil-image-shards", "version": 1, "canvas": [H, W],
                          "records": N, "records_per_shard": R, "record_bytes": 3*H*W,
                          "shards": ["shard_00000.bin", ...]}
    DIR/keys.json        [image key of record 0, ...]          (pretraining.images.image_key)
    DIR/sizes.npy        (N, 2) int32: (h, w) of the image content in each record
    DIR/shard_XXXXX.bin  R records (the last shard fewer), each (3, H, W) uint8 C-order, image in
                         the top-left (h, w), zeros elsewhere: exactly pretraining.images.read_resized

Record ``i`` is at byte ``(i % R) * record_bytes`` of shard ``i // R``. Shard files are opened
lazily in each process (memory maps are not inherited across DataLoader worker forks). The writer
builds the folder beside the target and publishes it with one rename (:func:`vln.io_utils.atomic_dir`).

Public API::

    write_image_shards(items, out, canvas, records_per_shard=1024, workers=0) -> summary dict
    images = ShardImages(out)              # images[key] -> ((3, H, W) uint8, (h, w)); key in images; len
    images.record(i) -> same by record number; images.keys, images.canvas
    ShardDataset(images)[i] -> {"image_id", "image", "size"}   (torch Dataset over the records)
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from vln.errors import DataFormatError
from vln.io_utils import atomic_dir, read_json

from .images import parse_canvas, read_resized

FORMAT = "clipvil-image-shards"
VERSION = 1
RECORDS_PER_SHARD = 1024  #: 1024 records of 384 x 640 = 755 MB per shard file


class _Decode(torch.utils.data.Dataset):
    def __init__(self, items, canvas):
        self.items, self.canvas = items, canvas

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        key, path = self.items[i]
        try:
            pix, size = read_resized(path, self.canvas)
        except DataFormatError as e:  # raised by the writer in the main process (workers' errors lose their type)
            return key, None, e.problem
        except FileNotFoundError:
            return key, None, "does not exist"
        return key, pix, size


def write_image_shards(items, out: str | os.PathLike, canvas=(384, 640), records_per_shard: int = RECORDS_PER_SHARD,
                       workers: int = 0, progress: bool = False) -> dict:
    """Decode, fit and write images as shards (the whole folder appears at once, or not at all).

    Args:
        items: ``(image key, path)`` pairs, e.g. ``sorted(index_images(dir).items())``; order = record order.
        out: the shard folder (replaced whole if it exists).
        canvas: (height, width) or ``"HxW"``.
        records_per_shard: images per shard file.
        workers: DataLoader decoding processes (0: this process).

    Returns:
        dict: ``records``, ``shards``, ``bytes``, ``seconds``, ``images_per_s``, ``path``.

    Raises:
        DataFormatError: an image that cannot be decoded (named), or a repeated key.
    """
    from tqdm.auto import tqdm

    canvas = parse_canvas(canvas)
    items = [(str(k), Path(p)) for k, p in items]
    seen = set()
    for k, p in items:
        if k in seen:
            raise DataFormatError(p, f"image {k}", "key", "is given twice")
        seen.add(k)
    if not items:
        raise ValueError("no images to write")
    record_bytes = 3 * canvas[0] * canvas[1]
    t0 = time.perf_counter()
    loader = torch.utils.data.DataLoader(_Decode(items, canvas), batch_size=None, num_workers=workers)
    sizes = np.zeros((len(items), 2), dtype=np.int32)
    shards: list[str] = []
    out = Path(out)
    with atomic_dir(out) as tmp:
        f = None
        try:
            for i, (key, pix, size) in enumerate(tqdm(loader, total=len(items), disable=not progress, unit="img")):
                if pix is None:
                    raise DataFormatError(items[i][1], f"image {key}", "pixels", size)
                if i % records_per_shard == 0:
                    if f is not None:
                        _close(f)
                    shards.append(f"shard_{len(shards):05d}.bin")
                    f = open(tmp / shards[-1], "wb")
                f.write(pix.numpy().tobytes())
                sizes[i] = size
            _close(f)
            f = None
        finally:
            if f is not None:
                f.close()
        np.save(tmp / "sizes.npy", sizes)
        (tmp / "keys.json").write_text(json.dumps([k for k, _ in items]))
        meta = {"format": FORMAT, "version": VERSION, "canvas": list(canvas), "records": len(items),
                "records_per_shard": int(records_per_shard), "record_bytes": record_bytes, "shards": shards}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))  # last: a folder without it is incomplete
    seconds = time.perf_counter() - t0
    return {"records": len(items), "shards": len(shards), "bytes": len(items) * record_bytes, "seconds": seconds,
            "images_per_s": len(items) / seconds, "path": str(out)}


def _close(f) -> None:
    f.flush()
    os.fsync(f.fileno())
    f.close()


class ShardImages:
    """Read a shard folder: ``images[key] -> ((3, H, W) uint8 tensor, (h, w))``.

    Raises (on opening): FileNotFoundError when there is no shard folder; DataFormatError naming the
    file and field when the metadata, keys, sizes or a shard's length disagree.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        meta_path = self.path / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"no image shards at {self.path} (expected {meta_path.name}); write them with "
                                    "python scripts/make_image_shards.py")
        meta = read_json(meta_path)
        for field in ("format", "version", "canvas", "records", "records_per_shard", "record_bytes", "shards"):
            if not isinstance(meta, dict) or field not in meta:
                raise DataFormatError(meta_path, None, field, "is missing")
        if meta["format"] != FORMAT or meta["version"] != VERSION:
            raise DataFormatError(meta_path, None, "format", f"is {meta['format']!r} v{meta['version']}, "
                                  f"not {FORMAT!r} v{VERSION}")
        self.canvas = parse_canvas(meta["canvas"])
        self.n, self.per_shard = int(meta["records"]), int(meta["records_per_shard"])
        self.record_bytes = int(meta["record_bytes"])
        if self.record_bytes != 3 * self.canvas[0] * self.canvas[1]:
            raise DataFormatError(meta_path, None, "record_bytes", f"{self.record_bytes} is not 3 x {self.canvas}")
        self.shards = [self.path / s for s in meta["shards"]]
        self.keys = read_json(self.path / "keys.json")
        if not isinstance(self.keys, list) or len(self.keys) != self.n:
            raise DataFormatError(self.path / "keys.json", None, None, f"must list {self.n} image keys")
        try:
            self.sizes = np.load(self.path / "sizes.npy")
        except (OSError, ValueError) as e:
            raise DataFormatError(self.path / "sizes.npy", None, None, f"cannot be read ({e})") from None
        if self.sizes.shape != (self.n, 2):
            raise DataFormatError(self.path / "sizes.npy", None, None, f"shape {self.sizes.shape}, expected ({self.n}, 2)")
        bad = np.flatnonzero((self.sizes < 1).any(1) | (self.sizes > np.array(self.canvas)).any(1))
        if len(bad):
            raise DataFormatError(self.path / "sizes.npy", f"record {bad[0]} (image {self.keys[bad[0]]})", "size",
                                  f"{self.sizes[bad[0]].tolist()} does not fit the canvas {self.canvas}")
        for s, shard in enumerate(self.shards):
            expect = min(self.per_shard, self.n - s * self.per_shard) * self.record_bytes
            size = shard.stat().st_size if shard.is_file() else None
            if size != expect:
                raise DataFormatError(shard, None, None, "is missing" if size is None else
                                      f"holds {size:,} bytes, expected {expect:,} (cut off or overwritten)")
        self.where = {k: i for i, k in enumerate(self.keys)}
        if len(self.where) != self.n:
            raise DataFormatError(self.path / "keys.json", None, None, "repeats an image key")
        self._maps: dict[int, np.memmap] = {}
        self._pid = None

    def __len__(self) -> int:
        return self.n

    def __contains__(self, key: str) -> bool:
        return key in self.where

    def _shard(self, s: int) -> np.memmap:
        if self._pid != os.getpid():  # a forked DataLoader worker maps the files itself
            self._maps, self._pid = {}, os.getpid()
        if s not in self._maps:
            self._maps[s] = np.memmap(self.shards[s], dtype=np.uint8, mode="r")
        return self._maps[s]

    def record(self, i: int) -> tuple[torch.Tensor, tuple[int, int]]:
        """Record ``i``: ((3, H, W) uint8 copy, (h, w))."""
        if not 0 <= i < self.n:
            raise IndexError(f"record {i} is outside 0..{self.n - 1} of {self.path}")
        s, slot = divmod(i, self.per_shard)
        off = slot * self.record_bytes
        buf = np.array(self._shard(s)[off:off + self.record_bytes])
        h, w = self.sizes[i]
        return torch.from_numpy(buf).view(3, *self.canvas), (int(h), int(w))

    def __getitem__(self, key: str) -> tuple[torch.Tensor, tuple[int, int]]:
        try:
            i = self.where[key]
        except KeyError:
            raise KeyError(f"image {key!r} is not in the image shards {self.path}") from None
        return self.record(i)

    def __getstate__(self):  # DataLoader workers: no open maps in the pickle
        state = dict(self.__dict__)
        state["_maps"], state["_pid"] = {}, None
        return state


class ShardDataset(torch.utils.data.Dataset):
    """The records of a shard folder as a Dataset: item -> ``image_id``, ``image`` (3, H, W) uint8, ``size`` (2,)."""

    def __init__(self, images: ShardImages):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        pix, size = self.images.record(i)
        return {"image_id": self.images.keys[i], "image": pix, "size": torch.tensor(size, dtype=torch.long)}
