"""Static exports of the replay viewer: a folder that opens without a server, and PNG plots.

``export_static`` writes the files the server answers with (``index.html``, ``app.js``,
``style.css``, ``data/index.json``, ``data/episodes/<key>.json``, ``images/<scan>/<vp>/*.png``)
and, for a page opened from ``file://`` (which may not ``fetch``), each data file once more as a
script (``data/index.js``, ``data/episodes/<key>.js``; see :mod:`vln.replay.payload`), so
``out_dir/index.html`` works from ``file://`` or any static host. Every file is written
atomically; images already present are not rendered again.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from tqdm import tqdm

from ..io_utils import atomic_write_bytes, atomic_write_text
from .data import ReplayData
from .images import ViewRenderer
from .payload import STATIC_DIR, STATIC_FILES, episode_json, episode_script, index_json, index_script
from .plot import write_plot_png

logger = logging.getLogger(__name__)


def _selected(data: ReplayData, instr_ids) -> list[str]:
    ids = list(data.episodes) if instr_ids is None else [str(i) for i in instr_ids]
    unknown = [i for i in ids if i not in data.episodes]
    if unknown:
        raise KeyError(f"instr_ids not in {data.split_file}: {', '.join(unknown[:5])}")
    return ids


def export_static(data: ReplayData, renderer: ViewRenderer, out_dir: str | os.PathLike, instr_ids=None,
                  progress: bool = False) -> dict:
    """Write the viewer and the data of ``instr_ids`` (default: all episodes) under ``out_dir``.

    Returns:
        counts: ``{"episodes": E, "images": I, "out_dir": str}``.
    """
    out = Path(out_dir)
    ids = _selected(data, instr_ids)
    for name in STATIC_FILES:
        atomic_write_bytes(out / name, (STATIC_DIR / name).read_bytes())
    chosen = set(ids)
    rows = [r for r in data.index() if r["instr_id"] in chosen]
    atomic_write_text(out / "data" / "index.json", index_json(rows))
    atomic_write_text(out / "data" / "index.js", index_script(rows))
    n_img = 0
    for iid in tqdm(ids, desc="export", disable=not progress):
        ep = data.episode(iid, images=renderer.available)
        for step in ep["steps"]:
            for rel, make in ((step["pano"], lambda s=step: renderer.pano_png(ep["scan"], s["viewpoint"])),
                              (step["view"], lambda s=step: renderer.view_png(ep["scan"], s["viewpoint"], s["heading_deg"]))):
                if rel is None or (out / rel).exists():
                    continue
                png = make()
                if png is not None:  # None only if the faces vanished since the episode was built
                    atomic_write_bytes(out / rel, png)
                    n_img += 1
        atomic_write_text(out / "data" / "episodes" / f"{ep['key']}.json", episode_json(ep))
        atomic_write_text(out / "data" / "episodes" / f"{ep['key']}.js", episode_script(ep))
    logger.info("exported %d episodes and %d images to %s", len(ids), n_img, out)
    return {"episodes": len(ids), "images": n_img, "out_dir": str(out)}


def export_pngs(data: ReplayData, out_dir: str | os.PathLike, instr_ids=None, size: int = 800,
                progress: bool = False) -> list[Path]:
    """Write one top-down plot ``<out_dir>/<key>.png`` per episode; returns the paths."""
    out = Path(out_dir)
    paths = []
    for iid in tqdm(_selected(data, instr_ids), desc="png", disable=not progress):
        ep = data.episode(iid, images=False)
        paths.append(write_plot_png(ep, out / f"{ep['key']}.png", size))
    logger.info("wrote %d plots to %s", len(paths), out)
    return paths
