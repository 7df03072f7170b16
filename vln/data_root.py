"""Where the data lives: the default data root, what a root must hold, and the default world.

Every command and environment that takes a data directory resolves it here
(:func:`prepare_data_dir`):

* no directory given: the default location (:func:`vln.synthetic.default_data_dir`,
  ``$CLIPVIL_DATA_DIR`` or ``<repo>/data/synthetic``). On first use the synthetic world is
  generated there, once, under a lock (:mod:`vln.locks`) so that runs started together wait for
  the first one instead of building it twice;
* a directory given: it must already hold the data. Nothing is generated into it (a mistyped or
  empty ``--data-dir`` is never filled with a synthetic world); what is missing is an error that
  lists, in order, the connectivity folder and the split files, each with where it comes from.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from .errors import VLNError
from .locks import build_lock

logger = logging.getLogger(__name__)

#: Written into the default location while the world is being generated there; a folder holding
#: it (and no ``world.json``) is a build killed half-way, safe to generate over.
BUILDING_MARKER = ".generating"
#: Where each piece of a real data root comes from (printed with what is missing).
SOURCES = {
    "connectivity": "the Matterport3D navigation graphs, <scan>_connectivity.json and scans.txt from "
                    "Matterport3DSimulator's connectivity/ folder",
    "r2r": "the R2R release, R2R_<split>.json",
    "rxr": "the RxR release, rxr_<split>_guide.jsonl.gz",
}


class DataNotFoundError(VLNError, FileNotFoundError):
    """A data root lacks files it needs; the message lists them with where each comes from."""


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path:
    """``data_dir`` as a Path, or the default location when None."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    from .synthetic import default_data_dir

    return Path(default_data_dir())


def has_world(data_dir: str | os.PathLike) -> bool:
    """True when ``data_dir`` holds a complete synthetic world (``world.json`` is written last)."""
    return (Path(data_dir) / "world.json").is_file()


def missing_data(fmt: str, data_dir: str | os.PathLike, splits=("train",),
                 connectivity_dir: str | os.PathLike | None = None) -> list[str]:
    """What ``data_dir`` lacks for ``splits`` of dataset format ``fmt``, connectivity first.

    Args:
        fmt: ``"r2r"`` or ``"rxr"`` (``vln.datasets.DATASETS``).
        data_dir: the data root.
        splits: split names whose files must exist.
        connectivity_dir: the graphs, when not ``<data_dir>/connectivity``.

    Returns:
        one line per missing piece (the path and where it comes from); empty when nothing is missing.
    """
    from .datasets import DATASETS

    data_dir = Path(data_dir)
    out = []
    conn = Path(connectivity_dir) if connectivity_dir else data_dir / "connectivity"
    if not (conn.is_dir() and any(conn.glob("*_connectivity.json"))):
        out.append(f"the connectivity folder {conn}: {SOURCES['connectivity']}")
    spec = DATASETS.get(fmt)
    for split in splits:
        expected = data_dir / spec.folder / spec.patterns[0].format(split=split)
        try:
            spec.split_file(data_dir, split)
        except FileNotFoundError:
            out.append(f"the {split} split file {expected}: {SOURCES.get(fmt, fmt)}")
    return out


def require_data(fmt: str, data_dir: str | os.PathLike, splits=("train",),
                 connectivity_dir: str | os.PathLike | None = None, hint: str = "") -> None:
    """Raise :class:`DataNotFoundError` listing what ``data_dir`` lacks (see :func:`missing_data`)."""
    missing = missing_data(fmt, data_dir, splits, connectivity_dir)
    if not missing:
        return
    what = "does not exist" if not Path(data_dir).exists() else "is incomplete"
    lines = [f"the data directory {data_dir} {what}; it needs:"] + [f"  - {m}" for m in missing]
    if hint:
        lines.append(hint)
    raise DataNotFoundError("\n".join(lines))


def default_world_hint(data_dir: Path) -> str:
    """How to get a synthetic world into ``data_dir`` (or use the default one)."""
    from .synthetic import default_data_dir

    return (f"or make a synthetic world there: python scripts/make_world.py --out {data_dir} (or leave the data "
            f"directory out: the default world at {default_data_dir()} is built on first use)")


def world_can_be_built_at(data_dir: str | os.PathLike) -> bool:
    """True when generating a world into ``data_dir`` overwrites nothing of the user's: the folder is
    absent, empty, or holds the marker of a build killed half-way (:data:`BUILDING_MARKER`)."""
    data_dir = Path(data_dir)
    return not data_dir.exists() or not any(data_dir.iterdir()) or (data_dir / BUILDING_MARKER).exists()


def ensure_default_world(data_dir: str | os.PathLike, **world_kwargs) -> bool:
    """Generate the synthetic world at the default location if it is not there; True if this call built it.

    ``world_kwargs`` go to :func:`vln.synthetic.generate_world` (default: the default world;
    tests pass a tiny one).

    Runs under the build lock of ``data_dir``: a second process started meanwhile waits and then
    finds the world. A build killed half-way (marker present, no ``world.json``) is generated
    again from scratch, never trusted. A folder holding other files is never written over.

    Raises:
        DataNotFoundError: ``data_dir`` holds files but no world (see :func:`world_can_be_built_at`).
    """
    data_dir = Path(data_dir)
    if has_world(data_dir):
        return False
    with build_lock(data_dir, f"the default synthetic world at {data_dir}"):
        if has_world(data_dir):
            return False
        if not world_can_be_built_at(data_dir):
            raise DataNotFoundError(
                f"the data directory {data_dir} holds files but no synthetic world (world.json), so no world is "
                f"generated into it; build one elsewhere (python scripts/make_world.py --out DIR) or point "
                f"$CLIPVIL_DATA_DIR / --data-dir at a complete data root")
        from .synthetic import generate_world

        logger.warning("building the default synthetic world at %s on first use (a few seconds); "
                       "later runs reuse it", data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        marker = data_dir / BUILDING_MARKER
        marker.touch()
        generate_world(data_dir, **world_kwargs)
        marker.unlink()
        return True


def warn_if_stale(data_dir: Path) -> None:
    """Log why a world made by an older generator should be rebuilt (with the command)."""
    if has_world(data_dir):
        from .synthetic import stale_world_message

        stale = stale_world_message(data_dir)
        if stale:
            logger.warning(stale)


def prepare_data_dir(fmt: str, data_dir: str | os.PathLike | None = None, splits=("train",),
                     connectivity_dir: str | os.PathLike | None = None, build_default: bool = True,
                     suggest_world: bool = True) -> Path:
    """The data root of a command or environment, checked (and at the default location built) first.

    Args:
        fmt: dataset format of the episodes (``"r2r"`` / ``"rxr"``).
        data_dir: the directory given by the user, or None for the default location.
        splits: splits that will be read.
        connectivity_dir: the graphs, when not ``<data_dir>/connectivity``.
        build_default: generate the synthetic world at the default location when missing
            (False: report it with the command that builds it).
        suggest_world: name ``make_world.py`` as a way to fill a given directory that lacks data
            (False for real datasets).

    Raises:
        DataNotFoundError: a given directory lacks something (nothing is generated into it), or
            the default world is missing and ``build_default`` is False.
    """
    root = resolve_data_dir(data_dir)
    if data_dir is None and not has_world(root) and world_can_be_built_at(root):
        if not build_default:
            raise DataNotFoundError(f"no synthetic world at the default location {root}; build it with: "
                                    f"python scripts/make_world.py --out {root}")
        ensure_default_world(root)
    hint = default_world_hint(root) if suggest_world and data_dir is not None and not has_world(root) else ""
    require_data(fmt, root, splits, connectivity_dir, hint)
    warn_if_stale(root)
    return root
