"""The :class:`FeatureStore` interface, dispatch by file type, and where stores live.

Two formats implement it: the R2R / EnvDrop TSV (:mod:`features.store_tsv`) and our own
memory-mapped ``<name>.feats/`` directory (:mod:`features.store_npy`). Default location: the
features of a data directory live in ``<data_dir>/features/<encoder>.feats``
(:func:`default_store_path`).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from vln.errors import DataFormatError

logger = logging.getLogger(__name__)

NUM_VIEWS = 36


class FeatureStore:
    """Read-only per-viewpoint panoramic features: (36, D) float32 per (scan, viewpoint).

    Attributes:
        path: the file or directory.
        dim: D.
        metadata: dict with (when known) ``provenance`` (the encoder record of
            :mod:`features.provenance`), ``encoder`` (spec dict), ``weights``,
            ``random_weights`` (bool, or None when the file does not say), ``image_w``,
            ``image_h``, ``vfov`` (degrees, as in the TSV header fields).
        index: dict (scan, viewpoint) -> row of :meth:`as_array`.
    """

    path: Path
    dim: int
    metadata: dict
    index: dict

    def get(self, scan: str, viewpoint: str) -> np.ndarray:
        """(36, D) float32 features of one viewpoint; ``KeyError`` naming it if absent."""
        raise NotImplementedError

    def as_array(self) -> np.ndarray:
        """(N, 36, D) array of every viewpoint, row order = :attr:`index` (for one GPU tensor)."""
        raise NotImplementedError

    def keys(self) -> list[tuple[str, str]]:
        """(scan, viewpoint) pairs in row order."""
        return list(self.index)

    def __contains__(self, key: object) -> bool:
        return key in self.index

    def __len__(self) -> int:
        return len(self.index)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.index)

    @property
    def random_weights(self) -> bool | None:
        """True if the features came from a random-weight encoder (never use them for results)."""
        rec = self.provenance
        return None if rec is None else rec["random"]

    @property
    def provenance(self) -> dict | None:
        """The encoder record (:mod:`features.provenance`), None when the store does not say."""
        from .provenance import store_record

        return store_record(self.metadata)

    def _missing(self, scan, viewpoint):
        return KeyError(f"{self.path}: no features for scan {scan}, viewpoint {viewpoint}")

    def close(self) -> None:
        """Release open file handles (the store stays usable through re-opening)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def check_features(arr: np.ndarray, path, scan: str, viewpoint: str, dim: int | None = None) -> np.ndarray:
    """Validate one record: shape (36, D) and finite. Raises DataFormatError naming it."""
    rec = f"{scan}_{viewpoint}"
    if arr.ndim != 2 or arr.shape[0] != NUM_VIEWS or (dim is not None and arr.shape[1] != dim):
        want = f"(36, {dim})" if dim is not None else "(36, D)"
        raise DataFormatError(path, rec, "features", f"must have shape {want}, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise DataFormatError(path, rec, "features", "holds NaN or infinite values")
    return arr


def default_store_path(data_dir: str | os.PathLike, encoder: str) -> Path:
    """``<data_dir>/features/<encoder>.feats``: where training looks for an encoder's features."""
    return Path(data_dir) / "features" / f"{encoder}.feats"


def store_kind(path: str | os.PathLike) -> str:
    """``"tsv"`` or ``"feats"`` from the path's name; raises ValueError otherwise."""
    p = Path(path)
    if p.suffix == ".tsv":
        return "tsv"
    if p.suffix == ".feats" or (p.is_dir() and (p / "meta.json").exists()):
        return "feats"
    raise ValueError(f"{path}: unknown feature store type; use a .tsv file or a .feats directory")


def open_feature_store(path: str | os.PathLike) -> FeatureStore:
    """Open a feature store, dispatching on the extension (``.tsv`` or ``.feats``)."""
    kind = store_kind(path)
    if not Path(path).exists():
        raise FileNotFoundError(f"feature store {path} does not exist")
    if kind == "tsv":
        from .store_tsv import TsvFeatureStore

        return TsvFeatureStore(path)
    from .store_npy import NpyFeatureStore

    return NpyFeatureStore(path)


def write_feature_store(path: str | os.PathLike, items, metadata: dict, dtype=np.float32) -> Path:
    """Write ``(scan, viewpoint, (36, D) array)`` items to ``path`` (format by extension), atomically."""
    if store_kind(path) == "tsv":
        from .store_tsv import write_tsv

        return write_tsv(path, items, metadata)
    from .store_npy import write_feats

    return write_feats(path, items, metadata, dtype=dtype)


def convert_feature_store(src: str | os.PathLike, dst: str | os.PathLike, dtype=None,
                          record: dict | None = None) -> Path:
    """Copy every record of ``src`` to ``dst`` (TSV <-> .feats), streaming one record at a time.

    Args:
        dtype: storage dtype of a ``.feats`` output (default: float32).
        record: provenance to stamp on ``dst`` (:func:`features.provenance.record_of_spec`), for a
            source that does not record its encoder (a released TSV).

    Raises:
        FeatureProvenanceError: ``record`` contradicts the encoder ``src`` records.
    """
    from .provenance import FeatureProvenanceError, describe, mismatch, stamp

    with open_feature_store(src) as store:
        meta = dict(store.metadata)
        if record is not None:
            have = store.provenance
            if have is not None and mismatch(have, record):
                raise FeatureProvenanceError(f"{src} records features of {describe(have)}, not {describe(record)}")
            meta = stamp(meta, record if have is None else have)
        items = ((s, v, store.get(s, v)) for s, v in store.keys())
        return write_feature_store(dst, items, meta, dtype=dtype or np.float32)
