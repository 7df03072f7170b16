"""Per-view semantic annotations of the synthetic world: writer and reader.

For every viewpoint and each of the 36 discrete views of the R2R convention (view ``ix``:
``ix // 12`` = elevation level -30/0/+30 degrees, ``ix % 12`` = heading step of 30 degrees from
heading 0; VFOV 60 degrees, 4:3), the annotation is the fraction of the view's ``VIEW_W x VIEW_H``
rays that land on each semantic class of :data:`vln.synthetic.vocab.CLASSES`:

* ``room:<type>`` - floor, walls or ceiling of a room of that type,
* ``object:<type>`` - an object of that type (``door`` frames and ``stairs`` included),
* ``colour:<name>`` - an object of that colour (so an object ray counts once as its type and once
  as its colour; room and object columns together sum to the fraction of rays that hit anything).

Rays are looked up in the semantic skybox (the box index of every skybox pixel, rendered at
``SEMANTIC_FACE_SIZE``) rather than cast again: the view rays are the same for every viewpoint
because every synthetic pose has the same rotation.

On disk, beside the world::

    semantics/classes.json           the K class names, in column order
    semantics/<scan>_views.npz       viewpoint_ids (V,) str, fractions (V, 36, K) float32
    semantics/viewpoint_rooms.json   scan -> viewpoint -> {room, room_type, floor, kind[, door_rooms]}
    semantics/layout.json            scan -> rooms, doors and objects (type, colour, box)

Stable API (the ``synthetic_semantic`` encoder is built on it)::

    sem = read_view_semantics(world_dir)
    sem.classes                   # list[str], K names
    sem.get(scan_id, viewpoint)   # (36, K) float32 fractions in [0, 1]
    sem.keys()                    # list[(scan_id, viewpoint_id)]
"""
from __future__ import annotations

import io
import json
import logging
import math
import os
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import DataFormatError, UnknownScanError, UnknownViewpointError
from ..io_utils import atomic_path
from ..skybox import SYNTHETIC_ROTATION, direction_to_face, skybox_to_world, view_directions
from .vocab import CLASSES

logger = logging.getLogger(__name__)

N_VIEWS = 36
VIEW_W, VIEW_H = 32, 24  #: rays per view (4:3)
VFOV = math.radians(60.0)
SEMANTIC_FACE_SIZE = 32  #: resolution of the skybox the annotations are read from (about one pixel per view ray)
SEMANTICS_DIR = "semantics"


def view_angles(ix: int) -> tuple[float, float]:
    """(heading, elevation) in radians of discrete view ``ix`` (0..35), MatterSim's viewIndex."""
    return (ix % 12) * math.radians(30.0), (ix // 12 - 1) * math.radians(30.0)


@lru_cache(maxsize=4)
def view_pixel_index(face_size: int) -> np.ndarray:
    """(36, VIEW_H * VIEW_W) int64: flat index into a (6, S, S) skybox of each view ray's pixel."""
    out = np.empty((N_VIEWS, VIEW_H * VIEW_W), dtype=np.int64)
    to_world = skybox_to_world(SYNTHETIC_ROTATION)  # orthogonal: skybox = to_world.T @ world
    for ix in range(N_VIEWS):
        world = view_directions(*view_angles(ix), VFOV, VIEW_W, VIEW_H).reshape(-1, 3)
        k, t, s = direction_to_face(world @ to_world)
        row = np.minimum((t * face_size).astype(np.int64), face_size - 1)
        col = np.minimum((s * face_size).astype(np.int64), face_size - 1)
        out[ix] = (k * face_size + row) * face_size + col
    return out


def view_box_counts(box: np.ndarray, n_boxes: int) -> np.ndarray:
    """How many rays of each of the 36 views land on each box.

    Args:
        box: (..., 6, S, S) int box index per skybox pixel (-1 where nothing is hit).
        n_boxes: B, the number of boxes of the scene.

    Returns:
        (..., 36, B + 1) int64 counts; column 0 counts misses, column b + 1 box b. Each row sums
        to ``VIEW_W * VIEW_H``.
    """
    box = np.asarray(box)
    if box.ndim < 3 or box.shape[-3] != 6 or box.shape[-1] != box.shape[-2]:
        raise ValueError(f"expected (..., 6, S, S) semantic skyboxes, got shape {box.shape}")
    lead = box.shape[:-3]
    flat = box.reshape(-1, 6 * box.shape[-1] * box.shape[-1]).astype(np.int32, copy=False)
    n, width = len(flat), n_boxes + 1
    rays = np.take(flat, view_pixel_index(box.shape[-1]), axis=1)  # (n, 36, VIEW_H * VIEW_W)
    rays += (np.arange(n * N_VIEWS, dtype=np.int32).reshape(n, N_VIEWS, 1) * width + 1)
    counts = np.bincount(rays.reshape(-1), minlength=n * N_VIEWS * width)
    return counts.reshape(*lead, N_VIEWS, width)


def _one_hot(columns: list[np.ndarray], n_rows: int, n_cols: int) -> np.ndarray:
    """(n_rows + 1, n_cols) float64 matrix with a 1 at [b + 1, c[b]] for each array c (c >= 0)."""
    out = np.zeros((n_rows + 1, n_cols))
    for c in columns:
        c = np.asarray(c)
        rows = np.flatnonzero(c >= 0)
        np.add.at(out, (rows + 1, c[rows]), 1.0)
    return out


def view_fractions(box: np.ndarray, cls: np.ndarray, colour_cls: np.ndarray) -> np.ndarray:
    """Per-view class fractions from semantic skyboxes.

    Args:
        box: (..., 6, S, S) int box index per skybox pixel (-1 where nothing is hit).
        cls: (B,) int semantic class of each box; colour_cls: (B,) int colour class or -1.

    Returns:
        (..., 36, K) float32 fractions in [0, 1].
    """
    counts = view_box_counts(box, len(cls))
    weights = _one_hot([cls, colour_cls], len(cls), len(CLASSES)) / (VIEW_H * VIEW_W)
    return (counts @ weights).astype(np.float32)


def instance_fractions(box: np.ndarray, instance: np.ndarray, n_objects: int) -> np.ndarray:
    """(..., n_objects) float64: fraction of all 36 x VIEW_H x VIEW_W view rays that see each object.

    ``box`` is (..., 6, S, S) as in :func:`view_fractions`; ``instance`` (B,) the object id of
    each box (-1 for walls, floors and ceilings).
    """
    counts = view_box_counts(box, len(instance)).sum(axis=-2)
    return counts @ _one_hot([instance], len(instance), n_objects) / (N_VIEWS * VIEW_H * VIEW_W)


def view_semantics(box: np.ndarray, cls: np.ndarray, colour_cls: np.ndarray, instance: np.ndarray,
                   n_objects: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`view_fractions` and :func:`instance_fractions` of the same skyboxes, counting rays once."""
    counts = view_box_counts(box, len(cls))
    fractions = (counts @ (_one_hot([cls, colour_cls], len(cls), len(CLASSES)) / (VIEW_H * VIEW_W))).astype(np.float32)
    visibility = counts.sum(axis=-2) @ _one_hot([instance], len(instance), n_objects) / (N_VIEWS * VIEW_H * VIEW_W)
    return fractions, visibility


def _npz_bytes(arrays: dict) -> bytes:
    """An ``.npz`` archive with fixed timestamps, so the same arrays give the same bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            body = io.BytesIO()
            np.lib.format.write_array(body, np.ascontiguousarray(arr), allow_pickle=False)
            zf.writestr(info, body.getvalue())
    return buf.getvalue()


def write_scan_semantics(world_dir: str | os.PathLike, scan_id: str, viewpoint_ids: list[str], fractions: np.ndarray) -> Path:
    """Write ``semantics/<scan>_views.npz`` atomically; ``fractions`` is (V, 36, K) float32."""
    fractions = np.asarray(fractions, dtype=np.float32)
    if fractions.shape != (len(viewpoint_ids), N_VIEWS, len(CLASSES)):
        raise ValueError(f"fractions has shape {fractions.shape}, expected ({len(viewpoint_ids)}, {N_VIEWS}, {len(CLASSES)})")
    path = Path(world_dir) / SEMANTICS_DIR / f"{scan_id}_views.npz"
    data = _npz_bytes({"viewpoint_ids": np.array(viewpoint_ids, dtype="<U32"), "fractions": fractions})
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


@dataclass(frozen=True, eq=False)
class ViewSemantics:
    """What each of the 36 views of every viewpoint sees.

    Attributes:
        classes: the K class names (columns), e.g. ``room:kitchen``, ``object:sofa``, ``colour:red``.
        directory: the ``semantics`` folder it was read from.
    """

    classes: list
    directory: Path
    _data: dict  # scan -> (viewpoint -> row, (V, 36, K) float32)

    def get(self, scan_id: str, viewpoint_id: str) -> np.ndarray:
        """(36, K) float32 fractions of view rays hitting each class (rows: view index 0..35)."""
        try:
            rows, fr = self._data[scan_id]
        except KeyError:
            raise UnknownScanError(f"scan {scan_id!r} has no semantic annotations in {self.directory}") from None
        try:
            return fr[rows[viewpoint_id]]
        except KeyError:
            raise UnknownViewpointError(
                f"viewpoint {viewpoint_id!r} of scan {scan_id!r} has no semantic annotations in {self.directory}"
            ) from None

    def keys(self) -> list[tuple[str, str]]:
        """Every annotated (scan_id, viewpoint_id), scans sorted, viewpoints in file order."""
        return [(s, v) for s in sorted(self._data) for v in self._data[s][0]]

    def scans(self) -> list[str]:
        """The annotated scan ids, sorted."""
        return sorted(self._data)

    def __len__(self) -> int:
        return sum(len(rows) for rows, _ in self._data.values())


def read_view_semantics(world_dir: str | os.PathLike) -> ViewSemantics:
    """Read and validate the annotations of a synthetic world (``<world_dir>/semantics``).

    Raises:
        FileNotFoundError: no annotations in ``world_dir``.
        DataFormatError: a file has the wrong classes, shape, dtype or values, naming the file.
    """
    d = Path(world_dir) / SEMANTICS_DIR
    cpath = d / "classes.json"
    if not cpath.exists():
        raise FileNotFoundError(f"no semantic annotations at {d} (expected {cpath.name}); "
                                "generate a world with scripts/make_world.py")
    try:
        classes = json.loads(cpath.read_text())
    except json.JSONDecodeError as e:
        raise DataFormatError(cpath, None, None, f"is not valid JSON ({e})") from None
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes) or len(set(classes)) != len(classes):
        raise DataFormatError(cpath, None, None, "must be a JSON list of distinct class names")
    data = {}
    for path in sorted(d.glob("*_views.npz")):
        scan = path.name[: -len("_views.npz")]
        try:
            with np.load(path, allow_pickle=False) as z:
                ids, fr = z["viewpoint_ids"], z["fractions"]
        except (KeyError, ValueError, zipfile.BadZipFile, OSError) as e:
            raise DataFormatError(path, None, None, f"is not a readable annotation archive ({e})") from None
        if fr.dtype != np.float32 or fr.ndim != 3 or fr.shape[1:] != (N_VIEWS, len(classes)) or len(ids) != len(fr):
            raise DataFormatError(path, None, "fractions",
                                  f"must be float32 of shape ({len(ids)}, {N_VIEWS}, {len(classes)}), got {fr.dtype} {fr.shape}")
        bad = np.argwhere(~((fr >= 0) & (fr <= 1 + 1e-6)))
        if len(bad):
            v, ix, k = bad[0]
            raise DataFormatError(path, f"{v} ({ids[v]})", "fractions",
                                  f"view {ix}, class {classes[k]!r} is {fr[v, ix, k]}, outside [0, 1]")
        data[scan] = ({str(v): i for i, v in enumerate(ids)}, fr)
    if not data:
        raise FileNotFoundError(f"no <scan>_views.npz annotation files in {d}")
    return ViewSemantics(classes=list(classes), directory=d, _data=data)


def read_viewpoint_rooms(world_dir: str | os.PathLike) -> dict:
    """``scan -> viewpoint -> {room, room_type, floor, kind[, door_rooms]}`` of a synthetic world."""
    path = Path(world_dir) / SEMANTICS_DIR / "viewpoint_rooms.json"
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataFormatError(path, None, None, f"is not valid JSON ({e})") from None


def read_layout(world_dir: str | os.PathLike) -> dict:
    """``scan -> {floors, rooms, doors, objects}`` of a synthetic world (see ``world.layout_json``)."""
    path = Path(world_dir) / SEMANTICS_DIR / "layout.json"
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataFormatError(path, None, None, f"is not valid JSON ({e})") from None
