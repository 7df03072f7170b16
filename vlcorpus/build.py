"""Build the synthetic V&L corpus from a synthetic world: views, then every text format from their facts.

::

    <out>/corpus.json                                   parameters, splits, counts (written last)
    <out>/image_list.txt                                ``cocoid images/<folder>/<file>`` per image (grid extraction)
    <out>/images/<folder>/COCO_<folder>_<12-digit id>.jpg   the views (folder: train2014 / val2014 / test2015)
    <out>/labels/<folder>/COCO_<folder>_<id>.png        16-bit segment label per pixel (0: nothing)
    <out>/scene_graphs/<folder>.json                    image id -> camera, room, segments with pixel areas
    <out>/vqa/v2_OpenEnded_mscoco_<folder>_questions.json, v2_mscoco_<folder>_annotations.json
    <out>/gqa/{train,val,testdev}_balanced_questions.json
    <out>/captions/dataset_coco.json, captions/captions_<folder>.json   (Karpathy; COCO references)
    <out>/lxmert/mscoco_{train,minival,test}.json
    <out>/snli_ve/snli_ve_{train,dev,test}.jsonl

Splits follow the world's houses: its training houses give ``train``, its val_unseen houses
``val`` and its test houses ``test``, so no house appears in two splits. Every random draw comes
from ``numpy.random.default_rng([seed, image_id])`` (or ``[seed, <number of the scan id's bytes>]``
for the choice of views): the same world and seed give byte-identical files.
"""
from __future__ import annotations

import io
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from vln.errors import DataFormatError
from vln.io_utils import atomic_dir, atomic_write_json
from vln.synthetic import read_world_meta, stale_world_message

from .captions import make_captions, make_hypotheses
from .facts import ViewFacts, view_facts
from .questions import annotate, make_questions
from .scene import load_houses
from .views import ELEVATION, house_segments, render_viewpoint

logger = logging.getLogger(__name__)

CORPUS_FORMAT_VERSION = 1
#: Corpus split -> (world split of its houses, COCO image folder, Karpathy / GQA / LXMERT / SNLI-VE names).
SPLITS = {
    "train": {"world": "train", "folder": "train2014", "gqa": "train", "lxmert": "mscoco_train", "snli_ve": "train"},
    "val": {"world": "val_unseen", "folder": "val2014", "gqa": "val", "lxmert": "mscoco_minival", "snli_ve": "dev"},
    "test": {"world": "test", "folder": "test2015", "gqa": "testdev", "lxmert": "mscoco_test", "snli_ve": "test"},
}
#: Image sizes (height, width) by name: the grid presets' input sizes, and small ones for CPU.
IMAGE_SIZES = {"vqa": (600, 1000), "caption": (448, 448), "pretrain": (384, 640), "small": (240, 320), "tiny": (96, 128)}
DEFAULT_IMAGE_SIZE = "small"
DEFAULT_VIEWPOINTS_PER_HOUSE = 3
DEFAULT_HEADINGS = 4  #: views per viewpoint, evenly spaced in heading (90 degrees apart: they do not overlap)


def parse_image_size(value) -> tuple[int, int]:
    """``"small"`` / ``"vqa"`` ... or ``"HxW"`` (or a (H, W) pair) -> (height, width) in pixels."""
    if isinstance(value, (tuple, list)):
        h, w = value
    elif value in IMAGE_SIZES:
        h, w = IMAGE_SIZES[value]
    else:
        try:
            h, w = (int(x) for x in str(value).lower().split("x"))
        except ValueError:
            raise ValueError(f"image size {value!r} is neither one of {sorted(IMAGE_SIZES)} nor HxW (e.g. 240x320)") from None
    if h < 16 or w < 16:
        raise ValueError(f"image size {h}x{w} is too small (at least 16x16)")
    return int(h), int(w)


def face_size_for(height: int) -> int:
    """Skybox face resolution that gives a view of ``height`` rows a third of the view's pixel density, capped."""
    return int(min(512, max(64, 16 * round(height * 0.55 / 16))))


@dataclass
class ImageRecord:
    """One view and everything said about it."""

    image_id: int
    split: str
    file_name: str
    scan: str
    viewpoint: str
    heading: float
    elevation: float
    height: int
    width: int
    segments: list
    areas: dict
    facts: ViewFacts
    questions: list = field(default_factory=list)  # [(Question, answers)]
    captions: list = field(default_factory=list)
    hypotheses: list = field(default_factory=list)

    @property
    def folder(self) -> str:
        return SPLITS[self.split]["folder"]

    @property
    def stem(self) -> str:
        return self.file_name.rsplit(".", 1)[0]


def coco_file_name(folder: str, image_id: int, ext: str = "jpg") -> str:
    """COCO's file naming: ``COCO_<folder>_<12-digit id>.<ext>``."""
    return f"COCO_{folder}_{image_id:012d}.{ext}"


def _choose_views(rng: np.random.Generator, hs, per_house: int, n_headings: int) -> list[tuple[int, list[float]]]:
    """(viewpoint index, headings) per chosen viewpoint: room viewpoints of distinct rooms first."""
    by_room: dict[int, list[int]] = {}
    for i, vp in enumerate(hs.viewpoints):
        info = hs.rooms.get(vp, {})
        if info.get("kind", "room") == "room":
            by_room.setdefault(info.get("room", -1), []).append(i)
    rooms = [by_room[r] for r in sorted(by_room)]
    chosen: list[int] = []
    for r in rng.permutation(len(rooms)):
        if len(chosen) == per_house:
            break
        chosen.append(int(rooms[r][int(rng.integers(len(rooms[r])))]))
    out = []
    for i in sorted(chosen):
        base = int(rng.integers(12)) * math.pi / 6  # multiples of 30 degrees: the view lookups are cached
        out.append((i, [(base + k * 2 * math.pi / n_headings) % (2 * math.pi) for k in range(n_headings)]))
    return out


def _png16(labels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(labels.astype(np.uint16)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def render_split(world_dir: Path, out: Path, split: str, scans: list[str], seed: int, size: tuple[int, int],
                 face_size: int, per_house: int, n_headings: int, first_id: int, progress: bool) -> list[ImageRecord]:
    """Render the views of one split's houses into ``out`` and build their records."""
    folder = SPLITS[split]["folder"]
    (out / "images" / folder).mkdir(parents=True, exist_ok=True)
    (out / "labels" / folder).mkdir(parents=True, exist_ok=True)
    records, image_id = [], first_id
    houses = load_houses(world_dir, scans)
    for scan in tqdm(scans, desc=f"{split} houses", disable=not progress):
        hs = houses[scan]
        segments, box_label = house_segments(hs)
        room_types = {r.id: r.type for r in hs.house.rooms}
        house_types = {o.type for o in hs.house.objects}
        house_rng = np.random.default_rng([seed, int.from_bytes(scan.encode(), "little") % (2 ** 63)])
        for index, headings in _choose_views(house_rng, hs, per_house, n_headings):
            vp = hs.viewpoints[index]
            camera_room = int(hs.rooms[vp]["room"])
            views = render_viewpoint(hs, index, headings, size, face_size, box_label)
            for heading, (rgb, labels) in zip(headings, views):
                name = coco_file_name(folder, image_id)
                (out / "images" / folder / name).write_bytes(_jpeg(rgb))
                (out / "labels" / folder / coco_file_name(folder, image_id, "png")).write_bytes(_png16(labels))
                facts = view_facts(labels, segments, hs.house.objects, camera_room, room_types)
                areas = np.bincount(labels.reshape(-1), minlength=len(segments) + 1)
                rec = ImageRecord(image_id, split, name, scan, vp, round(heading, 6), round(ELEVATION, 6), size[0],
                                  size[1], segments, {int(k): int(areas[k]) for k in np.flatnonzero(areas)}, facts)
                rng = np.random.default_rng([seed, image_id])
                rec.questions = [(q, annotate(rng, q)) for q in make_questions(rng, facts, house_types)]
                rec.captions = make_captions(rng, facts)
                rec.hypotheses = make_hypotheses(rng, facts, room_types)
                records.append(rec)
                image_id += 1
    return records


def make_vl_corpus(world_dir: str | os.PathLike, out_dir: str | os.PathLike, seed: int = 0,
                   image_size=DEFAULT_IMAGE_SIZE, face_size: int | None = None,
                   viewpoints_per_house: int = DEFAULT_VIEWPOINTS_PER_HOUSE, headings: int = DEFAULT_HEADINGS,
                   overwrite: bool = False, progress: bool = False) -> dict:
    """Write the corpus for the world in ``world_dir`` to ``out_dir`` (see the module docstring).

    Args:
        seed: seed of every draw (views, questions, annotators, captions, hypotheses).
        image_size: a name of :data:`IMAGE_SIZES` or ``"HxW"``.
        face_size: skybox resolution the views are sampled from (default :func:`face_size_for`).
        viewpoints_per_house, headings: views per house = their product.
        overwrite: replace a corpus already in ``out_dir`` (only one holding ``corpus.json``).

    Returns:
        the summary written to ``corpus.json`` plus ``seconds``.

    The folder appears atomically: everything is written to a sibling temporary folder, renamed
    into place at the end.
    """
    from .writers import write_all  # the format writers

    t0 = time.perf_counter()
    world, out = Path(world_dir), Path(out_dir)
    if not (world / "world.json").exists():
        raise FileNotFoundError(f"no synthetic world at {world} (expected world.json); "
                                "generate one with python scripts/make_world.py --out " + str(world))
    meta = read_world_meta(world)
    stale = stale_world_message(world)
    if stale:  # its layout may not describe what its generator rendered
        raise DataFormatError(world / "world.json", None, "format_version", stale)
    if out.exists() and any(out.iterdir()):
        if not (out / "corpus.json").exists():
            raise FileExistsError(f"{out} exists and is not a synthetic V&L corpus (no corpus.json); choose another --out")
        if not overwrite:
            raise FileExistsError(f"{out} already holds a corpus; pass overwrite=True (--overwrite) to replace it")
    size = parse_image_size(image_size)
    face = face_size or face_size_for(size[0])
    if "splits" not in meta:
        raise DataFormatError(world / "world.json", None, "splits", "is missing")
    with atomic_dir(out) as tmp:
        records, next_id = {}, 1
        for split, names in SPLITS.items():
            scans = sorted(meta["splits"][names["world"]])
            records[split] = render_split(world, tmp, split, scans, seed, size, face, viewpoints_per_house, headings,
                                          next_id, progress)
            next_id += len(records[split])
        counts = write_all(tmp, records)
        summary = {"generator": "vlcorpus", "format_version": CORPUS_FORMAT_VERSION, "seed": seed,
                   "world": {"seed": meta["seed"], "houses": meta["houses"],
                             "format_version": meta["format_version"]},
                   "image_size": list(size), "face_size": face, "viewpoints_per_house": viewpoints_per_house,
                   "headings": headings, "splits": {s: sorted({r.scan for r in records[s]}) for s in SPLITS},
                   "counts": counts}
        atomic_write_json(tmp / "corpus.json", summary, indent=1)
    summary["seconds"] = time.perf_counter() - t0
    logger.info("synthetic V&L corpus: %s in %.1f s at %s", counts, summary["seconds"], out)
    return summary
