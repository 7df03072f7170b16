"""Readers of the corpus's own files: ``corpus.json``, scene graphs and 16-bit segment label maps."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vln.errors import DataFormatError
from vln.io_utils import read_json

CORPUS_META_FIELDS = ("generator", "format_version", "seed", "world", "image_size", "splits", "counts")


def read_corpus_meta(corpus_dir: str | os.PathLike) -> dict:
    """The ``corpus.json`` of a corpus (parameters, house splits, counts)."""
    path = Path(corpus_dir) / "corpus.json"
    if not path.exists():
        raise FileNotFoundError(f"no synthetic V&L corpus at {corpus_dir} (expected {path.name}); build one with "
                                "python scripts/make_vl_corpus.py")
    meta = read_json(path)
    if not isinstance(meta, dict):
        raise DataFormatError(path, None, None, "must be a JSON object")
    for key in CORPUS_META_FIELDS:
        if key not in meta:
            raise DataFormatError(path, None, key, "is missing")
    return meta


def read_scene_graphs(corpus_dir: str | os.PathLike, folder: str) -> dict[int, dict]:
    """Image id -> ground truth of the view (camera, room, segments with pixel areas) of one image folder."""
    path = Path(corpus_dir) / "scene_graphs" / f"{folder}.json"
    data = read_json(path)
    out = {}
    for key, rec in data.items():
        for f in ("file_name", "scan", "height", "width", "segments"):
            if f not in rec:
                raise DataFormatError(path, f"image {key}", f, "is missing")
        out[int(key)] = rec
    return out


def read_label_map(corpus_dir: str | os.PathLike, folder: str, file_name: str) -> np.ndarray:
    """(H, W) uint16 segment labels of an image (``labels/<folder>/<stem>.png``; 0 where nothing is hit)."""
    from PIL import Image

    path = Path(corpus_dir) / "labels" / folder / (Path(file_name).stem + ".png")
    try:
        with Image.open(path) as im:
            arr = np.asarray(im)
    except FileNotFoundError:
        raise FileNotFoundError(f"label map of {file_name} not found: {path}") from None
    except OSError as e:
        raise DataFormatError(path, file_name, "labels", f"cannot be decoded ({e})") from None
    if arr.ndim != 2:
        raise DataFormatError(path, file_name, "labels", f"must be a single-channel 16-bit PNG, got shape {arr.shape}")
    return arr.astype(np.uint16)
