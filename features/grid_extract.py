"""Extract grid features of a folder (or list) of images into an image grid store.

Pipeline: a ``DataLoader`` (``workers`` processes) decodes and resizes images (PIL, bicubic)
ahead of the encoder -> images are grouped by network input size (every image of a ``fixed`` or
padded preset shares one; ``vqa`` keep-aspect groups equal sizes) into batches -> pinned memory,
non-blocking copy, normalisation and zero padding on the device -> :class:`features.grid.GridEncoder`
under bf16 / fp16 autocast in channels_last on CUDA -> the storage dtype is applied on the device
and a writer thread appends records to a resumable :class:`ImageGridWriter`.

Processes: under ``torchrun --nproc-per-node N`` (``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``),
rank r takes every N-th image of the sorted image list and writes its own shards; no collective
is ever called: the last rank to finish merges the indexes (:mod:`features.image_store_writer`).
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from vln.errors import DataFormatError

from .grid import GridEncoder, grid_mask
from .provenance import record_of_encoder
from .grid_presets import GridPreset
from .image_store import ImageGridStore
from .image_store_writer import ImageGridWriter

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def list_images(images_dir=None, image_list=None) -> list[tuple[str, Path]]:
    """``(image_id, path)`` pairs sorted by id.

    Args:
        images_dir: every image file under it (recursively); the id is the file name's stem.
        image_list: a text file, one image per line: ``PATH`` (id = stem) or ``IMAGE_ID PATH``;
            relative paths are relative to the list's folder; blank lines and ``#`` lines skipped.

    Raises:
        DataFormatError: two images with one id, or a listed file that does not exist.
    """
    items, where = [], {}
    if images_dir is not None:
        root = Path(images_dir)
        if not root.is_dir():
            raise FileNotFoundError(f"image folder {root} does not exist")
        for p in sorted(root.rglob("*")):
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
                items.append((p.stem, p, str(p)))
    else:
        lst = Path(image_list)
        for n, line in enumerate(lst.read_text().splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(maxsplit=1)
            path = Path(parts[-1])
            path = path if path.is_absolute() else lst.parent / path
            if not path.is_file():
                raise DataFormatError(lst, f"line {n}", "path", f"image {path} does not exist")
            items.append((parts[0] if len(parts) == 2 else path.stem, path, f"{lst}, line {n}"))
    out = []
    for image_id, path, origin in items:
        if image_id in where:
            raise DataFormatError(origin, f"image {image_id}", "image_id", f"same id as {where[image_id]}")
        where[image_id] = origin
        out.append((image_id, path))
    if not out:
        raise DataFormatError(images_dir or image_list, None, None, "holds no images")
    return sorted(out)


class ResizedImages(torch.utils.data.Dataset):
    """Decodes and resizes images for a preset: item -> dict with ``image_id``, ``image`` (3, h, w)
    uint8, ``canvas`` (H, W), or ``error`` (file, problem) when decoding fails (raised by the
    main process, so the message survives worker processes)."""

    def __init__(self, items: list[tuple[str, Path]], preset: GridPreset):
        self.items, self.preset = items, preset

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):
        from PIL import Image

        image_id, path = self.items[i]
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                w, h = im.size
                rh, rw = self.preset.resized(h, w)
                resample = getattr(Image.Resampling, self.preset.interpolation.upper())
                im = im.resize((rw, rh), resample) if (rh, rw) != (h, w) else im
                pix = torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)
        except (OSError, ValueError) as e:
            return {"image_id": image_id, "error": (str(path), f"cannot be decoded as an image ({e})")}
        return {"image_id": image_id, "image": pix, "canvas": self.preset.canvas(h, w)}


class _WriterThread:
    """Appends records on a background thread so disk writes overlap the next forward pass."""

    def __init__(self, writer: ImageGridWriter, depth: int = 4):
        self.writer, self.q, self.error = writer, queue.Queue(maxsize=depth), None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            batch = self.q.get()
            if batch is None:
                return
            try:
                for args in batch:
                    self.writer.add(*args)
            except BaseException as e:  # reported to the main thread at the next put / close
                self.error = e
                return

    def put(self, batch):
        while True:  # never block on a full queue whose consumer has died
            if self.error is not None:
                raise self.error
            try:
                self.q.put(batch, timeout=0.5)
                return
            except queue.Full:
                continue

    def close(self):
        if self.thread.is_alive():
            try:
                self.put(None)
            finally:
                self.thread.join()
        if self.error is not None:
            raise self.error


def dist_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) without it."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


def store_is_complete(out: Path, encoder: dict, preset: GridPreset, ids) -> bool:
    """True when ``out`` is a published store of this encoder and preset holding every id."""
    try:
        store = ImageGridStore(out)
    except (OSError, ValueError):
        return False
    same = store.encoder == encoder and store.preset == preset.to_dict()
    return same and all(i in store for i in ids)


def extract_grids(encoder, items, out, preset: GridPreset, *, dtype="float16", batch_size: int = 8,
                  workers: int = 4, amp: str = "auto", resume: bool = True, progress: bool = True,
                  rank: int = 0, world_size: int = 1, commit_every: int = 64,
                  shard_bytes: int = 1 << 30) -> dict:
    """Extract grids of ``items`` (``(image_id, path)``, :func:`list_images`) into the store ``out``.

    Args:
        encoder: a pixel ``ImageEncoder`` (:func:`features.encoders.get_encoder`).
        preset: input sizing (:mod:`features.grid_presets`).
        dtype: storage dtype, ``"float16"`` or ``"float32"``.
        batch_size: images per forward pass (of one input size).
        workers: DataLoader decoding processes (0: decode in this process).
        amp: ``auto`` / ``bf16`` / ``fp16`` / ``none`` autocast on CUDA (CPU runs float32).
        rank, world_size: this process's share (every ``world_size``-th image from ``rank``).

    Returns:
        dict: ``images`` (extracted now), ``skipped``, ``seconds``, ``images_per_s``, ``path``
        (None on a rank that finished before the others) and ``rank``.
    """
    from .extract import pick_amp_dtype

    out = Path(out)
    record = record_of_encoder(encoder)
    grids = GridEncoder(encoder, pooled=preset.pooled)
    if resume and store_is_complete(out, record, preset, [i for i, _ in items]):
        logger.info("%s already holds all %d images; nothing to do", out, len(items))
        return {"images": 0, "skipped": len(items), "seconds": 0.0, "images_per_s": float("nan"),
                "path": str(out), "rank": rank}
    writer = ImageGridWriter(out, channels=encoder.spec.grid_dim, encoder=record, preset=preset.to_dict(),
                             dtype=dtype, pooled_dim=encoder.spec.pooled_dim if preset.pooled else None,
                             has_mask=preset.has_mask, rank=rank, world_size=world_size, resume=resume,
                             commit_every=commit_every, shard_bytes=shard_bytes,
                             extra_meta={"grid_kind": grids.kind, "grid_stride": encoder.spec.grid_stride,
                                         "encoder_spec": encoder.spec.to_dict()})
    mine = items[rank::world_size]
    pending = [it for it in mine if it[0] not in writer]
    device, amp_dtype = encoder.device, pick_amp_dtype(encoder.device, amp)
    store_dtype = torch.float16 if np.dtype(dtype) == np.float16 else torch.float32
    loader = torch.utils.data.DataLoader(ResizedImages(pending, preset), batch_size=None, shuffle=False,
                                         num_workers=workers, pin_memory=device.type == "cuda",
                                         prefetch_factor=4 if workers else None, persistent_workers=False)
    bar = tqdm(total=len(pending), unit="img", disable=not progress or rank != 0, desc=f"grids {encoder.spec.name}")
    sink = _WriterThread(writer)
    buckets: dict[tuple, list] = {}

    def run(batch):
        canvas = batch[0]["canvas"]
        grid, pooled = grids(grids.prepare([b["image"] for b in batch], canvas), amp_dtype=amp_dtype)
        grid = grid.to(store_dtype).permute(0, 2, 3, 1).contiguous().cpu().numpy()
        pooled = None if pooled is None else pooled.to(store_dtype).cpu().numpy()
        recs = []
        for n, b in enumerate(batch):
            mask = (grid_mask(tuple(b["image"].shape[1:]), canvas, grid.shape[1:3]).numpy()
                    if preset.has_mask else None)
            recs.append((b["image_id"], grid[n], None if pooled is None else pooled[n], mask))
        sink.put(recs)
        bar.update(len(batch))

    t0 = time.perf_counter()
    try:
        for item in loader:
            if "error" in item:
                raise DataFormatError(item["error"][0], f"image {item['image_id']}", "pixels", item["error"][1])
            bucket = buckets.setdefault(tuple(item["canvas"]), [])
            bucket.append(item)
            if len(bucket) >= batch_size:
                run(buckets.pop(tuple(item["canvas"])))
        for bucket in list(buckets.values()):
            run(bucket)
        sink.close()
    except BaseException:
        try:
            sink.close()
        finally:
            writer.close()  # keep what was committed for a resume
            bar.close()
        raise
    seconds = time.perf_counter() - t0
    bar.close()
    path = writer.finish()
    n = len(pending)
    logger.info("rank %d: %d images in %.1f s (%.2f images/s)", rank, n, seconds, n / seconds if seconds else 0)
    return {"images": n, "skipped": len(mine) - n, "seconds": seconds,
            "images_per_s": n / seconds if seconds > 0 else float("nan"),
            "path": None if path is None else str(path), "rank": rank}
