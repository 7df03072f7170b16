"""``synthetic_semantic_grid``: grid features of the synthetic V&L corpus from its ground truth (no pixels model).

For each cell of a preset's grid (the same cells a stride-32 CLIP grid has for that image and
preset, :mod:`features.grid_presets`), the feature is what covers the cell in the image's segment
label map (:mod:`vlcorpus`), as shares of the cell's area:

* channels ``0 .. K-1``: one per class of :data:`vln.synthetic.vocab.CLASSES` (``room:*``,
  ``object:*``, ``colour:*``: an object pixel counts for its type and for its colour),
* channels ``K .. K+I-1``: an instance code, each object instance's seeded unit vector (SHA-256
  of ``seed:scan:instance``) weighted by its share, so two objects of one type look different
  and can be counted.

Padding cells (the ``pretrain`` canvas) are zero and masked. The pooled vector is the mean of
the cells that cover the image. Siblings train on these stores on a CPU; a pixel encoder's
store of the same images has the same ids (``str(cocoid)``) and cell counts.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from .registry import EncoderSpec

logger = logging.getLogger(__name__)

INSTANCE_DIM = 16
STRIDE = 32


def instance_code(scan: str, instance: int, dim: int, seed: int = 0) -> np.ndarray:
    """(dim,) float32 unit vector of one object instance, fixed by ``seed``, scan and instance id."""
    digest = hashlib.sha256(f"{seed}:{scan}:{instance}".encode()).digest()
    v = np.random.default_rng(int.from_bytes(digest[:8], "little")).standard_normal(dim)
    return (v / np.linalg.norm(v)).astype(np.float32)


def segment_table(scene_graph: dict, seed: int, instance_dim: int) -> np.ndarray:
    """(max label + 1, K + I) float32 feature of each segment label of one image (row 0: nothing)."""
    from vln.synthetic.vocab import CLASS_INDEX

    segs = scene_graph["segments"]
    n = max([s["label"] for s in segs] + [0]) + 1
    table = np.zeros((n, len(CLASS_INDEX) + instance_dim), dtype=np.float32)
    for s in segs:
        row = table[s["label"]]
        row[CLASS_INDEX[s["class"]]] = 1.0
        if s.get("colour"):
            row[CLASS_INDEX[f"colour:{s['colour']}"]] = 1.0
        if s["kind"] == "object":
            row[len(CLASS_INDEX):] = instance_code(scene_graph["scan"], s["instance"], instance_dim, seed)
    return table


def coverage_grid(labels: np.ndarray, table: np.ndarray, preset) -> tuple[np.ndarray, np.ndarray]:
    """Cell features of one image under a grid preset.

    Args:
        labels: (h, w) int segment labels of the image.
        table: (L, C) feature per label (:func:`segment_table`).
        preset: a :class:`features.grid_presets.GridPreset`.

    Returns:
        grid: (H, W, C) float32, H = canvas height // 32, W = canvas width // 32;
        mask: (H, W) bool, True for cells that cover image content.
    """
    from .grid_presets import valid_cells

    h, w = labels.shape
    rh, rw = preset.resized(h, w)
    ch, cw = preset.canvas(h, w)
    gh, gw = max(1, ch // STRIDE), max(1, cw // STRIDE)
    # the cell each image pixel centre falls in, through resize (h -> rh) and the canvas grid (ch -> gh)
    rows = np.minimum(((np.arange(h) + 0.5) * rh / h * gh / ch).astype(np.int64), gh - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * rw / w * gw / cw).astype(np.int64), gw - 1)
    cell = (rows[:, None] * gw + cols[None, :]).reshape(-1)
    n_labels = len(table)
    lab = np.minimum(labels.reshape(-1).astype(np.int64), n_labels - 1)
    counts = np.bincount(cell * n_labels + lab, minlength=gh * gw * n_labels).reshape(gh * gw, n_labels)
    # shares of the pixels each cell received, times the part of the cell that lies on the image (not padding)
    cover_y = np.clip(rh - np.arange(gh) * ch / gh, 0, ch / gh) / (ch / gh)
    cover_x = np.clip(rw - np.arange(gw) * cw / gw, 0, cw / gw) / (cw / gw)
    n = counts.sum(axis=1, keepdims=True)
    weight = (np.outer(cover_y, cover_x).reshape(-1, 1) / np.maximum(n, 1)).astype(np.float32)
    # einsum's own loop, not BLAS: a threaded BLAS call on a (cells x labels) matrix this small
    # costs 10-50x more than the product itself on a busy machine
    grid = np.einsum("cl,lk->ck", counts.astype(np.float32), table) * weight
    vh, vw = valid_cells((rh, rw), (ch, cw), (gh, gw))
    mask = np.zeros((gh, gw), dtype=bool)
    mask[:vh, :vw] = True
    return grid.reshape(gh, gw, -1), mask


class SemanticGridEncoder:
    """Grid features of corpus images from their segment maps (``family == "annotation"``).

    Attributes:
        spec: the registry spec; weights: ``"seeded:<seed>"``; random_weights: False.
    """

    def __init__(self, spec: EncoderSpec, seed: int = 0):
        self.spec = spec
        self.seed = seed
        self.instance_dim = int(spec.options.get("instance_dim", INSTANCE_DIM))
        self.weights = f"seeded:{seed}"
        self.random_weights = False

    def open(self, world_dir: str | os.PathLike):
        """Panorama extraction is not this encoder's job: say what to run instead."""
        raise ValueError(f"encoder {self.spec.name!r} gives image grids of the synthetic V&L corpus, not panorama "
                         "features: python scripts/make_vl_corpus.py --grids PRESET (or "
                         "features.semantic_grid.write_semantic_grid_store)")

    def encode(self, labels: np.ndarray, scene_graph: dict, preset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(grid (H, W, C), pooled (C,), mask (H, W)) of one image's (h, w) label map."""
        grid, mask = coverage_grid(labels, segment_table(scene_graph, self.seed, self.instance_dim), preset)
        pooled = grid[mask].mean(axis=0) if mask.any() else np.zeros(grid.shape[-1], np.float32)
        return grid, pooled.astype(np.float32), mask

    def record(self) -> dict:
        """The encoder record of its stores (the shape of :func:`features.provenance.encoder_record`)."""
        return {"name": self.spec.name, "architecture": self.spec.architecture, "weights": self.weights,
                "weights_sha256": None, "random": False}


def build_semantic_grid_encoder(spec: EncoderSpec, weights=None, cache_dir=None) -> SemanticGridEncoder:
    """Builder entry point of ``synthetic_semantic_grid``; ``weights`` may be ``"seeded:<int>"``."""
    seed = int(spec.options.get("seed", 0))
    if weights not in (None, "random") and str(weights).startswith("seeded:"):
        seed = int(str(weights).split(":", 1)[1])
    return SemanticGridEncoder(spec, seed=seed)


def default_grid_store_path(corpus_dir: str | os.PathLike, preset_name: str) -> Path:
    """``<corpus>/features/synthetic_semantic_grid.<preset>.grids``."""
    return Path(corpus_dir) / "features" / f"synthetic_semantic_grid.{preset_name}.grids"


def write_semantic_grid_store(corpus_dir: str | os.PathLike, preset, out: str | os.PathLike | None = None,
                              dtype: str = "float16", seed: int = 0) -> Path:
    """Write the ``synthetic_semantic_grid`` store of every corpus image under ``preset``.

    Args:
        corpus_dir: a :mod:`vlcorpus` corpus.
        preset: a preset name (``vqa``, ``caption``, ``pretrain``) or a ``GridPreset``.
        out: store path (default :func:`default_grid_store_path`).

    Returns:
        the store path; image ids are ``str(cocoid)``, as in the corpus's ``image_list.txt``.
    """
    from vlcorpus import SPLITS, read_label_map, read_scene_graphs

    from .grid_presets import make_preset
    from .image_store_writer import write_image_store
    from .registry import get_spec

    preset = make_preset(preset) if isinstance(preset, str) else preset
    out = Path(out) if out is not None else default_grid_store_path(corpus_dir, preset.name)
    # built directly rather than through features.encoders.get_encoder, which imports torch
    encoder = build_semantic_grid_encoder(get_spec("synthetic_semantic_grid"), weights=f"seeded:{seed}")

    def records():
        from .image_store import GridRecord

        for names in SPLITS.values():
            graphs = read_scene_graphs(corpus_dir, names["folder"])
            for image_id in sorted(graphs):
                g = graphs[image_id]
                grid, pooled, mask = encoder.encode(read_label_map(corpus_dir, names["folder"], g["file_name"]), g, preset)
                yield str(image_id), GridRecord(grid, pooled if preset.pooled else None,
                                                mask if preset.has_mask else None)

    channels = encoder.spec.grid_dim
    return write_image_store(out, records(), channels=channels, encoder=encoder.record(), preset=preset.to_dict(),
                             dtype=dtype, pooled_dim=channels if preset.pooled else None, has_mask=preset.has_mask,
                             extra_meta={"grid_kind": "segment-coverage", "grid_stride": STRIDE,
                                         "encoder_spec": encoder.spec.to_dict()})


def ensure_semantic_grid_store(corpus_dir: str | os.PathLike, preset, dtype: str = "float16", seed: int = 0) -> Path:
    """The corpus's ``synthetic_semantic_grid`` store for ``preset``, written on first use (under a file lock).

    A store at :func:`default_grid_store_path` made with another preset, seed or dtype, or for
    fewer images than the corpus holds, is rewritten.
    """
    from vln.locks import build_lock

    from .grid_presets import make_preset
    from .image_store import ImageGridStore

    preset = make_preset(preset) if isinstance(preset, str) else preset
    path = default_grid_store_path(corpus_dir, preset.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with build_lock(path, f"the synthetic_semantic_grid store {path}"):
        if (path / "meta.json").exists():
            with ImageGridStore(path) as store:
                n_images = sum(1 for line in (Path(corpus_dir) / "image_list.txt").read_text().splitlines() if line)
                if (store.meta["preset"] == preset.to_dict() and store.meta["encoder"]["weights"] == f"seeded:{seed}"
                        and store.meta["dtype"] == dtype and len(store) == n_images):
                    return path
            logger.info("rewriting %s (another preset, seed, dtype or corpus)", path)
            import shutil

            shutil.rmtree(path)
        return write_semantic_grid_store(corpus_dir, preset, path, dtype=dtype, seed=seed)
