"""Room-Across-Room (RxR) guide files: ``rxr_<split>_guide.jsonl.gz`` reader, validator and writer.

The format (google-research-datasets/RxR README, "Guide Annotations"): gzipped JSON Lines, one
object per instruction with ``instruction_id`` (int), ``path_id`` (int), ``scan`` (str), ``path``
(viewpoint ids), ``heading`` (radians, R2R convention), ``instruction`` (str) and ``language``
(BCP 47: ``en-IN``, ``en-US``, ``hi-IN``, ``te-IN``); optional ``split`` (str), ``annotator_id``
(int), ``timed_instruction`` (list of {``word``, ``start_time``, ``end_time``}) and
``edit_distance`` (float). Optional fields are kept in :attr:`Episode.extras` and written back.
"""
from __future__ import annotations

import gzip
import json
import logging
import os
import re
import zlib
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..errors import DataFormatError
from ..io_utils import atomic_write_bytes, iter_jsonl
from .episode import Episode, check_path_in_graph, get_field, require_object

logger = logging.getLogger(__name__)

#: Optional fields, in the key order of the RxR schema, with their kinds.
OPTIONAL_FIELDS = {"split": "str", "annotator_id": "int", "timed_instruction": "timed", "edit_distance": "number"}
#: Key order of a written line (the README's schema order).
KEY_ORDER = ("split", "instruction_id", "annotator_id", "language", "path_id", "scan", "path", "heading",
             "instruction", "timed_instruction", "edit_distance")


def language_matches(language: str, wanted: str | Sequence[str] | None) -> bool:
    """Whether locale ``language`` passes the filter ``wanted``.

    A filter entry is an exact locale (``"en-IN"``) or a language prefix (``"en"`` matches
    ``"en-IN"`` and ``"en-US"``); case-insensitive. ``None`` passes everything.
    """
    if wanted is None:
        return True
    lang = language.lower()
    for w in [wanted] if isinstance(wanted, str) else wanted:
        w = w.lower()
        if lang == w or lang.startswith(w + "-"):
            return True
    return False


def _check_timed(value, file, record):
    if not isinstance(value, list):
        raise DataFormatError(file, record, "timed_instruction", f"must be a list, got {type(value).__name__}")
    for k, w in enumerate(value):
        if not isinstance(w, dict) or not isinstance(w.get("word"), str):
            raise DataFormatError(file, record, "timed_instruction", f"entry {k} must be an object with a string 'word'")
        for t in ("start_time", "end_time"):  # the README: a few words lack the times
            if t in w:
                get_field(w, t, "number", file, record)
    return value


def parse_rxr_record(rec, file, line: int) -> Episode:
    """Validate one RxR JSON object (found on ``line`` of ``file``) and return it as an episode."""
    require_object(rec, file, f"line {line}")
    iid = get_field(rec, "instruction_id", "int", file, f"line {line}")
    where = f"line {line} (instruction_id {iid})"
    extras = {}
    for key, kind in OPTIONAL_FIELDS.items():
        if key in rec:
            extras[key] = (_check_timed(rec[key], file, where) if kind == "timed"
                           else get_field(rec, key, kind, file, where))
    return Episode(
        instr_id=str(iid),
        path_id=get_field(rec, "path_id", "int", file, where),
        scan=get_field(rec, "scan", "str", file, where),
        path=get_field(rec, "path", "path", file, where),
        heading=get_field(rec, "heading", "number", file, where),
        instruction=get_field(rec, "instruction", "str", file, where),
        distance=None,
        language=get_field(rec, "language", "str", file, where),
        source=str(file),
        extras=extras,
    )


def load_rxr(file: str | os.PathLike, graph=None, language: str | Sequence[str] | None = None) -> list[Episode]:
    """Load an RxR guide file (``.jsonl.gz`` or plain ``.jsonl``) as episodes, in file order.

    Args:
        file: ``rxr_<split>_guide.jsonl.gz``.
        graph: optional :class:`vln.graph.NavGraph`; when given, scans, viewpoints and edges of
            every path are checked (see :func:`vln.datasets.r2r.read_r2r_paths`).
        language: keep only these locales or language prefixes (see :func:`language_matches`);
            every line is still validated.

    Raises:
        DataFormatError: unreadable gzip, a line that is not JSON (names the line number), a
            missing field or wrong type, a duplicate ``instruction_id``, an unknown scan or viewpoint.
        NotConnectedError: consecutive path viewpoints are not connected.
    """
    file = Path(file)
    out, seen, total = [], {}, 0
    try:
        for line_no, rec in iter_jsonl(file):
            ep = parse_rxr_record(rec, file, line_no)
            if ep.instr_id in seen:
                raise DataFormatError(file, f"line {line_no} (instruction_id {ep.instr_id})", "instruction_id",
                                      f"is duplicated (first on line {seen[ep.instr_id]})")
            seen[ep.instr_id] = line_no
            total += 1
            if graph is not None:
                check_path_in_graph(graph, file, f"line {line_no} (instruction_id {ep.instr_id})", ep.scan, ep.path)
            if language_matches(ep.language, language):
                out.append(ep)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise DataFormatError(file, None, None, f"cannot be read as {'gzip ' if file.suffix == '.gz' else ''}JSON Lines: {e}") from None
    logger.info("loaded %d of %d RxR episodes from %s (language filter %r)", len(out), total, file, language)
    return out


def episode_to_rxr_json(ep: Episode) -> dict:
    """The RxR JSON object of an episode (schema key order; optional fields from ``extras``)."""
    if not re.fullmatch(r"[0-9]+", ep.instr_id):
        raise ValueError(f"episode {ep.instr_id!r}: an RxR instr_id must be an integer instruction_id")
    iid = int(ep.instr_id)
    values = dict(ep.extras)
    values.update(instruction_id=iid, language=ep.language, path_id=ep.path_id, scan=ep.scan, path=list(ep.path),
                  heading=ep.heading, instruction=ep.instruction)
    return {k: values[k] for k in KEY_ORDER if k in values}


def write_rxr(file: str | os.PathLike, episodes: Iterable[Episode | Mapping]) -> Path:
    """Write episodes as a gzipped JSON Lines RxR guide file, atomically.

    Args:
        file: output path (``.jsonl.gz``; a name without ``.gz`` is written uncompressed).
        episodes: :class:`Episode` objects or RxR JSON objects (validated like a read).

    Returns:
        the written path. The gzip header carries no timestamp, so equal input gives equal bytes.
    """
    file = Path(file)
    lines, seen = [], set()
    for i, ep in enumerate(episodes, start=1):
        if not isinstance(ep, Episode):
            ep = parse_rxr_record(ep, f"<input to write_rxr {file}>", i)
        rec = episode_to_rxr_json(ep)
        if rec["instruction_id"] in seen:
            raise DataFormatError(f"<input to write_rxr {file}>", f"item {i}", "instruction_id", "is duplicated")
        seen.add(rec["instruction_id"])
        lines.append(json.dumps(rec, ensure_ascii=False))
    data = ("\n".join(lines) + "\n" if lines else "").encode("utf-8")
    if file.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    atomic_write_bytes(file, data)
    logger.info("wrote %d RxR episodes to %s", len(lines), file)
    return file
