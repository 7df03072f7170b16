"""Convert grid features between our store and the layouts of :mod:`features.grid_formats`.

``python scripts/convert_grid_features.py SRC DST [--from F] [--to F] [--encoder NAME]``. The
format is detected from the path when not given: a directory with ``index.json`` + ``meta.json``
is ``grids``, ``*.lmdb`` (or a folder with ``data.mdb``) is ``lmdb``, a folder of ``.npz`` files is
``npz`` and one of ``.npy`` files is ``npy``; an output path ending in ``.grids`` / ``.lmdb`` picks
that format. Records stream one at a time, so stores larger than memory convert.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from vln.errors import DataFormatError

from .grid_formats import LmdbGrids, NpyDirGrids, NpzDirGrids, write_lmdb, write_npy_dir, write_npz_dir
from .image_store import ImageGridStore
from .image_store_writer import write_image_store

FORMATS = ("grids", "npy", "npz", "lmdb")


def detect_format(path, for_output: bool = False) -> str:
    """The layout of ``path`` (see the module docstring); ValueError when it cannot tell."""
    p = Path(path)
    if p.suffix in (".grids", ".lmdb"):
        return p.suffix[1:]
    if not for_output and p.is_dir():
        if (p / "index.json").exists() and (p / "meta.json").exists():
            return "grids"
        if (p / "data.mdb").exists():
            return "lmdb"
        for suffix, fmt in ((".npz", "npz"), (".npy", "npy")):
            if next(p.glob(f"*{suffix}"), None) is not None:
                return fmt
    raise ValueError(f"{path}: cannot tell the grid feature layout; pass --from / --to (one of {', '.join(FORMATS)})")


def open_grids(path, fmt: str | None = None, fc_dir=None):
    """A reader of any supported layout (``ids()``, ``get_record``, ``iter_records``, ``meta``)."""
    fmt = fmt or detect_format(path)
    if fmt == "grids":
        return ImageGridStore(path)
    if fmt == "npy":
        return NpyDirGrids(path, fc_dir=fc_dir)
    if fmt == "npz":
        return NpzDirGrids(path, fc_dir=fc_dir)
    if fmt == "lmdb":
        return LmdbGrids(path)
    raise ValueError(f"unknown grid feature format {fmt!r}; known: {', '.join(FORMATS)}")


def _encoder_meta(reader, encoder: str | None) -> dict:
    known = reader.meta.get("encoder")
    if encoder is None:
        if known is None:
            raise DataFormatError(reader.path, None, "encoder", "the layout records no encoder: pass --encoder NAME")
        return known
    if known is not None and known.get("name") != encoder:
        raise DataFormatError(reader.path, None, "encoder.name", f"is {known.get('name')!r}, not {encoder!r}")
    if known is not None:
        return known
    from .registry import ENCODERS

    arch = ENCODERS.get(encoder).architecture if encoder in ENCODERS else None
    return {"name": encoder, "architecture": arch, "weights": None, "weights_sha256": None, "random": None}


def convert_grids(src, dst, *, src_format: str | None = None, dst_format: str | None = None,
                  encoder: str | None = None, dtype: str = "float16", fc_dir=None, dst_fc_dir=None) -> Path:
    """Copy every record of ``src`` to ``dst`` (streaming). Returns the written path.

    Args:
        encoder: the encoder name to record when ``src`` carries no metadata (required then for a
            ``grids`` output); checked against the metadata when it does.
        dtype: storage dtype of a ``grids`` output (the foreign layouts are float32).
        fc_dir / dst_fc_dir: pooled-vector folders of an ``npy`` / ``npz`` source / output.
    """
    reader = open_grids(src, src_format, fc_dir=fc_dir)
    dst_format = dst_format or detect_format(dst, for_output=True)
    ids = reader.ids()
    if not ids:
        raise DataFormatError(src, None, None, "holds no images")
    first_id, first = next(reader.iter_records(ids[:1]))
    meta = {"encoder": _encoder_meta(reader, encoder) if dst_format == "grids" or encoder or reader.meta.get("encoder")
            else None, "preset": reader.meta.get("preset", {"name": "unknown"}),
            "channels": int(first.grid.shape[-1]), "pooled_dim": None if first.pooled is None else len(first.pooled),
            "has_mask": first.mask is not None}
    records = itertools.chain([(first_id, first)], reader.iter_records(ids[1:]))
    try:
        if dst_format == "grids":
            return write_image_store(dst, records, channels=meta["channels"], encoder=meta["encoder"],
                                     preset=meta["preset"], dtype=dtype, pooled_dim=meta["pooled_dim"],
                                     has_mask=meta["has_mask"])
        meta["dtype"] = np.dtype(np.float32).name
        if dst_format == "npy":
            return write_npy_dir(dst, records, meta, fc_dir=dst_fc_dir)
        if dst_format == "npz":
            return write_npz_dir(dst, records, meta, fc_dir=dst_fc_dir)
        if dst_format == "lmdb":
            return write_lmdb(dst, records, meta)
    finally:
        reader.close()
    raise ValueError(f"unknown grid feature format {dst_format!r}; known: {', '.join(FORMATS)}")
