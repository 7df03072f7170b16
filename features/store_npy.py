"""Our fast feature format: a ``<name>.feats/`` directory read through one memory map.

Layout::

    <name>.feats/features.npy   (N, 36, D) float16 or float32, a standard .npy file
    <name>.feats/index.json     {"keys": [[scanId, viewpointId], ...]}  (row order)
    <name>.feats/meta.json      provenance record (features.provenance), encoder spec, weights,
                                random_weights, image_w/h, vfov, dtype

:class:`FeatsWriter` appends rows to ``<name>.feats.partial/`` and commits the index atomically
every few rows, so an interrupted extraction resumes where it stopped (rows written after the
last commit are dropped and redone); :meth:`FeatsWriter.finish` publishes the directory with
one rename.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import struct
from pathlib import Path

import numpy as np

from vln.errors import DataFormatError
from vln.io_utils import atomic_write_json, fsync_directory

from .provenance import store_record
from .store import NUM_VIEWS, FeatureStore, check_features

logger = logging.getLogger(__name__)

_MAGIC = b"\x93NUMPY\x01\x00"
# Reserved header size: the final shape is written into the same bytes when the store closes.
_HEADER_LEN = 128


def _npy_header(shape: tuple, dtype: np.dtype) -> bytes:
    d = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": tuple(shape)}
    body = repr(d).encode("latin1")
    room = _HEADER_LEN - len(_MAGIC) - 2
    if len(body) + 1 > room:
        raise ValueError(f"npy header for shape {shape} does not fit in {_HEADER_LEN} bytes")
    body = body + b" " * (room - len(body) - 1) + b"\n"
    return _MAGIC + struct.pack("<H", len(body)) + body


class NpyFeatureStore(FeatureStore):
    """Reader of a ``.feats`` directory; rows are read from a memory map, never loaded whole.

    Args:
        path: the ``<name>.feats`` directory.

    Raises:
        DataFormatError: missing files, index and array that disagree, duplicate keys.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        for name in ("features.npy", "index.json", "meta.json"):
            if not (self.path / name).exists():
                raise DataFormatError(self.path / name, None, None, "is missing (incomplete or not a .feats store)")
        try:
            self.metadata = json.loads((self.path / "meta.json").read_text())
            keys = json.loads((self.path / "index.json").read_text())["keys"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise DataFormatError(self.path, None, None, f"index.json / meta.json unreadable ({e})") from None
        self._array = np.load(self.path / "features.npy", mmap_mode="r")
        if self._array.ndim != 3 or self._array.shape[1] != NUM_VIEWS:
            raise DataFormatError(self.path / "features.npy", None, None,
                                  f"must be (N, 36, D), got shape {self._array.shape}")
        if len(keys) != self._array.shape[0]:
            raise DataFormatError(self.path / "index.json", None, "keys",
                                  f"lists {len(keys)} viewpoints but features.npy has {self._array.shape[0]} rows")
        self.index = {}
        for row, key in enumerate(keys):
            if not (isinstance(key, list) and len(key) == 2 and all(isinstance(k, str) for k in key)):
                raise DataFormatError(self.path / "index.json", row, "keys", f"must be [scanId, viewpointId], got {key!r}")
            key = (key[0], key[1])
            if key in self.index:
                raise DataFormatError(self.path / "index.json", f"{key[0]}_{key[1]}", "keys",
                                      f"duplicate key (rows {self.index[key]} and {row})")
            self.index[key] = row
        self.dim = int(self._array.shape[2])

    def get(self, scan: str, viewpoint: str) -> np.ndarray:
        row = self.index.get((scan, viewpoint))
        if row is None:
            raise self._missing(scan, viewpoint)
        arr = np.asarray(self._array[row], dtype=np.float32)
        return check_features(arr, self.path / "features.npy", scan, viewpoint, self.dim)

    def as_array(self, dtype=None) -> np.ndarray:
        """(N, 36, D): the memory map itself (stored dtype) or, with ``dtype``, a converted copy."""
        return self._array if dtype is None else np.asarray(self._array, dtype=dtype)

    def validate(self, chunk: int = 256) -> None:
        """Check every row for NaN / infinity (chunked, so memory stays bounded)."""
        keys = self.keys()
        for start in range(0, len(keys), chunk):
            block = np.asarray(self._array[start:start + chunk], dtype=np.float32)
            bad = ~np.isfinite(block).all(axis=(1, 2))
            if bad.any():
                scan, vp = keys[start + int(np.argmax(bad))]
                check_features(block[int(np.argmax(bad))], self.path / "features.npy", scan, vp)

    def close(self) -> None:
        mm = getattr(self._array, "_mmap", None)
        self._array = None
        if mm is not None:
            mm.close()


class FeatsWriter:
    """Appends viewpoints to ``<path>.partial/`` and publishes ``path`` when finished.

    Args:
        path: the final ``<name>.feats`` directory.
        dim: D.
        metadata: stored in ``meta.json`` (must be JSON-serialisable).
        dtype: storage dtype (float32 or float16).
        resume: continue a previous ``.partial`` written with the same dim, dtype and encoder
            (else it is discarded and restarted).
        commit_every: rows between index commits (each one is an fsync + atomic rename).
    """

    def __init__(self, path, dim: int, metadata: dict, dtype=np.float32, resume: bool = True, commit_every: int = 64):
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.dim, self.dtype, self.metadata = int(dim), np.dtype(dtype), dict(metadata)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float16)):
            raise ValueError(f"feature dtype must be float32 or float16, got {self.dtype}")
        self.metadata["dtype"] = self.dtype.name
        self.commit_every = commit_every
        self._row_bytes = NUM_VIEWS * self.dim * self.dtype.itemsize
        self.keys: list[tuple[str, str]] = []
        self._done: set = set()
        signature = {"dim": self.dim, "dtype": self.dtype.name, "encoder": _encoder_key(self.metadata)}
        if resume and self._can_resume(signature):
            committed = json.loads((self.partial / "index.json").read_text())["keys"]
            self.keys = [(s, v) for s, v in committed]
            self._done = set(self.keys)
            self._file = open(self.partial / "features.npy", "r+b")
            self._file.truncate(_HEADER_LEN + len(self.keys) * self._row_bytes)
            self._file.seek(0, os.SEEK_END)
            logger.info("resuming %s: %d viewpoints already written", self.partial, len(self.keys))
        else:
            if self.partial.exists():
                shutil.rmtree(self.partial)
            self.partial.mkdir(parents=True)
            atomic_write_json(self.partial / "writer.json", signature)
            self._file = open(self.partial / "features.npy", "w+b")
            self._file.write(_npy_header((0, NUM_VIEWS, self.dim), self.dtype))
            self._commit_index()
        self._since_commit = 0

    def _can_resume(self, signature) -> bool:
        if not self.partial.exists():
            return False
        try:
            old = json.loads((self.partial / "writer.json").read_text())
            keys = json.loads((self.partial / "index.json").read_text())["keys"]
            size = (self.partial / "features.npy").stat().st_size
        except (OSError, ValueError, KeyError, TypeError):
            logger.warning("discarding %s: a run killed before its first commit left it unreadable", self.partial)
            return False
        if old != signature:
            logger.warning("discarding %s: written with %s, now %s", self.partial, old, signature)
            return False
        # The rows are fsync'ed before the index naming them is committed: fewer bytes than the
        # index needs means the partial store was not written by this writer's protocol. Rebuild it.
        if not isinstance(keys, list) or size < _HEADER_LEN + len(keys) * self._row_bytes:
            logger.warning("discarding %s: its index lists %s rows but features.npy holds %d bytes", self.partial,
                           len(keys) if isinstance(keys, list) else "unreadable", size)
            return False
        return True

    def __contains__(self, key) -> bool:
        return key in self._done

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, scan: str, viewpoint: str, features: np.ndarray) -> None:
        """Append one viewpoint's (36, D) features (validated: shape, finite, not a duplicate)."""
        if (scan, viewpoint) in self._done:
            raise DataFormatError(self.path, f"{scan}_{viewpoint}", None, "duplicate viewpoint")
        arr = check_features(np.asarray(features, dtype=np.float32), self.path, scan, viewpoint, self.dim)
        self._file.write(np.ascontiguousarray(arr.astype(self.dtype)).tobytes())
        self.keys.append((scan, viewpoint))
        self._done.add((scan, viewpoint))
        self._since_commit += 1
        if self._since_commit >= self.commit_every:
            self.commit()

    def _commit_index(self) -> None:
        atomic_write_json(self.partial / "index.json", {"keys": [list(k) for k in self.keys]})

    def commit(self) -> None:
        """Make every row added so far durable: flush + fsync the rows, then rename the index."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._commit_index()
        self._since_commit = 0

    def finish(self) -> Path:
        """Write the final header and metadata and publish ``path`` atomically (one rename)."""
        self.commit()
        self._file.seek(0)
        self._file.write(_npy_header((len(self.keys), NUM_VIEWS, self.dim), self.dtype))
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        atomic_write_json(self.partial / "meta.json", self.metadata, indent=1)
        (self.partial / "writer.json").unlink()
        old = None
        if self.path.exists():
            old = self.path.with_name(f".{self.path.name}.old-{os.getpid()}")
            os.replace(self.path, old)
        os.replace(self.partial, self.path)
        fsync_directory(self.path.parent)
        if old is not None:
            shutil.rmtree(old)
        logger.info("wrote %d viewpoints to %s", len(self.keys), self.path)
        return self.path

    def close(self) -> None:
        """Commit and close without publishing (the ``.partial`` stays for a resume)."""
        if not self._file.closed:
            self.commit()
            self._file.close()


def _encoder_key(metadata: dict):
    """What a resumed ``.partial`` must share with the run resuming it: the provenance record."""
    return store_record(metadata)


def write_feats(path, items, metadata: dict, dtype=np.float32) -> Path:
    """Write ``(scan, viewpoint, (36, D) array)`` items as a ``.feats`` directory, atomically."""
    writer = None
    for scan, vp, arr in items:
        if writer is None:
            writer = FeatsWriter(path, np.shape(arr)[-1], metadata, dtype=dtype, resume=False, commit_every=1 << 30)
        writer.add(scan, vp, arr)
    if writer is None:
        raise ValueError(f"{path}: no viewpoints to write")
    return writer.finish()
