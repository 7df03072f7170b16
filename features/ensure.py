"""The feature store a run asks for: found, extracted on the spot when cheap, or what it needs.

``--features NAME`` reads ``<data_dir>/features/NAME.feats``. When it is missing:

* an annotation encoder (``synthetic_semantic``) on a synthetic world is extracted here and now
  (seconds, no weights), under the store's build lock so that runs started together extract it
  once;
* any other encoder needs pixels and weights, and possibly hours on a GPU: the error lists what
  the extraction needs (the skyboxes, the weights), which of them are present, and the command
  that makes the store, or the flag that points at a store the user already has.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from vln.errors import VLNError

from .registry import WEIGHTS_DIR_ENV, EncoderSpec, get_spec
from .store import default_store_path

logger = logging.getLogger(__name__)


class FeaturesNotFoundError(VLNError, FileNotFoundError):
    """A feature store is missing and cannot be made here; the message lists what it needs."""


def extraction_scans_dir(spec: EncoderSpec, data_dir: Path) -> Path:
    """What ``--scans-dir`` the extraction of ``spec`` reads: the skybox root ``<data_dir>/scans``,
    or for annotation encoders the world directory itself (they read ``<world>/semantics``)."""
    return data_dir if not spec.needs_pixels else data_dir / "scans"


def extraction_command(encoder: str, data_dir: str | os.PathLike, out: str | os.PathLike | None = None,
                       weights: str | None = None) -> str:
    """The ``scripts/extract_features.py`` command that writes ``encoder``'s store of ``data_dir``."""
    data_dir = Path(data_dir)
    out = default_store_path(data_dir, encoder) if out is None else out
    cmd = (f"python scripts/extract_features.py --encoder {encoder} "
           f"--scans-dir {extraction_scans_dir(get_spec(encoder), data_dir)} "
           f"--connectivity {data_dir / 'connectivity'} --out {out}")
    return cmd + (f" --weights {weights}" if weights else "")


def local_weights(spec: EncoderSpec) -> Path | None:
    """``$CLIPVIL_WEIGHTS_DIR/<spec.weights_file>`` when that file exists, else None."""
    folder = os.environ.get(WEIGHTS_DIR_ENV)
    if folder and spec.weights_file and (Path(folder).expanduser() / spec.weights_file).is_file():
        return Path(folder).expanduser() / spec.weights_file
    return None


def has_skyboxes(scans_dir: Path) -> bool:
    """True when ``scans_dir`` holds at least one ``<scan>/matterport_skybox_images`` folder."""
    return scans_dir.is_dir() and any(scans_dir.glob("*/matterport_skybox_images"))


def missing_features_message(encoder: str, data_dir: Path) -> str:
    """What a run with ``--features encoder`` needs when its store is missing, in a few lines."""
    from vln.data_root import has_world

    spec = get_spec(encoder)
    store = default_store_path(data_dir, encoder)
    scans = extraction_scans_dir(spec, data_dir)
    where = "the synthetic world at" if has_world(data_dir) else "the data directory"
    lines = [f"no {encoder} features for {where} {data_dir} ({store} does not exist). They need:",
             f"  - episodes and graphs: found in {data_dir}"]
    if has_skyboxes(scans):
        lines.append(f"  - skyboxes: found in {scans}")
    else:
        lines.append(f"  - skyboxes: none in {scans} (Matterport3D's <scan>/matterport_skybox_images/*.jpg, "
                     f"licensed separately), or a store made elsewhere: --features PATH (.feats or R2R .tsv)")
    if spec.weights_file:
        found = local_weights(spec)
        if found:
            lines.append(f"  - weights: found at {found}")
        else:
            folder = os.environ.get(WEIGHTS_DIR_ENV) or "unset"
            lines.append(f"  - weights: {spec.weights_file} not found (${WEIGHTS_DIR_ENV}: {folder}): set "
                         f"{WEIGHTS_DIR_ENV} to the folder holding it, or add --weights PATH to the command below")
    lines.append(f"  - then extract (a GPU helps): {extraction_command(encoder, data_dir, store)}")
    if has_world(data_dir):
        lines.append("  or train now on the world's annotation features: --features synthetic_semantic")
    return "\n".join(lines)


def ensure_feature_store(data_dir: str | os.PathLike, encoder: str, auto: bool = True) -> Path:
    """The store of ``encoder`` in ``data_dir``, extracting it first when that is cheap.

    Args:
        data_dir: the data root (its store lives at ``<data_dir>/features/<encoder>.feats``).
        encoder: a registered encoder name.
        auto: allow extracting an annotation encoder's store of a synthetic world here.

    Raises:
        FeaturesNotFoundError: the store is missing and is not made here; the message lists what
            it needs (:func:`missing_features_message`).
    """
    from vln.data_root import has_world

    data_dir = Path(data_dir)
    store = default_store_path(data_dir, encoder)
    if store.exists():
        return store
    spec = get_spec(encoder)
    if auto and not spec.needs_pixels and has_world(data_dir):
        from .extract import run_extraction

        logger.info("no %s features at %s: extracting them (%s)", encoder, store,
                    extraction_command(encoder, data_dir, store))
        # resume=False: a .partial left by a killed run is rebuilt, not trusted (seconds of work).
        run_extraction(encoder, extraction_scans_dir(spec, data_dir), data_dir / "connectivity", store,
                       progress=False, resume=False)
        return store
    if not spec.needs_pixels:
        raise FeaturesNotFoundError(f"no {encoder} features at {store}; build them with: "
                                    f"{extraction_command(encoder, data_dir, store)}")
    raise FeaturesNotFoundError(missing_features_message(encoder, data_dir))
