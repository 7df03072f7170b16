"""Writing image grid stores (:mod:`features.image_store`): resumable, atomic, one shard set per rank.

:class:`ImageGridWriter` appends records to ``<out>.partial/shards/r<rank>-<k>.bin`` and commits
that rank's index atomically every ``commit_every`` images, so an interrupted run resumes where
it stopped (records written after the last commit are truncated away and redone). Ranks
(``torchrun --nproc-per-node N``: ``RANK`` / ``WORLD_SIZE``) never talk to each other: each one
writes its own shards and, when finished, drops a ``done`` marker under a file lock; the rank that
finds every marker present merges the per-rank indexes into ``index.json`` and publishes the
directory with one rename. :func:`merge_image_store` runs the same merge by hand (after a rank was
restarted on its own, for instance).

Typical use (the corpus builder, an adapter, a test)::

    from features.image_store_writer import ImageGridWriter
    w = ImageGridWriter("data/synthetic_vl/features/synthetic_semantic_grid.grids", channels=C,
                        encoder=encoder_record_dict, preset={"name": "custom", ...},
                        dtype="float16", pooled_dim=None, has_mask=False)
    for image_id, grid in items:          # grid: (H, W, C) float, channels last
        w.add(image_id, grid)
    w.finish()                            # -> the published path
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
from filelock import FileLock

from vln.errors import DataFormatError
from vln.io_utils import atomic_write_json

from .image_store import DTYPES, FORMAT, VERSION, GridRecord, check_record, record_layout

logger = logging.getLogger(__name__)


def _tag(rank: int) -> str:
    return f"r{rank:05d}"


class ImageGridWriter:
    """Appends image records to one rank's shards of a ``.grids`` store.

    Args:
        path: the final store directory (``<name>.grids``).
        channels: C of every grid.
        encoder: encoder record dict (``name``, ``architecture``, ``weights``, ``weights_sha256``,
            ``random``), stored as ``meta["encoder"]``.
        preset: how the images were sized (``features.grid.GridPreset.to_dict()`` or any JSON dict).
        dtype: ``"float16"`` (default) or ``"float32"``.
        pooled_dim: length of the pooled vector stored with each image, or None.
        has_mask: store a (H, W) validity mask with each image.
        rank, world_size: this process's rank and the number of writer processes.
        resume: continue this rank's partial shards if written with the same settings.
        shard_bytes: start a new shard file once the current one would exceed this size.
        commit_every: images between index commits (each one an fsync + atomic rename).
        extra_meta: more JSON fields for ``meta.json`` (image folder, resize, ...).
    """

    def __init__(self, path, *, channels: int, encoder: dict, preset: dict, dtype="float16",
                 pooled_dim: int | None = None, has_mask: bool = False, rank: int = 0, world_size: int = 1,
                 resume: bool = True, shard_bytes: int = 1 << 30, commit_every: int = 64,
                 extra_meta: dict | None = None):
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.dtype = np.dtype(dtype)
        if self.dtype.name not in DTYPES:
            raise ValueError(f"grid dtype must be one of {DTYPES}, got {self.dtype}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        self.channels, self.pooled_dim, self.has_mask = int(channels), (int(pooled_dim) if pooled_dim else None), bool(has_mask)
        self.rank, self.world_size = rank, world_size
        self.shard_bytes, self.commit_every = shard_bytes, commit_every
        self.meta = {"format": FORMAT, "version": VERSION, "encoder": dict(encoder), "preset": dict(preset),
                     "dtype": self.dtype.name, "channels": self.channels, "pooled_dim": self.pooled_dim,
                     "has_mask": self.has_mask, **(extra_meta or {})}
        self.meta = json.loads(json.dumps(self.meta))  # JSON-ready now (tuples -> lists), as read back on resume
        tag = _tag(rank)
        self._sig_file = self.partial / f"{tag}.writer.json"
        self._index_file = self.partial / f"{tag}.index.json"
        self._done_file = self.partial / f"{tag}.done"
        (self.partial / "shards").mkdir(parents=True, exist_ok=True)
        self._done_file.unlink(missing_ok=True)
        signature = {"meta": self.meta, "rank": rank, "world_size": world_size}
        self.shard_names: list[str] = []
        self.shard_ends: list[int] = []
        self.rows: list[list] = []
        if resume and self._can_resume(signature):
            idx = json.loads(self._index_file.read_text())
            self.shard_names, self.shard_ends, self.rows = idx["shards"], idx["ends"], idx["images"]
            for name, end in zip(self.shard_names, self.shard_ends):
                with open(self.partial / name, "r+b") as f:
                    f.truncate(end)
            logger.info("resuming %s rank %d: %d images already written", self.partial, rank, len(self.rows))
        else:
            for old in (self.partial / "shards").glob(f"{tag}-*.bin"):
                old.unlink()
            atomic_write_json(self._sig_file, signature)
            self._commit_index()
        self._ids = {r[0] for r in self.rows}
        self._file = None
        if self.shard_names:
            self._file = open(self.partial / self.shard_names[-1], "ab")
        self._since_commit = 0

    def _can_resume(self, signature) -> bool:
        try:
            old = json.loads(self._sig_file.read_text())
            idx = json.loads(self._index_file.read_text())
            ok = all(k in idx for k in ("shards", "ends", "images"))
        except (OSError, ValueError):
            return False
        if old != signature or not ok:
            logger.warning("discarding %s rank %d: written with other settings", self.partial, self.rank)
            return False
        return True

    def __contains__(self, image_id) -> bool:
        return str(image_id) in self._ids

    def __len__(self) -> int:
        return len(self.rows)

    def _open_new_shard(self) -> None:
        if self._file is not None:
            self._sync()
            self._file.close()
        name = f"shards/{_tag(self.rank)}-{len(self.shard_names):05d}.bin"
        self.shard_names.append(name)
        self.shard_ends.append(0)
        self._file = open(self.partial / name, "wb")

    def add(self, image_id, grid, pooled=None, mask=None) -> None:
        """Append one image: ``grid`` (H, W, C) float, ``pooled`` (D,), ``mask`` (H, W) bool.

        Raises DataFormatError (naming the store, the image and the field) for a duplicate id, a
        wrong shape or non-finite values, before anything is written.
        """
        image_id = str(image_id)
        if image_id in self._ids:
            raise DataFormatError(self.path, f"image {image_id}", "image_id", "duplicate image id")
        rec = GridRecord(np.asarray(grid), None if pooled is None else np.asarray(pooled),
                         None if mask is None else np.asarray(mask))
        check_record(rec, self.path, image_id, self.channels, self.pooled_dim, self.has_mask)
        h, w = rec.grid.shape[:2]
        lay = record_layout(h, w, self.channels, self.pooled_dim, self.has_mask, self.dtype)
        if self._file is None or (self.shard_ends[-1] and self.shard_ends[-1] + lay["total"] > self.shard_bytes):
            self._open_new_shard()
        parts = [np.ascontiguousarray(rec.grid, dtype=self.dtype).tobytes()]
        if self.pooled_dim:
            parts.append(np.ascontiguousarray(rec.pooled, dtype=self.dtype).tobytes())
        if self.has_mask:
            parts.append(np.ascontiguousarray(rec.mask, dtype=np.uint8).tobytes())
        raw = b"".join(parts)
        offset = self.shard_ends[-1]
        self._file.write(raw + b"\0" * (lay["total"] - len(raw)))
        self.shard_ends[-1] = offset + lay["total"]
        self.rows.append([image_id, len(self.shard_names) - 1, offset, h, w])
        self._ids.add(image_id)
        self._since_commit += 1
        if self._since_commit >= self.commit_every:
            self.commit()

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def _commit_index(self) -> None:
        atomic_write_json(self._index_file, {"shards": self.shard_names, "ends": self.shard_ends, "images": self.rows})

    def commit(self) -> None:
        """Make every image added so far durable: fsync the shard, then rename the index in."""
        if self._file is not None:
            self._sync()
        self._commit_index()
        self._since_commit = 0

    def close(self) -> None:
        """Commit and close without publishing (the partial stays for a resume)."""
        if self._file is not None and not self._file.closed:
            self.commit()
            self._file.close()

    def finish(self) -> Path | None:
        """Mark this rank done; the last rank to finish merges and publishes the store.

        Returns:
            the published path, or None when other ranks are still writing.
        """
        self.close()
        with FileLock(str(self.partial / "merge.lock")):
            self._done_file.write_text("done\n")
            if all((self.partial / f"{_tag(r)}.done").exists() for r in range(self.world_size)):
                return _merge(self.path, self.world_size)
        logger.info("rank %d of %d finished %d images; the last rank merges", self.rank, self.world_size, len(self.rows))
        return None


def merge_image_store(path, world_size: int) -> Path:
    """Merge the per-rank indexes of ``<path>.partial`` and publish ``path`` (every rank must be done)."""
    partial = Path(path).with_name(Path(path).name + ".partial")
    with FileLock(str(partial / "merge.lock")):
        missing = [r for r in range(world_size) if not (partial / f"{_tag(r)}.done").exists()]
        if missing:
            raise DataFormatError(partial, None, None, f"ranks {missing} of {world_size} have not finished")
        return _merge(Path(path), world_size)


def _merge(path: Path, world_size: int) -> Path:
    partial = path.with_name(path.name + ".partial")
    shards, images, seen, meta = [], [], {}, None
    for rank in range(world_size):
        tag = _tag(rank)
        sig = json.loads((partial / f"{tag}.writer.json").read_text())
        if meta is None:
            meta = sig["meta"]
        elif sig["meta"] != meta:
            raise DataFormatError(partial / f"{tag}.writer.json", None, "meta",
                                  "rank written with other settings (encoder, preset or dtype) than rank 0")
        idx = json.loads((partial / f"{tag}.index.json").read_text())
        base = len(shards)
        shards.extend(idx["shards"])
        for image_id, shard, offset, h, w in idx["images"]:
            if image_id in seen:
                raise DataFormatError(partial / f"{tag}.index.json", f"image {image_id}", "image_id",
                                      f"also written by rank {seen[image_id]}")
            seen[image_id] = rank
            images.append([image_id, base + shard, offset, h, w])
    keep = set(shards)
    for f in (partial / "shards").glob("*.bin"):  # shards of stale ranks (another world size)
        if f"shards/{f.name}" not in keep:
            f.unlink()
    meta["num_images"] = len(images)
    meta["world_size"] = world_size
    atomic_write_json(partial / "index.json", {"shards": shards, "images": images})
    atomic_write_json(partial / "meta.json", meta, indent=1)
    for f in partial.iterdir():
        if f.is_file() and f.name.startswith("r") and f.name.endswith((".writer.json", ".index.json", ".done")):
            f.unlink()
    (partial / "merge.lock").unlink(missing_ok=True)
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.replace(path, old)
    os.replace(partial, path)
    if old is not None:
        shutil.rmtree(old)
    logger.info("published %s: %d images in %d shards", path, len(images), len(shards))
    return path


def write_image_store(path, records, *, channels: int, encoder: dict, preset: dict, dtype="float16",
                      pooled_dim: int | None = None, has_mask: bool = False, **kwargs) -> Path:
    """Write ``(image_id, GridRecord)`` pairs (or ``(image_id, grid)``) to a new store, atomically."""
    writer = ImageGridWriter(path, channels=channels, encoder=encoder, preset=preset, dtype=dtype,
                             pooled_dim=pooled_dim, has_mask=has_mask, resume=False,
                             commit_every=kwargs.pop("commit_every", 1 << 30), **kwargs)
    try:
        for image_id, rec in records:
            if isinstance(rec, GridRecord):
                writer.add(image_id, rec.grid, rec.pooled, rec.mask)
            else:
                writer.add(image_id, rec)
    except BaseException:
        writer.close()
        raise
    out = writer.finish()
    assert out is not None  # a single writer is always the last rank
    return out
