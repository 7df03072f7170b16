"""Precomputed grid cells instead of images: ``--features STORE`` (no backbone in the model).

For a backbone kept fixed and run once (Table 8's frozen ablation at scale, or a CPU budget), the
cells come from an image grid store (``features/image_store.py``, written by
``scripts/extract_grid_features.py``), or for the synthetic corpus from its ``synthetic_semantic_grid``
store (per cell: the shares of the 57 classes and colours covering it + an instance code, written
on first use with the ``pretrain`` preset: 384 x 640 canvas, 12 x 20 cells, padding masked).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

#: The ``--features`` name of the synthetic corpus's ground-truth grid store.
SYNTHETIC_FEATURES = "synthetic_semantic_grid"


def cell_store_path(features: str, corpus_dir: str | os.PathLike | None) -> Path:
    """The store of ``--features``: a store folder, or the synthetic corpus's semantic store (built on first use)."""
    if features != SYNTHETIC_FEATURES:
        return Path(features)
    from features.semantic_grid import ensure_semantic_grid_store
    from vlcorpus import ensure_vl_corpus

    corpus = ensure_vl_corpus() if corpus_dir is None else Path(corpus_dir)
    return ensure_semantic_grid_store(corpus, "pretrain")


class StoreCells:
    """``cells[image_id] -> ((C, h, w) float32, (h, w) bool valid cells)`` from an image grid store.

    The store is opened lazily, in each data-loader worker (memory maps are not shared across processes).
    """

    kind = "cells"

    def __init__(self, path: str | os.PathLike):
        from features.image_store import ImageGridStore

        self.path = Path(path)
        with ImageGridStore(self.path) as store:  # fails now, naming the file, when it is not a store
            self.channels = store.channels
        self._store = None

    def __getstate__(self):
        return {"path": self.path, "channels": self.channels, "_store": None}

    def __getitem__(self, image_id: str):
        if self._store is None:
            from features.image_store import ImageGridStore

            self._store = ImageGridStore(self.path)
        rec = self._store.get_record(image_id)
        cells = torch.from_numpy(rec.grid).permute(2, 0, 1).contiguous()
        mask = torch.ones(cells.shape[1:], dtype=torch.bool) if rec.mask is None else torch.from_numpy(rec.mask)
        return cells, mask
