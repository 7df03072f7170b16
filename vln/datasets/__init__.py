"""VLN datasets: R2R and RxR readers/writers, the shared :class:`Episode`, augmentation paths.

Loaders are registered by name in :data:`DATASETS` with the on-disk layout they expect, so
``load_split("r2r", data_dir, "val_unseen", graph=nav)`` reads
``<data_dir>/R2R/R2R_val_unseen.json`` and ``load_split("rxr", data_dir, "train", language="hi")``
reads ``<data_dir>/RxR/rxr_train_guide.jsonl.gz``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..registry import Registry
from .episode import Episode
from .r2r import PathRecord, episodes_to_path_records, load_r2r, read_r2r_paths, write_r2r
from .rxr import language_matches, load_rxr, write_rxr


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its loader and where its split files live.

    Attributes:
        name: registry name (``"r2r"``).
        loader: ``loader(file, **kw) -> list[Episode]``.
        folder: sub-folder of the data directory.
        patterns: file-name patterns tried in order, with ``{split}`` substituted.
    """

    name: str
    loader: Callable[..., list]
    folder: str
    patterns: tuple

    def split_file(self, data_dir: str | os.PathLike, split: str) -> Path:
        """The file of ``split`` under ``data_dir``; raises FileNotFoundError listing what exists."""
        folder = Path(data_dir) / self.folder
        tried = [folder / p.format(split=split) for p in self.patterns]
        for f in tried:
            if f.exists():
                return f
        found = sorted(self.splits(data_dir))
        raise FileNotFoundError(
            f"no {self.name} split {split!r}: {tried[0]} does not exist"
            f" (splits found in {folder}: {', '.join(found) or 'none'})"
        )

    def splits(self, data_dir: str | os.PathLike) -> list[str]:
        """Split names whose files exist under ``data_dir``."""
        folder = Path(data_dir) / self.folder
        out = set()
        # Longest pattern first, so "rxr_x_public_guide" is split "x", not "x_public".
        patterns = sorted(self.patterns, key=len, reverse=True)
        for f in sorted(folder.iterdir()) if folder.is_dir() else []:
            for p in patterns:
                head, tail = p.split("{split}")
                if f.name.startswith(head) and f.name.endswith(tail) and len(f.name) > len(head) + len(tail):
                    out.add(f.name[len(head): len(f.name) - len(tail)])
                    break
        return sorted(out)


DATASETS: Registry[DatasetSpec] = Registry("dataset")
DATASETS.register("r2r", DatasetSpec("r2r", load_r2r, "R2R", ("R2R_{split}.json",)))
DATASETS.register("rxr", DatasetSpec("rxr", load_rxr, "RxR", ("rxr_{split}_guide.jsonl.gz", "rxr_{split}_public_guide.jsonl.gz")))


def load_split(name: str, data_dir: str | os.PathLike, split: str, **kw) -> list[Episode]:
    """Load one split of a registered dataset.

    Args:
        name: ``"r2r"`` or ``"rxr"`` (see ``DATASETS.names()``).
        data_dir: folder holding ``R2R/`` and/or ``RxR/``.
        split: ``train``, ``val_seen``, ``val_unseen``, ``test`` (R2R) / ``test_standard`` (RxR).
        **kw: passed to the loader (``graph=`` for validation; ``language=`` for RxR;
            ``uninstructed=`` for R2R).
    """
    spec = DATASETS.get(name)
    return spec.loader(spec.split_file(data_dir, split), **kw)


__all__ = [
    "DATASETS", "DatasetSpec", "Episode", "PathRecord", "episodes_to_path_records", "language_matches",
    "load_r2r", "load_rxr", "load_split", "read_r2r_paths", "write_r2r", "write_rxr",
]
