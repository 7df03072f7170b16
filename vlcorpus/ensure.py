"""Build the corpus on first use, once, even when several processes ask at the same time."""
from __future__ import annotations

import logging
import os
from pathlib import Path

from vln.locks import build_lock

from .build import CORPUS_FORMAT_VERSION, DEFAULT_IMAGE_SIZE, make_vl_corpus, parse_image_size
from .reading import read_corpus_meta

logger = logging.getLogger(__name__)

#: Environment variable naming the corpus folder used when none is given.
VL_DIR_ENV = "CLIPVIL_VL_DIR"
CORPUS_SUBDIR = "synthetic_vl"


def default_corpus_dir(world_dir: str | os.PathLike | None = None) -> Path:
    """``$CLIPVIL_VL_DIR`` if set, else ``synthetic_vl`` beside the world (``data/synthetic_vl``)."""
    env = os.environ.get(VL_DIR_ENV)
    if env:
        return Path(env).expanduser()
    if world_dir is None:
        from vln.synthetic import default_data_dir

        world_dir = default_data_dir()
    return Path(world_dir).parent / CORPUS_SUBDIR


def _mismatch(meta: dict, seed: int, size: tuple[int, int], world_meta: dict) -> str | None:
    """Why an existing corpus is not the one asked for (None when it is)."""
    if meta.get("format_version") != CORPUS_FORMAT_VERSION:
        return f"format_version {meta.get('format_version')} (this builder writes {CORPUS_FORMAT_VERSION})"
    if meta["seed"] != seed:
        return f"seed {meta['seed']} (asked for {seed})"
    if tuple(meta["image_size"]) != size:
        return f"image size {meta['image_size']} (asked for {list(size)})"
    w = meta["world"]
    if (w.get("seed"), w.get("houses")) != (world_meta["seed"], world_meta["houses"]):
        return f"a world of seed {w.get('seed')} with {w.get('houses')} houses (this world: seed {world_meta['seed']}, " \
               f"{world_meta['houses']} houses)"
    return None


def ensure_vl_corpus(out_dir: str | os.PathLike | None = None, world_dir: str | os.PathLike | None = None,
                     seed: int = 0, image_size=DEFAULT_IMAGE_SIZE, build_world: bool = True, **kwargs) -> Path:
    """The corpus folder, built (and the world with it, if missing) when absent or out of date.

    Holds the build lock of ``out_dir`` (:func:`vln.locks.build_lock`) while checking and building, so concurrent callers
    (the ranks of a ``torchrun`` job, two trainers) build it once and all read the same files.

    Args:
        out_dir: corpus folder (default :func:`default_corpus_dir`).
        world_dir: the synthetic world (default ``vln.synthetic.default_data_dir()``).
        build_world: generate the world when it is missing (else FileNotFoundError).
        kwargs: further :func:`~vlcorpus.build.make_vl_corpus` arguments.

    Raises:
        FileExistsError: ``out_dir`` holds a corpus made with another seed, size or world; the
            message names both and the flag that replaces it.
    """
    from vln.synthetic import default_data_dir, generate_world, read_world_meta

    world = Path(world_dir) if world_dir is not None else default_data_dir()
    out = Path(out_dir) if out_dir is not None else default_corpus_dir(world)
    size = parse_image_size(image_size)
    out.parent.mkdir(parents=True, exist_ok=True)
    if world_dir is None and build_world:
        from vln.data_root import ensure_default_world

        ensure_default_world(world)  # under the world's own build lock, as the trainer does
    with build_lock(out, f"the synthetic V&L corpus at {out}"):
        if not (world / "world.json").exists():
            if not build_world:
                raise FileNotFoundError(f"no synthetic world at {world}; build it with python scripts/make_world.py --out {world}")
            logger.info("no synthetic world at %s: generating it", world)
            generate_world(world)
        world_meta = read_world_meta(world)
        overwrite = False
        if (out / "corpus.json").exists():
            meta = read_corpus_meta(out)
            why = _mismatch(meta, seed, size, world_meta)
            if why is None:
                return out
            if meta.get("format_version") == CORPUS_FORMAT_VERSION:
                raise FileExistsError(f"the corpus at {out} was made with {why}; choose another folder or rebuild it with "
                                      f"python scripts/make_vl_corpus.py --world {world} --out {out} --overwrite")
            logger.warning("the corpus at %s has %s: rebuilding it", out, why)
            overwrite = True
        logger.info("building the synthetic V&L corpus at %s from %s", out, world)
        make_vl_corpus(world, out, seed=seed, image_size=size, overwrite=overwrite, **kwargs)
    return out
