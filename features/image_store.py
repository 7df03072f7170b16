"""Image grid-feature store: fp16 / fp32 grids of whole images in memory-mapped shards.

One store holds the grid features of a set of images (a COCO split, the synthetic corpus) made
by one encoder with one preset. It is built for stores larger than memory (COCO trainval at
RN50x4, 558 cells x 2560 channels, is about 350 GB in fp16): records live in shard files that
are only ever memory-mapped, reading one image copies only that image, and
:meth:`ImageGridStore.iter_records` streams a whole split shard by shard, in file order.

Layout of a store directory ``<name>.grids/``::

    meta.json      {"format": "clipvil-image-grids", "version": 1, "encoder": {encoder record},
                    "preset": {...}, "dtype": "float16", "channels": C, "pooled_dim": D or null,
                    "has_mask": bool, ...}
    index.json     {"shards": ["shards/r00000-00000.bin", ...],
                    "images": [[image_id, shard, offset, H, W], ...]}   (storage order)
    shards/*.bin   records back to back, each starting at a multiple of 64 bytes

One record (all little-endian, C order)::

    grid    H x W x C  in the store dtype (channels last, as grid-feats-vqa's 1 x H x W x C)
    pooled  D          in the store dtype            (only when pooled_dim is not null)
    mask    H x W      uint8, 1 = cell covers image   (only when has_mask)

Image ids are strings (an int id such as COCO's ``cocoid`` is looked up as ``str(id)``).

The encoder record is the dict ``{"name", "architecture", "weights", "weights_sha256",
"random"}`` (:func:`features.provenance.record_of_encoder`); a reader opened with ``encoder=NAME`` refuses
a store made by another encoder. Every read checks the record (shape against the shard, finite
values) and errors name the file, the image and the field (:class:`vln.errors.DataFormatError`).

Writers: :class:`features.image_store_writer.ImageGridWriter` (resumable, atomic, one shard set
per ``torchrun`` rank, merged by the last rank to finish) and
:func:`features.image_store_writer.write_image_store` for an iterable of records.
"""
from __future__ import annotations

import json
import logging
import mmap
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

import numpy as np

from vln.errors import DataFormatError

logger = logging.getLogger(__name__)

FORMAT = "clipvil-image-grids"
VERSION = 1
ALIGN = 64
DTYPES = ("float16", "float32")


class GridEntry(NamedTuple):
    """Where one image's record lives: shard number, byte offset, grid height and width (cells)."""

    shard: int
    offset: int
    h: int
    w: int


@dataclass
class GridRecord:
    """One image's features.

    Attributes:
        grid: (H, W, C) float array (channels last).
        pooled: (D,) float array, or None when the store has no pooled vectors.
        mask: (H, W) bool, True where the cell covers image content (not padding), or None.
    """

    grid: np.ndarray
    pooled: np.ndarray | None = None
    mask: np.ndarray | None = None


def record_layout(h: int, w: int, channels: int, pooled_dim: int | None, has_mask: bool, dtype) -> dict:
    """Byte sizes of one record's parts: ``grid``, ``pooled``, ``mask`` and the aligned ``total``."""
    item = np.dtype(dtype).itemsize
    grid = h * w * channels * item
    pooled = (pooled_dim or 0) * item
    mask = h * w if has_mask else 0
    raw = grid + pooled + mask
    return {"grid": grid, "pooled": pooled, "mask": mask, "total": -(-raw // ALIGN) * ALIGN}


def all_finite(arr: np.ndarray) -> bool:
    """True when ``arr`` holds no NaN / infinity (float16 is tested on its exponent bits, which is
    several times faster than NumPy's float16 ``isfinite``)."""
    if arr.dtype == np.float16:
        return arr.size == 0 or int((arr.view(np.uint16) & 0x7C00).max()) != 0x7C00
    return bool(np.isfinite(arr).all())


def check_record(rec: GridRecord, path, image_id, channels: int, pooled_dim: int | None, has_mask: bool) -> GridRecord:
    """Validate one record (shapes, finite values, mask presence); DataFormatError names the field."""
    g = rec.grid
    if g.ndim != 3 or g.shape[2] != channels or g.shape[0] < 1 or g.shape[1] < 1:
        raise DataFormatError(path, f"image {image_id}", "grid", f"must have shape (H, W, {channels}), got {g.shape}")
    if not all_finite(g):
        raise DataFormatError(path, f"image {image_id}", "grid", "holds NaN or infinite values")
    if pooled_dim:
        if rec.pooled is None:
            raise DataFormatError(path, f"image {image_id}", "pooled", f"is missing (the store has pooled_dim {pooled_dim})")
        if rec.pooled.shape != (pooled_dim,):
            raise DataFormatError(path, f"image {image_id}", "pooled", f"must have shape ({pooled_dim},), got {rec.pooled.shape}")
        if not all_finite(rec.pooled):
            raise DataFormatError(path, f"image {image_id}", "pooled", "holds NaN or infinite values")
    elif rec.pooled is not None:
        raise DataFormatError(path, f"image {image_id}", "pooled", "given but the store holds no pooled vectors")
    if has_mask:
        if rec.mask is None or rec.mask.shape != g.shape[:2]:
            got = None if rec.mask is None else rec.mask.shape
            raise DataFormatError(path, f"image {image_id}", "mask", f"must have shape {g.shape[:2]}, got {got}")
    elif rec.mask is not None:
        raise DataFormatError(path, f"image {image_id}", "mask", "given but the store holds no masks")
    return rec


def read_store_json(path: Path, name: str) -> dict:
    try:
        return json.loads((path / name).read_text())
    except FileNotFoundError:
        raise DataFormatError(path / name, None, None, "is missing (incomplete or not an image grid store)") from None
    except json.JSONDecodeError as e:
        raise DataFormatError(path / name, None, None, f"is not valid JSON ({e.msg}, line {e.lineno})") from None


class ImageGridStore:
    """Reader of a ``.grids`` store (see the module docstring for the layout).

    Args:
        path: the store directory.
        encoder: if given (a registry name or an encoder record dict), the store must have been
            made by that encoder (and, for a dict with weights, those weights).

    Attributes:
        meta: the ``meta.json`` dict; ``encoder``, ``preset``, ``dtype``, ``channels``,
            ``pooled_dim``, ``has_mask`` are its fields.
        shards: absolute shard paths.
    """

    def __init__(self, path: str | os.PathLike, encoder: str | dict | None = None):
        self._maps: dict[int, mmap.mmap] = {}
        self.path = Path(path)
        if not self.path.is_dir():
            raise FileNotFoundError(f"image grid store {self.path} does not exist")
        self.meta = read_store_json(self.path, "meta.json")
        meta_file = self.path / "meta.json"
        if self.meta.get("format") != FORMAT:
            raise DataFormatError(meta_file, None, "format", f"must be {FORMAT!r}, got {self.meta.get('format')!r}")
        for key in ("encoder", "preset", "dtype", "channels", "pooled_dim", "has_mask"):
            if key not in self.meta:
                raise DataFormatError(meta_file, None, key, "is missing")
        if self.meta["dtype"] not in DTYPES:
            raise DataFormatError(meta_file, None, "dtype", f"must be one of {DTYPES}, got {self.meta['dtype']!r}")
        self.encoder: dict = self.meta["encoder"]
        self.preset: dict = self.meta["preset"]
        self.dtype = np.dtype(self.meta["dtype"])
        self.channels = int(self.meta["channels"])
        self.pooled_dim = int(self.meta["pooled_dim"]) if self.meta["pooled_dim"] else None
        self.has_mask = bool(self.meta["has_mask"])
        if encoder is not None:
            self.check_encoder(encoder)
        self._load_index(read_store_json(self.path, "index.json"))

    def _load_index(self, index: dict) -> None:
        index_file = self.path / "index.json"
        try:
            shards, rows = index["shards"], index["images"]
        except (KeyError, TypeError):
            raise DataFormatError(index_file, None, "shards/images", "must hold 'shards' and 'images' lists") from None
        self.shards = [self.path / s for s in shards]
        sizes = []
        for s in self.shards:
            if not s.is_file():
                raise DataFormatError(s, None, None, "shard file listed in index.json is missing")
            sizes.append(s.stat().st_size)
        self.index: dict[str, GridEntry] = {}
        for n, row in enumerate(rows):
            if not (isinstance(row, list) and len(row) == 5 and all(isinstance(v, int) for v in row[1:])):
                raise DataFormatError(index_file, f"row {n}", "images", f"must be [image_id, shard, offset, H, W], got {row!r}")
            image_id, entry = str(row[0]), GridEntry(*row[1:])
            if image_id in self.index:
                raise DataFormatError(index_file, f"image {image_id}", "images", "duplicate image id")
            if not 0 <= entry.shard < len(self.shards):
                raise DataFormatError(index_file, f"image {image_id}", "shard", f"{entry.shard} is not a listed shard")
            end = entry.offset + self._layout(entry.h, entry.w)["total"]
            if entry.offset < 0 or entry.h < 1 or entry.w < 1 or end > sizes[entry.shard]:
                raise DataFormatError(self.shards[entry.shard], f"image {image_id}", "offset",
                                      f"record ({entry.h} x {entry.w} at byte {entry.offset}) runs past the end of "
                                      f"the shard ({sizes[entry.shard]} bytes): truncated or wrong shape")
            self.index[image_id] = entry

    def _layout(self, h: int, w: int) -> dict:
        return record_layout(h, w, self.channels, self.pooled_dim, self.has_mask, self.dtype)

    # -- lookup -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, image_id) -> bool:
        return str(image_id) in self.index

    def ids(self) -> list[str]:
        """Image ids in storage order (shard by shard)."""
        return list(self.index)

    def entry(self, image_id) -> GridEntry:
        """The index entry of ``image_id``; ``KeyError`` naming the store and the image if absent."""
        try:
            return self.index[str(image_id)]
        except KeyError:
            raise KeyError(f"{self.path / 'index.json'}: image {image_id} is not in the index "
                           f"({len(self.index)} images)") from None

    def grid_shape(self, image_id) -> tuple[int, int]:
        """(H, W) of the image's grid, in cells."""
        e = self.entry(image_id)
        return e.h, e.w

    def check_encoder(self, encoder: str | dict) -> None:
        """Raise DataFormatError unless the store was made by ``encoder`` (a name or a record).

        The same encoder means the same ``name``, ``architecture`` and ``random`` (the fields the
        given record has); two weights files of one encoder with different SHA-256 are only
        reported (the same OpenAI weights travel as differently packed files)."""
        want = encoder if isinstance(encoder, dict) else {"name": encoder}
        for key in ("name", "architecture", "random"):
            if want.get(key) is not None and self.encoder.get(key) != want[key]:
                raise DataFormatError(self.path / "meta.json", None, f"encoder.{key}",
                                      f"the store was made by {self.encoder.get(key)!r}, not {want[key]!r} "
                                      f"(another encoder's features)")
        sha, have = want.get("weights_sha256"), self.encoder.get("weights_sha256")
        if sha and have and sha != have:
            logger.warning("%s: made with weights %s (sha256 %s...), expected sha256 %s...", self.path,
                           self.encoder.get("weights"), have[:8], sha[:8])

    # -- reading ------------------------------------------------------------------------------
    def _map(self, shard: int) -> mmap.mmap:
        mm = self._maps.get(shard)
        if mm is None:
            with open(self.shards[shard], "rb") as f:
                mm = self._maps[shard] = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        return mm

    def _read(self, image_id: str, e: GridEntry, dtype, check: bool) -> GridRecord:
        buf = memoryview(self._map(e.shard))[e.offset:e.offset + self._layout(e.h, e.w)["total"]]
        try:
            return self._decode(buf, image_id, e, dtype, check)
        finally:
            buf.release()

    def _decode(self, buf, image_id, entry: GridEntry, dtype, check: bool) -> GridRecord:
        lay = self._layout(entry.h, entry.w)
        grid = np.frombuffer(buf, self.dtype, entry.h * entry.w * self.channels, 0).reshape(entry.h, entry.w, self.channels)
        pooled = np.frombuffer(buf, self.dtype, self.pooled_dim, lay["grid"]) if self.pooled_dim else None
        mask = (np.frombuffer(buf, np.uint8, entry.h * entry.w, lay["grid"] + lay["pooled"]).reshape(entry.h, entry.w)
                .astype(bool) if self.has_mask else None)
        rec = GridRecord(grid.astype(dtype or self.dtype, copy=True),
                         None if pooled is None else pooled.astype(dtype or self.dtype, copy=True), mask)
        if check:
            check_record(rec, self.shards[entry.shard], image_id, self.channels, self.pooled_dim, self.has_mask)
        return rec

    def get_record(self, image_id, dtype=np.float32, check: bool = True) -> GridRecord:
        """One image's :class:`GridRecord`, copied from the memory map (only that image is read).

        Args:
            dtype: output float dtype (None keeps the stored dtype).
            check: verify the values are finite (DataFormatError naming shard, image, field).
        """
        return self._read(str(image_id), self.entry(image_id), dtype, check)

    def get(self, image_id, dtype=np.float32, check: bool = True) -> np.ndarray:
        """(H, W, C) grid of one image (see :meth:`get_record`)."""
        return self.get_record(image_id, dtype, check).grid

    def iter_records(self, image_ids: Iterable | None = None, dtype=np.float32, check: bool = True,
                     prefetch_bytes: int = 64 << 20) -> Iterator[tuple[str, GridRecord]]:
        """Stream records in storage order (shard by shard, increasing offset) for training.

        The kernel is asked to read the next ``prefetch_bytes`` of each shard in the background
        (``MADV_WILLNEED``) while the current records are decoded, and pages are read once, in
        file order, so a split far larger than memory streams at disk speed (the page cache
        evicts what was read). ``image_ids`` selects a subset (still yielded in storage order);
        unknown ids raise ``KeyError`` before anything is read.
        """
        if image_ids is None:
            wanted = list(self.index.items())
        else:
            wanted = [(str(i), self.entry(i)) for i in image_ids]
        wanted.sort(key=lambda kv: (kv[1].shard, kv[1].offset))
        advised = 0
        for n, (image_id, e) in enumerate(wanted):
            if n >= advised:
                advised = self._advise(wanted, n, prefetch_bytes)
            yield image_id, self._read(image_id, e, dtype, check)

    def _advise(self, wanted, n: int, window: int) -> int:
        """``MADV_WILLNEED`` over the records from ``n`` on (one shard, ``window`` bytes at most);
        returns the index of the first record not covered."""
        shard, start = wanted[n][1].shard, wanted[n][1].offset
        stop, m = start, n
        while m < len(wanted) and wanted[m][1].shard == shard and stop - start < window:
            e = wanted[m][1]
            stop = max(stop, e.offset + self._layout(e.h, e.w)["total"])
            m += 1
        if hasattr(mmap, "MADV_WILLNEED"):
            page_start = start - start % mmap.PAGESIZE
            self._map(shard).madvise(mmap.MADV_WILLNEED, page_start, stop - page_start)
        return m

    def validate(self) -> None:
        """Read every record once (streaming) and check it; raises at the first bad one."""
        for _ in self.iter_records(dtype=None):
            pass

    def close(self) -> None:
        """Drop the memory maps (the store can still be read; maps reopen lazily)."""
        for mm in self._maps.values():
            mm.close()
        self._maps.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_image_store(path: str | os.PathLike, encoder: str | dict | None = None) -> ImageGridStore:
    """Open a ``.grids`` store; with ``encoder`` it must have been made by that encoder."""
    return ImageGridStore(path, encoder=encoder)


def pad_grids(records: list[GridRecord]) -> tuple[np.ndarray, np.ndarray]:
    """Batch grids of different sizes for a model: zero-padded (B, Hmax, Wmax, C) and a
    (B, Hmax, Wmax) bool validity mask (True = a real cell; the record's own mask if it has one)."""
    hmax = max(r.grid.shape[0] for r in records)
    wmax = max(r.grid.shape[1] for r in records)
    c = records[0].grid.shape[2]
    out = np.zeros((len(records), hmax, wmax, c), dtype=records[0].grid.dtype)
    mask = np.zeros((len(records), hmax, wmax), dtype=bool)
    for b, r in enumerate(records):
        h, w = r.grid.shape[:2]
        out[b, :h, :w] = r.grid
        mask[b, :h, :w] = True if r.mask is None else r.mask
    return out, mask
