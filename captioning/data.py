"""Captioning data: the Karpathy split file, the vocabulary, encoded labels, batches of grids.

* Splits (Karpathy): ``train`` = train + restval, ``val``, ``test``.
* Vocabulary: words seen more than ``threshold`` (5) times in the training captions; id 0 is the
  pad and end token, 1 the start token, 2 ``UNK`` (every rarer word), words from 3 in order of
  frequency (ties alphabetical).
* Labels: captions cut at ``max_len`` (16) tokens, as an (n_captions, max_len) int32 array padded
  with 0, with per-image ``label_start_ix`` / ``label_end_ix`` (0-based, end exclusive) and
  ``label_length`` (the ``cocotalk`` h5 layout, whose start/end are 1-based inclusive).
* :class:`CaptionBatcher` reads grids from an :class:`~features.image_store.ImageGridStore`
  (image id ``str(cocoid)``) and pads them: ``grids`` (B, H, W, C) float32, ``mask`` (B, H, W) bool.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vln.errors import DataFormatError

PAD = END = 0
BOS = 1
UNK = 2
SPECIALS = ("<end>", "<bos>", "UNK")
SPLIT_OF = {"train": "train", "restval": "train", "val": "val", "test": "test"}


@dataclass
class Vocab:
    """Word <-> id (see the module docstring for the reserved ids)."""
    words: list[str]

    def __post_init__(self):
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, tokens: list[str], max_len: int) -> list[int]:
        return [self.index.get(t, UNK) for t in tokens[:max_len]]

    def decode(self, ids) -> str:
        """Words up to the first end token (the start token is skipped)."""
        out = []
        for i in ids:
            i = int(i)
            if i == END:
                break
            if i != BOS:
                out.append(self.words[i])
        return " ".join(out)


def build_vocab(images: list[dict], threshold: int = 5) -> Vocab:
    """Words seen more than ``threshold`` times in the training (train + restval) captions."""
    counts = Counter(t for im in images if SPLIT_OF[im["split"]] == "train" for s in im["sentences"] for t in s["tokens"])
    kept = sorted((w for w, c in counts.items() if c > threshold), key=lambda w: (-counts[w], w))
    return Vocab(list(SPECIALS) + kept)


@dataclass
class EncodedCaptions:
    """The captions of a list of images as arrays (rows of image ``i``: start_ix[i]:end_ix[i])."""
    image_ids: np.ndarray        # (N,) int64 cocoid
    labels: np.ndarray           # (n_captions, max_len) int32, 0-padded
    label_length: np.ndarray     # (n_captions,) int32
    label_start_ix: np.ndarray   # (N,) int64
    label_end_ix: np.ndarray     # (N,) int64

    def refs(self, i: int) -> list[list[int]]:
        """Encoded references of image ``i`` (lists of ids, no end token)."""
        return [self.labels[r, :self.label_length[r]].tolist() for r in range(self.label_start_ix[i], self.label_end_ix[i])]


def encode_captions(images: list[dict], vocab: Vocab, max_len: int = 16, path="dataset_coco.json") -> EncodedCaptions:
    """Encode every caption of ``images`` (cut at ``max_len`` tokens); an image without captions
    is an error naming it."""
    rows, lengths, start, end = [], [], [], []
    for im in images:
        if not im["sentences"]:
            raise DataFormatError(path, f"cocoid {im['cocoid']}", "sentences", "is empty")
        start.append(len(rows))
        for s in im["sentences"]:
            ids = vocab.encode(s["tokens"], max_len)
            rows.append(ids + [PAD] * (max_len - len(ids)))
            lengths.append(len(ids))
        end.append(len(rows))
    return EncodedCaptions(np.array([im["cocoid"] for im in images], dtype=np.int64),
                           np.array(rows, dtype=np.int32).reshape(-1, max_len), np.array(lengths, dtype=np.int32),
                           np.array(start, dtype=np.int64), np.array(end, dtype=np.int64))


def read_splits(path: str | os.PathLike) -> dict[str, list[dict]]:
    """Karpathy images by split (``train`` holds train + restval), validated by
    :func:`vlcorpus.read_karpathy` (errors name the file, the cocoid and the field)."""
    from vlcorpus import read_karpathy

    out: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    seen = set()
    for im in read_karpathy(path):
        if not isinstance(im["cocoid"], int) or isinstance(im["cocoid"], bool):
            raise DataFormatError(path, f"cocoid {im['cocoid']!r}", "cocoid", "must be an integer")
        if im["cocoid"] in seen:
            raise DataFormatError(path, f"cocoid {im['cocoid']}", "cocoid", "appears twice")
        seen.add(im["cocoid"])
        out[SPLIT_OF[im["split"]]].append(im)
    return out


def write_cocotalk_h5(path: str | os.PathLike, enc: EncodedCaptions) -> None:
    """The ``cocotalk_label.h5`` layout (1-based inclusive start/end), written atomically (needs h5py)."""
    import h5py

    from vln.io_utils import atomic_path

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f["labels"] = enc.labels.astype(np.uint32)
        f["label_start_ix"] = enc.label_start_ix + 1
        f["label_end_ix"] = enc.label_end_ix
        f["label_length"] = enc.label_length.astype(np.uint32)


def read_cocotalk_h5(path: str | os.PathLike, image_ids) -> EncodedCaptions:
    """Read :func:`write_cocotalk_h5`'s layout back (rows of images in the file's order)."""
    import h5py

    with h5py.File(path, "r") as f:
        for key in ("labels", "label_start_ix", "label_end_ix", "label_length"):
            if key not in f:
                raise DataFormatError(path, None, key, "is missing")
        return EncodedCaptions(np.asarray(image_ids, dtype=np.int64), f["labels"][()].astype(np.int32),
                               f["label_length"][()].astype(np.int32), f["label_start_ix"][()].astype(np.int64) - 1,
                               f["label_end_ix"][()].astype(np.int64))


class CaptionBatcher:
    """Padded grid batches for image ids from an image grid store, kept in memory once read.

    Args:
        store: an open :class:`~features.image_store.ImageGridStore` (ids ``str(cocoid)``).
    """

    def __init__(self, store):
        self.store = store
        self._cache: dict[int, object] = {}

    def records(self, image_ids) -> list:
        out = []
        for i in image_ids:
            i = int(i)
            if i not in self._cache:
                if str(i) not in self.store:
                    raise DataFormatError(self.store.path, f"image {i}", None, "is not in the grid store")
                self._cache[i] = self.store.get_record(str(i))
            out.append(self._cache[i])
        return out

    def batch(self, image_ids) -> dict[str, np.ndarray]:
        """``grids`` (B, H, W, C) float32, ``mask`` (B, H, W) bool, ``pooled`` (B, D) or absent."""
        from features.image_store import pad_grids

        recs = self.records(image_ids)
        grids, mask = pad_grids(recs)
        out = {"grids": grids.astype(np.float32, copy=False), "mask": mask}
        if all(r.pooled is not None for r in recs):
            out["pooled"] = np.stack([r.pooled for r in recs]).astype(np.float32)
        return out


def corpus_paths(data_dir: str | os.PathLike) -> dict[str, Path]:
    """The Karpathy file and the COCO reference files of a data folder (``captions/`` or flat)."""
    d = Path(data_dir)
    sub = d / "captions" if (d / "captions" / "dataset_coco.json").exists() else d
    return {"karpathy": sub / "dataset_coco.json", "val": sub / "captions_val2014.json",
            "test": sub / "captions_test2015.json"}
