"""Readers and writers for the grid-feature layouts researchers already have, and conversions.

==========  =============================================================  ======================
format      layout                                                         from
==========  =============================================================  ======================
grids       our sharded store (:mod:`features.image_store`)                this toolkit
npy         ``<dir>/<image_id>.npy``, float32 (1, H, W, C)                 grid-feats-vqa / Pythia
npz         ``<dir>/<image_id>.npz`` with key ``feat`` (H, W, C), and a    ImageCaptioning.pytorch
            pooled ``<fc_dir>/<image_id>.npy`` (D,) when there is one       (``--input_att_dir`` /
                                                                           ``--input_fc_dir``)
lmdb        one LMDB, key ``<image_id>``, value the bytes of an ``.npz``   ImageCaptioning.pytorch's
            with ``feat`` (+ ``fc``, ``mask``); ``pip install clipvil[lmdb]``  LMDB loader
==========  =============================================================  ======================

A ``.npz`` ``feat`` of shape (N, C) (some captioning dumps flatten the grid) reads as N x 1.
The foreign layouts carry no metadata; our writers add ``clipvil_meta.json`` (encoder record,
preset, dtype) beside the files (the ``__meta__`` key in LMDB), which the other tools ignore and
our readers use, so a round trip keeps the encoder. Every reader has ``ids()``,
``get_record(id) -> GridRecord``, ``iter_records()``, ``meta`` and validates each record
(shape, channels, finite values) with errors naming the file, the image and the field.
"""
from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np

from vln.errors import DataFormatError, DependencyNotInstalled
from vln.io_utils import atomic_write_json

from .image_store import GridRecord, check_record

META_FILE = "clipvil_meta.json"
META_KEY = b"__meta__"


def _npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _as_record(path, image_id, feat, pooled=None, mask=None, leading_one: bool = False) -> GridRecord:
    feat = np.asarray(feat)
    if leading_one:
        if feat.ndim != 4 or feat.shape[0] != 1:
            raise DataFormatError(path, f"image {image_id}", "feat", f"must have shape (1, H, W, C), got {feat.shape}")
        feat = feat[0]
    elif feat.ndim == 2:
        feat = feat[:, None, :]
    return GridRecord(feat, None if pooled is None else np.asarray(pooled).reshape(-1),
                      None if mask is None else np.asarray(mask).astype(bool))


class _FolderGrids:
    """Shared part of the one-file-per-image readers: ids from file names, metadata file, checks."""

    suffix = ""

    def __init__(self, path, fc_dir=None):
        self.path = Path(path)
        if not self.path.is_dir():
            raise FileNotFoundError(f"feature folder {self.path} does not exist")
        meta_file = self.path / META_FILE
        self.meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
        if fc_dir is None and self.meta.get("pooled_dim") and default_fc_dir(self.path).is_dir():
            fc_dir = default_fc_dir(self.path)  # written by us beside the grids
        self.fc_dir = Path(fc_dir) if fc_dir else None
        self._ids = sorted(p.name[:-len(self.suffix)] for p in self.path.iterdir() if p.name.endswith(self.suffix))
        self.channels = self.meta.get("channels")
        self.pooled_dim = self.meta.get("pooled_dim") if self.fc_dir or self.meta.get("pooled_dim") else None

    def ids(self) -> list[str]:
        return list(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, image_id) -> bool:
        return (self.path / f"{image_id}{self.suffix}").exists()

    def _file(self, image_id) -> Path:
        f = self.path / f"{image_id}{self.suffix}"
        if not f.exists():
            raise KeyError(f"{self.path}: image {image_id} has no {f.name}")
        return f

    def _check(self, rec: GridRecord, f, image_id) -> GridRecord:
        if self.channels is None:
            self.channels = int(rec.grid.shape[-1]) if rec.grid.ndim == 3 else None
        if self.pooled_dim is None and rec.pooled is not None:
            self.pooled_dim = int(rec.pooled.shape[0])
        return check_record(rec, f, image_id, self.channels or -1, self.pooled_dim, rec.mask is not None)

    def _pooled(self, image_id):
        if self.fc_dir is None:
            return None
        fc = self.fc_dir / f"{image_id}.npy"
        if not fc.exists():
            raise DataFormatError(fc, f"image {image_id}", "pooled", "pooled .npy missing")
        try:
            return np.load(fc, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DataFormatError(fc, f"image {image_id}", "pooled", f"is not a readable .npy ({e})") from None

    def iter_records(self, image_ids=None, dtype=np.float32):
        for image_id in (self._ids if image_ids is None else image_ids):
            yield str(image_id), self.get_record(image_id, dtype)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class NpyDirGrids(_FolderGrids):
    """One ``<image_id>.npy`` per image holding (1, H, W, C) (grid-feats-vqa / Pythia); pooled
    vectors, if any, in ``fc_dir/<image_id>.npy``."""

    suffix = ".npy"

    def get_record(self, image_id, dtype=np.float32) -> GridRecord:
        f = self._file(image_id)
        try:
            arr = np.load(f, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DataFormatError(f, f"image {image_id}", "feat", f"is not a readable .npy ({e})") from None
        rec = _as_record(f, image_id, arr, self._pooled(image_id), leading_one=True)
        return self._check(GridRecord(rec.grid.astype(dtype), None if rec.pooled is None else rec.pooled.astype(dtype)),
                           f, image_id)


class NpzDirGrids(_FolderGrids):
    """One ``<image_id>.npz`` (key ``feat``) per image, pooled vectors in ``fc_dir/<image_id>.npy``."""

    suffix = ".npz"

    def get_record(self, image_id, dtype=np.float32) -> GridRecord:
        f = self._file(image_id)
        try:
            with np.load(f, allow_pickle=False) as z:
                if "feat" not in z:
                    raise DataFormatError(f, f"image {image_id}", "feat", f"key missing (keys: {sorted(z.files)})")
                feat, mask = z["feat"], (z["mask"] if "mask" in z else None)
        except (OSError, ValueError) as e:
            if isinstance(e, DataFormatError):
                raise
            raise DataFormatError(f, f"image {image_id}", "feat", f"is not a readable .npz ({e})") from None
        rec = _as_record(f, image_id, feat, self._pooled(image_id), mask)
        return self._check(GridRecord(rec.grid.astype(dtype), None if rec.pooled is None else rec.pooled.astype(dtype),
                                      rec.mask), f, image_id)


class LmdbGrids:
    """An LMDB of ``.npz`` bytes per image (key = image id), ImageCaptioning.pytorch style."""

    def __init__(self, path):
        lmdb = _lmdb()
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"LMDB {self.path} does not exist")
        self.env = lmdb.open(str(self.path), subdir=self.path.is_dir(), readonly=True, lock=False, readahead=False)
        with self.env.begin() as txn:
            raw = txn.get(META_KEY)
            self.meta = json.loads(raw) if raw else {}
            self._ids = sorted(k.decode() for k, _ in txn.cursor() if k != META_KEY)
        self.channels, self.pooled_dim = self.meta.get("channels"), self.meta.get("pooled_dim")

    ids = _FolderGrids.ids
    __len__ = _FolderGrids.__len__
    iter_records = _FolderGrids.iter_records
    _check = _FolderGrids._check
    __enter__, __exit__ = _FolderGrids.__enter__, _FolderGrids.__exit__

    def __contains__(self, image_id) -> bool:
        return str(image_id) in self._ids

    def get_record(self, image_id, dtype=np.float32) -> GridRecord:
        with self.env.begin() as txn:
            raw = txn.get(str(image_id).encode())
        if raw is None:
            raise KeyError(f"{self.path}: image {image_id} is not in the LMDB")
        where = f"{self.path} [key {image_id}]"
        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as z:
                feat = z["feat"]
                pooled = z["fc"] if "fc" in z else None
                mask = z["mask"] if "mask" in z else None
        except (OSError, ValueError, KeyError) as e:
            raise DataFormatError(where, f"image {image_id}", "feat", f"value is not an .npz with 'feat' ({e})") from None
        rec = _as_record(where, image_id, feat, pooled, mask)
        return self._check(GridRecord(rec.grid.astype(dtype), None if pooled is None else rec.pooled.astype(dtype),
                                      rec.mask), where, image_id)

    def close(self) -> None:
        self.env.close()


def _lmdb():
    try:
        import lmdb
    except ImportError:
        raise DependencyNotInstalled("the LMDB layout needs the lmdb package: pip install 'clipvil[lmdb]'") from None
    return lmdb


def _folder_writer(path: Path):
    partial = path.with_name(path.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    return partial


def _publish(partial: Path, path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    os.replace(partial, path)
    return path


def _write_pooled(fc_partial, fc_dir, image_id, rec):
    if rec.pooled is None:
        return fc_partial
    fc_partial = fc_partial or _folder_writer(fc_dir)
    np.save(fc_partial / f"{image_id}.npy", rec.pooled.astype(np.float32))
    return fc_partial


def default_fc_dir(path: Path) -> Path:
    """Where pooled vectors go beside a grid folder: ``<name>_fc`` (``coco_att`` -> ``coco_fc``)."""
    return path.with_name(path.name.removesuffix("_att") + "_fc")


def write_npy_dir(path, records, meta: dict, fc_dir=None) -> Path:
    """``(image_id, GridRecord)`` -> ``<path>/<image_id>.npy`` float32 (1, H, W, C) (+ pooled in
    ``fc_dir``, default :func:`default_fc_dir`); published atomically. The layout has no place for
    a validity mask: a record with one raises (use ``npz`` or ``lmdb``)."""
    path = Path(path)
    fc_dir = Path(fc_dir) if fc_dir else default_fc_dir(path)
    partial, fc_partial = _folder_writer(path), None
    for image_id, rec in records:
        if rec.mask is not None:
            raise DataFormatError(path, f"image {image_id}", "mask",
                                  "the .npy-per-image layout cannot hold validity masks; convert to npz or lmdb")
        np.save(partial / f"{image_id}.npy", rec.grid.astype(np.float32)[None])
        fc_partial = _write_pooled(fc_partial, fc_dir, image_id, rec)
    atomic_write_json(partial / META_FILE, meta)
    if fc_partial is not None:
        _publish(fc_partial, fc_dir)
    return _publish(partial, path)


def write_npz_dir(path, records, meta: dict, fc_dir=None) -> Path:
    """``<path>/<image_id>.npz`` (``feat`` (H, W, C) float32, ``mask`` if any) and, with pooled
    vectors, ``<fc_dir>/<image_id>.npy`` (default :func:`default_fc_dir`); published atomically."""
    path = Path(path)
    fc_dir = Path(fc_dir) if fc_dir else default_fc_dir(path)
    partial, fc_partial = _folder_writer(path), None
    for image_id, rec in records:
        arrays = {"feat": rec.grid.astype(np.float32)}
        if rec.mask is not None:
            arrays["mask"] = rec.mask
        np.savez_compressed(partial / f"{image_id}.npz", **arrays)
        fc_partial = _write_pooled(fc_partial, fc_dir, image_id, rec)
    atomic_write_json(partial / META_FILE, meta)
    if fc_partial is not None:
        _publish(fc_partial, fc_dir)
    return _publish(partial, path)


def write_lmdb(path, records, meta: dict, map_size: int = 1 << 40) -> Path:
    """One LMDB (a file, ``subdir=False``) of ``.npz`` bytes per image; written beside and renamed in."""
    lmdb = _lmdb()
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    for f in (tmp, tmp.with_name(tmp.name + "-lock")):
        f.unlink(missing_ok=True)
    env = lmdb.open(str(tmp), subdir=False, map_size=map_size, lock=True)
    try:
        txn = env.begin(write=True)
        for n, (image_id, rec) in enumerate(records, start=1):
            arrays = {"feat": rec.grid.astype(np.float32)}
            if rec.pooled is not None:
                arrays["fc"] = rec.pooled.astype(np.float32)
            if rec.mask is not None:
                arrays["mask"] = rec.mask
            txn.put(str(image_id).encode(), _npz_bytes(**arrays))
            if n % 1000 == 0:
                txn.commit()
                txn = env.begin(write=True)
        txn.put(META_KEY, json.dumps(meta).encode())
        txn.commit()
        env.sync(True)
    finally:
        env.close()
    os.replace(tmp, path)
    tmp.with_name(tmp.name + "-lock").unlink(missing_ok=True)
    return path
