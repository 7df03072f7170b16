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


def stale_world_message(world_dir) -> str | None:
    """Why the world in ``world_dir`` is from an older generator (and the command that rebuilds it), or None."""
    import json

    meta = json.loads((Path(world_dir) / "world.json").read_text())
    version = meta.get("format_version")
    if version == FORMAT_VERSION:
        return None
    return (f"the synthetic world at {world_dir} has format_version {version}; this generator writes "
            f"{FORMAT_VERSION} (see vln.synthetic.FORMAT_VERSION): rebuild it with python scripts/make_world.py "
            f"--out {world_dir} --houses {meta.get('houses')} --seed {meta.get('seed')} --overwrite")


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
    import json

    meta = json.loads((Path(world_dir) / "world.json").read_text())
    return generate_world(world_dir, houses=meta["houses"], seed=meta["seed"], face_size=meta["face_size"],
                          paths_per_house=meta["paths_per_house"], overwrite=True)


__all__ = ["regenerate_world", "generate_world", "default_data_dir", "stale_world_message", "FORMAT_VERSION", "read_view_semantics", "ViewSemantics", "read_viewpoint_rooms",
           "read_layout", "CLASSES", "DATA_DIR_ENV"]
