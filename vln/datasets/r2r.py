"""Room-to-Room (R2R) files: ``R2R_<split>.json`` reader, validator and writer.

The format (Anderson et al. 2018): one JSON list, one object per path with ``distance``
(metres; absent in the test split), ``scan``, ``path_id`` (int), ``path`` (viewpoint ids; the test
split holds the start only), ``heading`` (radians) and ``instructions`` (list of str). The
augmentation paths used for back-translation share the format with ``instructions: []``.

Loading expands every path to one :class:`~vln.datasets.episode.Episode` per instruction with
``instr_id = "<path_id>_<k>"``, as the EnvDrop ``R2RBatch`` does.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..errors import DataFormatError
from ..io_utils import atomic_write_text, read_json
from .episode import Episode, check_path_in_graph, get_field, require_object

logger = logging.getLogger(__name__)

#: What to do with a path whose ``instructions`` list is empty (augmentation paths).
UNINSTRUCTED_MODES = ("error", "empty", "skip")


@dataclass(frozen=True)
class PathRecord:
    """One path of an R2R file (before expansion into episodes).

    Attributes:
        path_id: unique id of the path in the file.
        scan: scan id.
        path: viewpoint ids, start to goal (tuple).
        heading: initial heading in radians.
        instructions: the instructions (tuple of str; empty for augmentation paths).
        distance: path length in metres, or ``None`` (R2R test split).
    """

    path_id: int
    scan: str
    path: tuple
    heading: float
    instructions: tuple = ()
    distance: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "path", tuple(self.path))
        object.__setattr__(self, "instructions", tuple(self.instructions))

    def to_json(self) -> dict:
        """The record as the R2R JSON object (key order of the original files)."""
        out = {}
        if self.distance is not None:
            out["distance"] = self.distance
        out.update(scan=self.scan, path_id=self.path_id, path=list(self.path), heading=self.heading,
                   instructions=list(self.instructions))
        return out

    def episodes(self, source: str | None = None, uninstructed: str = "error") -> list[Episode]:
        """One episode per instruction (``instr_id = f"{path_id}_{k}"``).

        Args:
            source: file name recorded in the episodes.
            uninstructed: for a path without instructions: ``"error"`` raises,
                ``"empty"`` gives one episode ``"<path_id>_0"`` with instruction ``""``,
                ``"skip"`` gives none.
        """
        texts = self.instructions
        if not texts:
            if uninstructed == "error":
                raise DataFormatError(
                    source or "<memory>", f"path_id {self.path_id}", "instructions",
                    "is empty; pass uninstructed='empty' to load augmentation paths",
                )
            if uninstructed == "skip":
                return []
            texts = ("",)
        return [
            Episode(f"{self.path_id}_{k}", self.path_id, self.scan, self.path, self.heading, text,
                    self.distance, "en", source)
            for k, text in enumerate(texts)
        ]


def parse_path_record(rec, file, index: int) -> PathRecord:
    """Validate one R2R JSON object (the ``index``-th of ``file``) and return it as a record."""
    require_object(rec, file, index)
    pid = rec.get("path_id")
    where = f"path_id {pid}" if isinstance(pid, int) and not isinstance(pid, bool) else index
    return PathRecord(
        path_id=get_field(rec, "path_id", "int", file, index),
        scan=get_field(rec, "scan", "str", file, where),
        path=get_field(rec, "path", "path", file, where),
        heading=get_field(rec, "heading", "number", file, where),
        instructions=tuple(get_field(rec, "instructions", "str_list", file, where)),
        distance=get_field(rec, "distance", "number", file, where, optional=True),
    )


def read_r2r_paths(file: str | os.PathLike, graph=None) -> list[PathRecord]:
    """Read and validate an R2R file, one :class:`PathRecord` per path, in file order.

    Args:
        file: ``R2R_<split>.json`` (or an augmentation-path file in the same format).
        graph: optional :class:`vln.graph.NavGraph`; when given, every scan must have a graph,
            every viewpoint must be known and included, and consecutive viewpoints must be
            joined by an edge.

    Raises:
        FileNotFoundError: ``file`` does not exist.
        DataFormatError: invalid JSON, a missing field or wrong type, a duplicate ``path_id``,
            an unknown scan or viewpoint (names the file, the path_id and the field).
        NotConnectedError: consecutive path viewpoints are not connected.
    """
    file = Path(file)
    data = read_json(file)
    if not isinstance(data, list):
        raise DataFormatError(file, None, None, f"must hold a JSON list of paths, got {type(data).__name__}")
    records, seen = [], {}
    for i, rec in enumerate(data):
        r = parse_path_record(rec, file, i)
        if r.path_id in seen:
            raise DataFormatError(file, f"path_id {r.path_id}", "path_id",
                                  f"is duplicated (records {seen[r.path_id]} and {i})")
        seen[r.path_id] = i
        if graph is not None:
            check_path_in_graph(graph, file, f"path_id {r.path_id}", r.scan, r.path)
        records.append(r)
    return records


def load_r2r(file: str | os.PathLike, graph=None, uninstructed: str = "error") -> list[Episode]:
    """Load an R2R file as episodes, one per instruction, in file order.

    Args:
        file: ``R2R_<split>.json``.
        graph: optional :class:`vln.graph.NavGraph` for path validation (see :func:`read_r2r_paths`).
        uninstructed: what to do with paths without instructions (see :meth:`PathRecord.episodes`).

    Returns:
        list of :class:`Episode` with ``language="en"`` and ``source=str(file)``.
    """
    if uninstructed not in UNINSTRUCTED_MODES:
        raise ValueError(f"uninstructed must be one of {UNINSTRUCTED_MODES}, got {uninstructed!r}")
    paths = read_r2r_paths(file, graph)
    out = [ep for r in paths for ep in r.episodes(str(file), uninstructed)]
    logger.info("loaded %d episodes (%d paths) from %s", len(out), len(paths), file)
    return out


def episodes_to_path_records(episodes: Iterable[Episode]) -> list[PathRecord]:
    """Group episodes back into R2R paths (first-seen order; instructions in ``instr_id`` order).

    Raises:
        ValueError: episodes of one ``path_id`` disagree on scan, path, heading or distance, or an
            ``instr_id`` is not ``"<path_id>_<k>"``.
    """
    groups: dict[int, list[tuple[int, Episode]]] = {}
    for ep in episodes:
        head, _, k = ep.instr_id.rpartition("_")
        if head != str(ep.path_id) or not k.isdigit():
            raise ValueError(f"episode {ep.instr_id!r}: instr_id must be '<path_id>_<k>' for path_id {ep.path_id}")
        groups.setdefault(ep.path_id, []).append((int(k), ep))
    out = []
    for pid, items in groups.items():
        items.sort(key=lambda t: t[0])
        first = items[0][1]
        for _, ep in items[1:]:
            if (ep.scan, ep.path, ep.heading, ep.distance) != (first.scan, first.path, first.heading, first.distance):
                raise ValueError(f"episodes {first.instr_id!r} and {ep.instr_id!r} of path_id {pid} disagree on the path")
        texts = tuple(ep.instruction for _, ep in items)
        if texts == ("",):  # an uninstructed path loaded with uninstructed="empty"
            texts = ()
        out.append(PathRecord(pid, first.scan, first.path, first.heading, texts, first.distance))
    return out


def write_r2r(file: str | os.PathLike, records: Sequence[PathRecord | Mapping | Episode]) -> Path:
    """Write paths as an R2R JSON file, atomically (same schema as the original files).

    Args:
        file: output path (parent folders are created).
        records: :class:`PathRecord` objects, R2R JSON objects (validated like a read), or
            :class:`Episode` objects (grouped back into paths); not mixed.

    Returns:
        the written path.

    Raises:
        DataFormatError: a JSON object given as input is malformed or a path_id repeats.
    """
    file = Path(file)
    records = list(records)
    if records and all(isinstance(r, Episode) for r in records):
        records = episodes_to_path_records(records)
    parsed, seen = [], set()
    for i, r in enumerate(records):
        if not isinstance(r, PathRecord):
            r = parse_path_record(r, f"<input to write_r2r {file}>", i)
        if r.path_id in seen:
            raise DataFormatError(f"<input to write_r2r {file}>", f"path_id {r.path_id}", "path_id", "is duplicated")
        seen.add(r.path_id)
        parsed.append(r.to_json())
    atomic_write_text(file, json.dumps(parsed, indent=2, ensure_ascii=False) + "\n")
    logger.info("wrote %d paths to %s", len(parsed), file)
    return file
