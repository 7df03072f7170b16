"""Generate a whole synthetic world on disk, laid out like a real data root.

::

    <out>/connectivity/<scan>_connectivity.json, scans.txt
    <out>/R2R/R2R_{train,val_seen,val_unseen,test}.json
    <out>/RxR/rxr_{train,val_seen,val_unseen,test}_guide.jsonl.gz      (en-US/en-IN, hi-IN, te-IN)
    <out>/scans/<scan>/matterport_skybox_images/<viewpoint>_skybox<k>_sami.jpg
    <out>/semantics/...                                                 (see vln.synthetic.semantics)
    <out>/world.json                                                    (parameters and splits; written last)

Default size (``DEFAULT_HOUSES`` = 60): 40 training houses with 25 paths each (3 instructions per
path: 3,000 training instructions), 4 val_seen paths per training house, and 10 unseen houses for
each of val_unseen and test (15 paths each). That is enough for a follower to learn the grounding
and small enough for a CPU training run of a few minutes. Skybox faces are 32 px by default (the
per-view annotations are read from 32 px faces too); generation takes a few seconds of CPU, most
of it in :func:`vln.synthetic.skycast.cast_skyboxes`.

Everything is drawn from one ``numpy.random.Generator(seed)``: the same seed gives byte-identical
files.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..connectivity import write_connectivity
from ..datasets.r2r import write_r2r
from ..datasets.rxr import write_rxr
from ..graph import NavGraph
from ..io_utils import atomic_dir, atomic_write_json, atomic_write_text
from ..skybox import skybox_filename
from . import FORMAT_VERSION
from .episodes import path_length, sample_paths
from .instructions import plan_route, render_instruction, simulator_facing
from .languages import LOCALES
from .layout import House, make_house
from .navgraph import Viewpoint, connect, connectivity_records, is_connected, place_viewpoints
from .render import Scene, build_scene, encode_jpegs, render_skyboxes
from .semantics import SEMANTIC_FACE_SIZE, SEMANTICS_DIR, view_semantics, write_scan_semantics
from .skycast import cast_skyboxes
from .vocab import CLASSES

logger = logging.getLogger(__name__)

DEFAULT_HOUSES = 60
DEFAULT_FACE_SIZE = 32  #: skybox face size (px); annotations are read from 32 px faces too
#: Paths per house and split (val_seen paths are drawn on the training houses).
DEFAULT_PATHS = {"train": 25, "val_seen": 4, "val_unseen": 15, "test": 15}
SPLITS = ("train", "val_seen", "val_unseen", "test")
INSTRUCTIONS_PER_PATH = 3
MIN_INCLUDED = 10  #: a house with fewer navigable viewpoints is redrawn
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass
class BuiltHouse:
    """A house with its scene, viewpoints and graph."""

    house: House
    scene: Scene
    vps: list[Viewpoint]
    unobstructed: np.ndarray
    visible: np.ndarray


def _tree_bytes(root: Path) -> int:
    """Total size in bytes of the regular files under ``root`` (one ``stat`` per file)."""
    total = 0
    with os.scandir(root) as it:
        for entry in it:
            if entry.is_dir(follow_symlinks=False):
                total += _tree_bytes(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_size
    return total


def split_sizes(houses: int) -> dict[str, int]:
    """Houses per split: about 1/6 each for val_unseen and test, the rest train (at least one)."""
    if houses < 1:
        raise ValueError(f"houses must be >= 1, got {houses}")
    unseen = min(max(1, round(houses / 6)), max(0, houses - 1))
    test = min(max(1, round(houses / 6)), max(0, houses - 1 - unseen))
    return {"train": houses - unseen - test, "val_unseen": unseen, "test": test}


def make_scan_id(rng: np.random.Generator, taken: set) -> str:
    """An 11-character alphanumeric scan id, like the Matterport ones (e.g. ``17DRP5sb8fy``)."""
    while True:
        sid = "".join(_ALNUM[i] for i in rng.integers(len(_ALNUM), size=11))
        if sid not in taken:
            taken.add(sid)
            return sid


def build_house(rng: np.random.Generator, scan_id: str, max_tries: int = 30) -> BuiltHouse:
    """Draw houses until one has a connected graph of at least ``MIN_INCLUDED`` viewpoints."""
    for _ in range(max_tries):
        house = make_house(rng, scan_id)
        scene = build_scene(house)
        vps = place_viewpoints(rng, house, n_excluded=int(rng.integers(1, 3)))
        if vps is None or sum(v.included for v in vps) < MIN_INCLUDED:
            continue
        unob, vis = connect(scene, vps)
        if is_connected(vps, unob):
            return BuiltHouse(house, scene, vps, unob, vis)
    raise RuntimeError(f"could not draw a connected house for scan {scan_id} in {max_tries} tries")


#: Pixels per :func:`~vln.synthetic.render.render_skyboxes` call: big enough to share numpy's
#: per-call costs among several viewpoints, small enough to stay in cache.
_PIXELS_PER_BATCH = 98_304


def _write_file(path: Path, data: bytes) -> None:
    """Write a small file with bare os calls (pathlib's write_bytes costs several times more)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)  # the umask applies, as for open()
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def render_house(out_dir: Path, built: BuiltHouse, face_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Write the skybox JPEGs of every viewpoint (the scan folder appears atomically).

    Returns:
        fractions: (V, 36, K) float32 per-view class fractions.
        visibility: (V, n_objects) float64 share of each panorama covering each object.
    """
    scan = built.house.scan_id
    with atomic_dir(out_dir / "scans" / scan) as tmp:
        img_dir = tmp / "matterport_skybox_images"
        img_dir.mkdir()
        sc = built.scene
        origins = np.array([v.pos for v in built.vps], dtype=np.float64).reshape(-1, 3)
        per_batch = max(1, _PIXELS_PER_BATCH // (6 * face_size * face_size))
        rgb, boxes = [], []
        for s in range(0, len(origins), per_batch):
            r, b = render_skyboxes(sc, origins[s:s + per_batch], face_size)
            rgb.append(r)
            boxes.append(b)
        rgb = np.concatenate(rgb)
        faces = encode_jpegs(rgb.reshape(-1, face_size, face_size, 3))
        for i, v in enumerate(built.vps):
            for k in range(6):
                _write_file(img_dir / skybox_filename(v.id, k), faces[6 * i + k])
        if face_size == SEMANTIC_FACE_SIZE:
            sem = np.concatenate(boxes)
        else:
            per_batch = max(1, _PIXELS_PER_BATCH // (6 * SEMANTIC_FACE_SIZE * SEMANTIC_FACE_SIZE))
            sem = np.concatenate([cast_skyboxes(sc, origins[s:s + per_batch], SEMANTIC_FACE_SIZE)[1]
                                  for s in range(0, len(origins), per_batch)])
        fractions, visibility = view_semantics(sem, sc.cls, sc.colour_cls, sc.instance, len(built.house.objects))
    return fractions, visibility


def layout_json(built: BuiltHouse) -> dict:
    """The layout of a house as JSON (rooms, doors, stairs, objects; metres)."""
    h = built.house
    return {
        "floors": h.floors,
        "size": [h.width, h.depth],
        "rooms": [{"id": r.id, "type": r.type, "floor": r.floor, "box": [r.x0, r.y0, r.z0, r.x1, r.y1, r.z0 + 3.0]}
                  for r in h.rooms],
        "doors": [{"rooms": [d.a, d.b], "floor": d.floor, "xy": list(d.xy)} for d in h.doors],
        "stairs": None if h.stairs is None else {"rooms": [h.stairs.lower_room, h.stairs.upper_room],
                                                 "footprint": [h.stairs.x0, h.stairs.y0, h.stairs.x1, h.stairs.y1]},
        "objects": [{"id": o.id, "type": o.type, "colour": o.colour, "room": o.room, "lo": list(o.lo), "hi": list(o.hi)}
                    for o in h.objects],
    }


def viewpoint_rooms_json(built: BuiltHouse) -> dict:
    """viewpoint -> {room, room_type, floor, kind[, door_rooms]} of a house."""
    out = {}
    for v in built.vps:
        rec = {"room": v.room, "room_type": built.house.rooms[v.room].type, "floor": v.floor, "kind": v.kind}
        if v.door is not None:
            rec["door_rooms"] = list(v.door)
        out[v.id] = rec
    return out


def _episodes(graph, built, visibility, rng, split: str, paths: list[list[int]], next_path_id: int, next_instr_id: int):
    """R2R records and RxR records of ``paths`` in one house."""
    r2r, rxr = [], []
    for p in paths:
        heading = round(float(rng.uniform(0, 2 * np.pi)), 3)
        plan = plan_route(built.house, [built.vps[i] for i in p], simulator_facing(graph, p, heading), visibility[p])
        ids = [graph.viewpoint_ids[i] for i in p]
        rec = {"distance": round(path_length(graph, p), 2), "scan": graph.scan_id, "path_id": next_path_id,
               "path": ids, "heading": heading,
               "instructions": [render_instruction(plan, "en", rng) for _ in range(INSTRUCTIONS_PER_PATH)]}
        if split == "test":
            del rec["distance"]
            rec["path"] = ids[:1]
        r2r.append(rec)
        for lang in ("en", "hi", "te"):
            locales = LOCALES[lang]
            rxr.append({"split": split, "instruction_id": next_instr_id, "annotator_id": int(rng.integers(100)),
                        "language": locales[next_path_id % len(locales)], "path_id": next_path_id,
                        "scan": graph.scan_id, "path": rec["path"], "heading": heading,
                        "instruction": render_instruction(plan, lang, rng), "edit_distance": 0.0})
            next_instr_id += 1
        next_path_id += 1
    return r2r, rxr, next_path_id, next_instr_id


def generate_world(out_dir: str | os.PathLike, houses: int = DEFAULT_HOUSES, seed: int = 0,
                   face_size: int = DEFAULT_FACE_SIZE, paths_per_house: dict | None = None,
                   overwrite: bool = False, progress: bool = False) -> dict:
    """Generate a synthetic world under ``out_dir`` (see the module docstring for the layout).

    Args:
        out_dir: output folder (a data root).
        houses: number of houses (scans); split about 4:1:1 into train : val_unseen : test.
        seed: seed of the single random stream; equal seeds give byte-identical files.
        face_size: skybox face resolution in pixels (annotations always use ``SEMANTIC_FACE_SIZE`` = 32).
        paths_per_house: paths per house and split, default :data:`DEFAULT_PATHS`.
        overwrite: replace a world already in ``out_dir`` (only if it holds ``world.json``).
        progress: show a tqdm progress bar.

    Returns:
        summary dict: seed, houses, splits (scan lists), viewpoints, paths and instructions per
        split, seconds, bytes on disk.
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    if (out / "world.json").exists():
        if not overwrite:
            raise FileExistsError(f"{out} already holds a synthetic world; pass overwrite=True (--overwrite) to replace it")
        for sub in ("connectivity", "R2R", "RxR", "scans", SEMANTICS_DIR):
            shutil.rmtree(out / sub, ignore_errors=True)
        (out / "world.json").unlink()
    n_paths = dict(DEFAULT_PATHS, **(paths_per_house or {}))
    rng = np.random.default_rng(seed)
    taken: set = set()
    scan_ids = [make_scan_id(rng, taken) for _ in range(houses)]
    sizes = split_sizes(houses)
    order = rng.permutation(houses)
    split_of = {}
    for k, i in enumerate(order):
        split_of[scan_ids[i]] = "train" if k < sizes["train"] else "val_unseen" if k < sizes["train"] + sizes["val_unseen"] else "test"
    house_rngs = rng.spawn(houses)
    conn_dir = out / "connectivity"
    records = {s: [] for s in SPLITS}
    rxr = {s: [] for s in SPLITS}
    vp_rooms, layouts = {}, {}
    path_id, instr_id, n_vps = 0, 0, 0
    for scan, hrng in tqdm(list(zip(scan_ids, house_rngs)), desc="houses", disable=not progress):
        built = build_house(hrng, scan)
        write_connectivity(conn_dir / f"{scan}_connectivity.json", connectivity_records(built.vps, built.unobstructed, built.visible))
        fractions, visibility = render_house(out, built, face_size)
        write_scan_semantics(out, scan, [v.id for v in built.vps], fractions)
        vp_rooms[scan] = viewpoint_rooms_json(built)
        layouts[scan] = layout_json(built)
        n_vps += len(built.vps)
        graph = NavGraph(conn_dir)[scan]
        split = split_of[scan]
        used: set = set()
        todo = [("train", n_paths["train"]), ("val_seen", n_paths["val_seen"])] if split == "train" else [(split, n_paths[split])]
        for s, n in todo:
            paths = sample_paths(graph, hrng, n, exclude=used)
            r, x, path_id, instr_id = _episodes(graph, built, visibility, hrng, s, paths, path_id, instr_id)
            records[s] += r
            rxr[s] += x
    atomic_write_text(conn_dir / "scans.txt", "\n".join(scan_ids) + "\n")
    for s in SPLITS:
        write_r2r(out / "R2R" / f"R2R_{s}.json", records[s])
        write_rxr(out / "RxR" / f"rxr_{s}_guide.jsonl.gz", rxr[s])
    sem = out / SEMANTICS_DIR
    atomic_write_json(sem / "classes.json", list(CLASSES))
    atomic_write_json(sem / "viewpoint_rooms.json", vp_rooms)
    atomic_write_json(sem / "layout.json", layouts)
    splits = {s: sorted(k for k, v in split_of.items() if v == (s if s != "val_seen" else "train")) for s in SPLITS}
    world = {
        "generator": "vln.synthetic", "format_version": FORMAT_VERSION, "seed": seed, "houses": houses, "face_size": face_size,
        "paths_per_house": n_paths, "splits": splits,
        "paths": {s: len(records[s]) for s in SPLITS},
        "instructions": {s: sum(len(r["instructions"]) for r in records[s]) for s in SPLITS},
        "viewpoints": n_vps,
    }
    atomic_write_json(out / "world.json", world, indent=1)
    size = _tree_bytes(out)
    summary = dict(world, out_dir=str(out), seconds=time.perf_counter() - t0, bytes=size)
    logger.info("synthetic world: %d houses, %d viewpoints, %s paths in %.1f s, %.1f MB at %s", houses, n_vps,
                world["paths"], summary["seconds"], size / 1e6, out)
    return summary
