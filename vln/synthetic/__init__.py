"""A synthetic Matterport-format world: houses, graphs, skyboxes, R2R/RxR episodes, annotations.

Real Matterport3D data needs a licence and tens of GB; this generator writes the same on-disk
formats so every command runs offline (``python scripts/make_world.py --out data/synthetic``).

Public API:
    generate_world(out_dir, houses=60, seed=0, face_size=32, ...) -> summary dict
    default_data_dir() -> Path  (``$CLIPVIL_DATA_DIR``, else ``<repo>/data/synthetic``)
    read_view_semantics(world_dir) -> ViewSemantics  (per-view class fractions, (36, K) per viewpoint)
"""
from __future__ import annotations

import os
from pathlib import Path

from .semantics import ViewSemantics, read_layout, read_view_semantics, read_viewpoint_rooms
from .vocab import CLASSES

DATA_DIR_ENV = "CLIPVIL_DATA_DIR"
DEFAULT_WORLD_SUBDIR = Path("data") / "synthetic"
#: ``format_version`` written to ``world.json``; raised whenever equal seeds stop giving equal files.
#: 2: instruction turns are relative to the simulator's heading (30 degree views), and a room crossed
#: between two doorways is named.
FORMAT_VERSION = 2


def read_world_meta(world_dir) -> dict:
    """The ``world.json`` of a generated world (seed, houses, face size, paths per house...).

    Raises:
        DataFormatError: the file is not JSON or lacks a generator parameter, naming the file and field.
    """
    import json

    from ..errors import DataFormatError

    path = Path(world_dir) / "world.json"
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataFormatError(path, None, None, f"is not JSON: {e}") from None
    if not isinstance(meta, dict):
        raise DataFormatError(path, None, None, "must be a JSON object")
    for key in ("format_version", "houses", "seed", "face_size", "paths_per_house"):
        if key not in meta:
            raise DataFormatError(path, None, key, "is missing")
    return meta


def stale_world_message(world_dir) -> str | None:
    """Why the world in ``world_dir`` is from an older generator, with the command that rebuilds it; None if current."""
    meta = read_world_meta(world_dir)
    version = meta["format_version"]
    if version == FORMAT_VERSION:
        return None
    paths = " ".join(f"--{split.replace('_', '-')}-paths {n}" for split, n in meta["paths_per_house"].items())
    return (f"the synthetic world at {world_dir} has format_version {version}; this generator writes "
            f"{FORMAT_VERSION} (see vln.synthetic.FORMAT_VERSION): rebuild it with python scripts/make_world.py "
            f"--out {world_dir} --houses {meta['houses']} --seed {meta['seed']} --face-size {meta['face_size']} "
            f"{paths} --overwrite")


def default_data_dir() -> Path:
    """The data root commands use when none is given.

    ``$CLIPVIL_DATA_DIR`` if set; else ``<repo>/data/synthetic`` when running from a source
    checkout (the folder holding ``setup.py``); else ``./data/synthetic`` under the working
    directory.
    """
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parents[2]
    if (repo / "setup.py").exists():
        return repo / DEFAULT_WORLD_SUBDIR
    return Path.cwd() / DEFAULT_WORLD_SUBDIR


def generate_world(out_dir, houses: int | None = None, seed: int = 0, face_size: int | None = None, **kwargs) -> dict:
    """Generate a synthetic world; see :func:`vln.synthetic.world.generate_world`."""
    from . import world  # imports the renderer and dataset writers only when generating

    return world.generate_world(out_dir, houses=world.DEFAULT_HOUSES if houses is None else houses, seed=seed,
                                face_size=world.DEFAULT_FACE_SIZE if face_size is None else face_size, **kwargs)


def regenerate_world(world_dir) -> dict:
    """Rebuild the world in ``world_dir`` with this generator and the parameters it was made with.

    Reads ``houses``, ``seed``, ``face_size`` and ``paths_per_house`` from its ``world.json`` and
    overwrites the generated folders (files it did not generate, such as ``features/``, stay).
    """
    meta = read_world_meta(world_dir)
    return generate_world(world_dir, houses=meta["houses"], seed=meta["seed"], face_size=meta["face_size"],
                          paths_per_house=meta["paths_per_house"], overwrite=True)


__all__ = ["generate_world", "regenerate_world", "read_world_meta", "stale_world_message", "FORMAT_VERSION",
           "default_data_dir", "read_view_semantics", "ViewSemantics", "read_viewpoint_rooms", "read_layout", "CLASSES",
           "DATA_DIR_ENV"]
