"""Reader, validator and writer of Matterport3D ``<scan>_connectivity.json`` files.

The format (one JSON list per scan, one record per viewpoint, index order = file order):
``image_id`` (str), ``pose`` (16 numbers, row-major 4x4 camera-to-world matrix, metres),
``included`` (bool), ``visible`` and ``unobstructed`` (one bool per viewpoint of the scan) and
``height`` (metres). See ``shared/reference/mattersim_semantics.md``.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import DataFormatError
from .io_utils import atomic_write_text, read_json

REQUIRED_FIELDS = ("image_id", "pose", "included", "unobstructed")


@dataclass(frozen=True, eq=False)
class ScanRecords:
    """The validated content of one connectivity file, as arrays.

    Attributes:
        scan_id: the scan (building) id.
        path: the file it was read from.
        viewpoint_ids: all viewpoint ids in file order (excluded ones too), length N.
        included: (N,) bool.
        poses: (N, 16) float64, the raw row-major pose numbers as written in the file.
        unobstructed: (N, N) bool, the raw navigability matrix.
        visible: (N, N) bool, line of sight (not used for navigation).
        heights: (N,) float64, camera height above the floor in metres (NaN if absent).
    """

    scan_id: str
    path: str
    viewpoint_ids: tuple
    included: np.ndarray
    poses: np.ndarray
    unobstructed: np.ndarray
    visible: np.ndarray
    heights: np.ndarray
    index: dict = field(init=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "index", {v: i for i, v in enumerate(self.viewpoint_ids)})


def _bool_row(path, rec, name, row, n):
    if not isinstance(row, list) or len(row) != n:
        got = len(row) if isinstance(row, list) else type(row).__name__
        raise DataFormatError(path, rec, name, f"must be a list of {n} booleans (one per viewpoint), got {got}")
    for v in row:
        if not isinstance(v, bool):
            raise DataFormatError(path, rec, name, f"must hold booleans, found {v!r}")
    return row


def parse_connectivity(data, path: str | os.PathLike, scan_id: str) -> ScanRecords:
    """Validate the decoded JSON of a connectivity file and turn it into arrays.

    Raises:
        DataFormatError: naming the file, the viewpoint (index and id) and the field.
    """
    path = str(path)
    if not isinstance(data, list) or not data:
        raise DataFormatError(path, None, None, "must be a non-empty JSON list of viewpoints")
    n = len(data)
    ids, included, poses, unob, vis, heights = [], [], [], [], [], []
    seen = {}
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise DataFormatError(path, i, None, "must be a JSON object")
        vid = item.get("image_id")
        rec = f"{i} ({vid})" if isinstance(vid, str) else i
        for name in REQUIRED_FIELDS:
            if name not in item:
                raise DataFormatError(path, rec, name, "is missing")
        if not isinstance(vid, str) or not vid:
            raise DataFormatError(path, rec, "image_id", "must be a non-empty string")
        if vid in seen:
            raise DataFormatError(path, rec, "image_id", f"duplicates record {seen[vid]}")
        seen[vid] = i
        if not isinstance(item["included"], bool):
            raise DataFormatError(path, rec, "included", "must be a boolean")
        pose = item["pose"]
        if not isinstance(pose, list) or len(pose) != 16:
            got = len(pose) if isinstance(pose, list) else type(pose).__name__
            raise DataFormatError(path, rec, "pose", f"must hold 16 numbers (a row-major 4x4 matrix), got {got}")
        for v in pose:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise DataFormatError(path, rec, "pose", f"must hold finite numbers, found {v!r}")
        row_u = _bool_row(path, rec, "unobstructed", item["unobstructed"], n)
        row_v = _bool_row(path, rec, "visible", item["visible"], n) if "visible" in item else [False] * n
        h = item.get("height", float("nan"))
        if isinstance(h, bool) or not isinstance(h, (int, float)):
            raise DataFormatError(path, rec, "height", f"must be a number, found {h!r}")
        ids.append(vid)
        included.append(item["included"])
        poses.append(pose)
        unob.append(row_u)
        vis.append(row_v)
        heights.append(h)
    unobstructed = np.array(unob, dtype=bool)
    asym = np.argwhere(unobstructed != unobstructed.T)
    if len(asym):
        i, j = (int(x) for x in asym[0])
        raise DataFormatError(
            path, f"{i} ({ids[i]})", "unobstructed",
            f"is not symmetric: entry {j} ({ids[j]}) is {bool(unobstructed[i, j])} "
            f"but the reverse entry is {bool(unobstructed[j, i])}",
        )
    return ScanRecords(
        scan_id=scan_id,
        path=path,
        viewpoint_ids=tuple(ids),
        included=np.array(included, dtype=bool),
        poses=np.array(poses, dtype=np.float64),
        unobstructed=unobstructed,
        visible=np.array(vis, dtype=bool),
        heights=np.array(heights, dtype=np.float64),
    )


def connectivity_path(directory: str | os.PathLike, scan_id: str) -> Path:
    """Where the graph of ``scan_id`` lives inside a connectivity directory."""
    return Path(directory) / f"{scan_id}_connectivity.json"


def read_connectivity(path: str | os.PathLike, scan_id: str | None = None) -> ScanRecords:
    """Read and validate one ``<scan>_connectivity.json`` file."""
    path = Path(path)
    if scan_id is None:
        scan_id = path.name[: -len("_connectivity.json")] if path.name.endswith("_connectivity.json") else path.stem
    try:
        data = read_json(path)
    except UnicodeDecodeError as e:
        raise DataFormatError(path, None, None, f"is not valid JSON ({e})") from None
    return parse_connectivity(data, path, scan_id)


def read_scans_txt(directory: str | os.PathLike) -> list[str]:
    """The scan ids listed in ``scans.txt`` (whitespace separated, as MatterSim reads it).

    Falls back to the ``*_connectivity.json`` files present when there is no ``scans.txt``.

    Raises:
        FileNotFoundError: ``directory`` does not exist (a mistyped path must not read as "no scans").
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"connectivity directory {directory} does not exist")
    txt = directory / "scans.txt"
    if txt.exists():
        return txt.read_text().split()
    return sorted(p.name[: -len("_connectivity.json")] for p in directory.glob("*_connectivity.json"))


def write_connectivity(path: str | os.PathLike, records: list[dict]) -> None:
    """Write a connectivity file atomically (used by the synthetic-world generator)."""
    atomic_write_text(path, json.dumps(records))
