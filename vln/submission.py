"""Leaderboard submissions: R2R and RxR writers, readers and the validator, side by side.

Formats:

* R2R (EvalAI leaderboard, ``tasks/R2R/eval.py``): one JSON list, one object per instruction,
  ``{"instr_id": "<path_id>_<k>", "trajectory": [[viewpoint_id, heading, elevation], ...]}``,
  headings and elevations in radians, the trajectory starting at the episode's start viewpoint.
* RxR (RxR competition): JSON Lines, one object per instruction,
  ``{"instruction_id": <int>, "path": [viewpoint_id, ...]}``, the path of panoramic viewpoints
  starting at the start viewpoint. We write consecutive repeats (turns in place) only once and
  read ``.jsonl`` or gzipped ``.jsonl.gz``. In memory an RxR trajectory is keyed by
  ``str(instruction_id)``, the ``instr_id`` of :class:`vln.datasets.episode.Episode`.

:func:`validate_submission` checks trajectories against a split: every instr_id present exactly
once (unless ``allow_partial``), no unknown instr_id, each trajectory starting at its episode's
start, consecutive viewpoints equal or joined by an edge, headings/elevations finite. Every error
names the file (or ``<memory>``) and the instr_id.
"""
from __future__ import annotations

import gzip
import json
import logging
import math
import os
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from .errors import DataFormatError, NotConnectedError, UnknownScanError
from .io_utils import atomic_write_bytes, atomic_write_text, iter_jsonl, read_json
from .metrics import check_connected

logger = logging.getLogger(__name__)

MEMORY = "<memory>"
FORMATS = ("r2r", "rxr")


class SubmissionError(DataFormatError):
    """A submission is malformed or does not match the split it is evaluated on."""


class TrajectoryNotConnectedError(SubmissionError, NotConnectedError):
    """A submitted trajectory jumps between viewpoints that share no edge."""


# ------------------------------------------------------------------ parsing entries
def _is_number(v) -> bool:
    t = type(v)  # exact types: a bool is not a heading
    return (t is float or t is int or (t is not bool and isinstance(v, (int, float)))) and math.isfinite(v)


def parse_trajectory(raw, source: str, instr_id: str, poses: bool = True) -> list:
    """Check one submitted trajectory.

    Args:
        raw: the ``trajectory`` value: a non-empty list of ``[viewpoint, heading, elevation]``
            (``poses=True``) or of viewpoint ids (``poses=False``).
        source: the file, for messages.
        instr_id: the instruction, for messages.

    Returns:
        list of ``(viewpoint, heading, elevation)`` tuples (``poses=True``) or of ids.

    Raises:
        SubmissionError: naming the file, the instr_id and the offending step.
    """
    field = "trajectory" if poses else "path"
    if not isinstance(raw, (list, tuple)) or len(raw) == 0:
        raise SubmissionError(source, f"instr_id {instr_id}", field, "must be a non-empty list")
    out = []
    for k, e in enumerate(raw):
        if not poses:
            if not isinstance(e, str):
                raise SubmissionError(source, f"instr_id {instr_id}", field, f"step {k} must be a viewpoint id, got {e!r}")
            out.append(e)
            continue
        if not (isinstance(e, (list, tuple)) and len(e) == 3 and isinstance(e[0], str)):
            raise SubmissionError(
                source, f"instr_id {instr_id}", field, f"step {k} must be [viewpoint_id, heading, elevation], got {e!r}"
            )
        if not (_is_number(e[1]) and _is_number(e[2])):
            raise SubmissionError(
                source, f"instr_id {instr_id}", field,
                f"step {k}: heading and elevation must be finite numbers (radians), got {e[1]!r}, {e[2]!r}",
            )
        out.append((e[0], float(e[1]), float(e[2])))
    return out


def _add(out: dict, instr_id: str, traj, source: str) -> None:
    if instr_id in out:
        raise SubmissionError(source, f"instr_id {instr_id}", "instr_id", "appears more than once")
    out[instr_id] = traj


def parse_r2r_item(i: int, item, source: str = MEMORY) -> tuple[str, list]:
    """Check record ``i`` of an R2R submission list; ``(instr_id, [(vp, heading, elevation)])``."""
    if not isinstance(item, dict):
        raise SubmissionError(source, i, None, f"must be a JSON object, got {type(item).__name__}")
    if not isinstance(item.get("instr_id"), str):
        raise SubmissionError(source, i, "instr_id", f"must be a string like '123_0', got {item.get('instr_id')!r}")
    iid = item["instr_id"]
    if "trajectory" not in item:
        raise SubmissionError(source, f"instr_id {iid}", "trajectory", "is missing")
    return iid, parse_trajectory(item["trajectory"], source, iid)


def parse_r2r_items(items, source: str = MEMORY) -> dict:
    """Check the decoded R2R submission list; return ``{instr_id: [(vp, heading, elevation)]}``.

    The order of the list is kept (it is the order the official evaluation averages in).
    """
    if not isinstance(items, list):
        raise SubmissionError(source, None, None, f"must be a JSON list of objects, got {type(items).__name__}")
    out: dict = {}
    for i, item in enumerate(items):
        _add(out, *parse_r2r_item(i, item, source), source)
    return out


def as_trajectories(submission, source: str = MEMORY) -> dict:
    """Normalise an in-memory submission to ``{instr_id: trajectory}``.

    Accepts a mapping ``instr_id -> trajectory`` (entries: viewpoint ids or ``[viewpoint,
    heading, elevation]``) or a list of R2R submission objects (``{"instr_id", "trajectory"}``).
    """
    if isinstance(submission, Mapping):
        out = {}
        for iid, traj in submission.items():
            iid = str(iid)
            if isinstance(traj, (list, tuple)) and traj and all(isinstance(e, str) for e in traj):
                out[iid] = parse_trajectory(traj, source, iid, poses=False)
            else:
                out[iid] = parse_trajectory(traj, source, iid)
        return out
    return parse_r2r_items(list(submission), source)


# ------------------------------------------------------------------ R2R files
def write_r2r_submission(path: str | os.PathLike, trajectories) -> Path:
    """Write an R2R leaderboard submission atomically.

    Args:
        path: output ``.json`` file.
        trajectories: ``{instr_id: [[viewpoint, heading, elevation], ...]}`` or a list of
            ``{"instr_id", "trajectory"}`` objects; every step needs heading and elevation.

    Returns:
        the written path.
    """
    path = Path(path)
    parsed = as_trajectories(trajectories, f"<input to write_r2r_submission {path}>")
    items = []
    for iid, traj in parsed.items():
        if traj and isinstance(traj[0], str):
            raise SubmissionError(f"<input to write_r2r_submission {path}>", f"instr_id {iid}", "trajectory",
                                  "needs [viewpoint, heading, elevation] steps for the R2R format")
        items.append({"instr_id": iid, "trajectory": [list(e) for e in traj]})
    atomic_write_text(path, json.dumps(items))
    logger.info("wrote %d trajectories to %s", len(items), path)
    return path


def read_r2r_submission(path: str | os.PathLike) -> dict:
    """Read and check an R2R submission file; ``{instr_id: [(vp, heading, elevation), ...]}``."""
    path = Path(path)
    return parse_r2r_items(read_json(path, SubmissionError), str(path))


# ------------------------------------------------------------------ RxR files
def write_rxr_submission(path: str | os.PathLike, trajectories) -> Path:
    """Write an RxR leaderboard submission (JSON Lines; gzipped if ``path`` ends in ``.gz``).

    Args:
        path: output ``.jsonl`` or ``.jsonl.gz`` file.
        trajectories: ``{instruction_id: trajectory}`` (ids as int or decimal str; entries as
            viewpoint ids or ``[viewpoint, heading, elevation]``) or R2R-style objects.

    Returns:
        the written path.
    """
    path = Path(path)
    src = f"<input to write_rxr_submission {path}>"
    lines = []
    for iid, traj in as_trajectories(trajectories, src).items():
        if not iid.isdigit():
            raise SubmissionError(src, f"instr_id {iid}", "instruction_id", "must be an integer for the RxR format")
        vps = [e if isinstance(e, str) else e[0] for e in traj]
        path_ = [v for k, v in enumerate(vps) if k == 0 or v != vps[k - 1]]
        lines.append(json.dumps({"instruction_id": int(iid), "path": path_}))
    data = ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
    if path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    atomic_write_bytes(path, data)
    logger.info("wrote %d paths to %s", len(lines), path)
    return path


def parse_rxr_item(n: int, item, source: str = MEMORY) -> tuple[str, list]:
    """Check line ``n`` of an RxR submission; ``(str(instruction_id), [viewpoint, ...])``."""
    if not isinstance(item, dict):
        raise SubmissionError(source, f"line {n}", None, "must be a JSON object")
    iid = item.get("instruction_id")
    if not isinstance(iid, int) or isinstance(iid, bool):
        raise SubmissionError(source, f"line {n}", "instruction_id", f"must be an integer, got {iid!r}")
    if "path" not in item:
        raise SubmissionError(source, f"instr_id {iid}", "path", "is missing")
    return str(iid), parse_trajectory(item["path"], source, str(iid), poses=False)


def read_rxr_submission(path: str | os.PathLike) -> dict:
    """Read and check an RxR submission; ``{str(instruction_id): [viewpoint, ...]}``."""
    path = Path(path)
    out: dict = {}
    for n, item in iter_jsonl(path, SubmissionError):
        _add(out, *parse_rxr_item(n, item, str(path)), str(path))
    return out


def submission_format(path: str | os.PathLike, fmt: str = "auto") -> str:
    """``"r2r"`` or ``"rxr"``: ``fmt`` itself, or (``"auto"``) RxR for ``.jsonl[.gz]``, else R2R."""
    if fmt == "auto":
        fmt = "rxr" if Path(path).name.endswith((".jsonl", ".jsonl.gz")) else "r2r"
    if fmt not in FORMATS:
        raise ValueError(f"unknown submission format {fmt!r}; known: {', '.join(FORMATS)}")
    return fmt


def read_submission(path: str | os.PathLike, fmt: str = "auto") -> dict:
    """Read an R2R (``.json``) or RxR (``.jsonl``, ``.jsonl.gz``) submission; ``fmt`` forces one."""
    path = Path(path)
    fmt = submission_format(path, fmt)
    return read_rxr_submission(path) if fmt == "rxr" else read_r2r_submission(path)


# ------------------------------------------------------------------ validation
def _episode_field(ep, name):
    return ep[name] if isinstance(ep, dict) or (not hasattr(ep, name) and isinstance(ep, Mapping)) else getattr(ep, name)


def validate_submission(
    trajectories,
    episodes: Iterable,
    graphs,
    allow_partial: bool = False,
    source: str = MEMORY,
    split_file: str | os.PathLike | None = None,
) -> dict:
    """Check trajectories against a split and return their viewpoint indices.

    Args:
        trajectories: ``{instr_id: trajectory}`` as read by :func:`read_submission`, or anything
            :func:`as_trajectories` accepts.
        episodes: the split's episodes (objects or mappings with ``instr_id``, ``scan``, ``path``).
        graphs: a :class:`vln.graph.NavGraph` holding every scan of the split.
        allow_partial: accept a submission covering only part of the split.
        source: the file the trajectories came from, for messages.
        split_file: the file ``episodes`` came from: an unknown instr_id's message then names the
            split beside it that holds the ids, if any.

    Returns:
        ``{instr_id: (T,) int64 viewpoint indices}`` in submission order.

    Raises:
        SubmissionError: a missing or unknown instr_id, a trajectory not starting at its start, an
            unknown or excluded viewpoint, a non-finite heading.
        TrajectoryNotConnectedError: consecutive viewpoints not joined by an edge.
    """
    trajectories = as_trajectories(trajectories, source)
    by_id = {}
    for ep in episodes:
        iid = str(_episode_field(ep, "instr_id"))
        if iid in by_id:
            raise ValueError(f"the split holds instr_id {iid} twice")
        by_id[iid] = ep
    unknown = [i for i in trajectories if i not in by_id]
    if unknown and split_file is not None:
        from .datasets.splits import not_in_split_message

        raise SubmissionError(source, f"instr_id {unknown[0]}", "instr_id",
                              not_in_split_message(unknown, split_file, len(trajectories)))
    if unknown:
        raise SubmissionError(source, f"instr_id {unknown[0]}", "instr_id",
                              f"is not in the split ({len(unknown)} unknown ids: {', '.join(unknown[:5])})")
    missing = [i for i in by_id if i not in trajectories]
    if missing and not allow_partial:
        raise SubmissionError(
            source, None, "instr_id",
            f"misses {len(missing)} of {len(by_id)} instruction ids of the split "
            f"(first: {', '.join(missing[:5])}); to score a subset pass --allow-partial "
            "(scripts/evaluate.py; allow_partial=True in Python)",
        )
    out = {}
    for iid, traj in trajectories.items():
        ep = by_id[iid]
        scan = _episode_field(ep, "scan")
        try:
            g = graphs[scan]
        except UnknownScanError as e:
            raise SubmissionError(source, f"instr_id {iid}", "scan", str(e)) from None
        vps = [e if isinstance(e, str) else e[0] for e in traj]
        start = _episode_field(ep, "path")[0]
        if vps[0] != start:
            raise SubmissionError(source, f"instr_id {iid}", "trajectory",
                                  f"starts at {vps[0]}, not at the episode's start viewpoint {start}")
        idx = np.empty(len(vps), dtype=np.int64)
        for k, vp in enumerate(vps):
            ix = g.index.get(vp)
            if ix is None or not g.included[ix]:
                what = "is not in" if ix is None else "is excluded from"
                raise SubmissionError(source, f"instr_id {iid}", "trajectory",
                                      f"step {k}: viewpoint {vp} {what} the connectivity graph of scan {scan}")
            idx[k] = ix
        try:
            check_connected(g, idx, "trajectory")
        except NotConnectedError as e:
            raise TrajectoryNotConnectedError(
                source, f"instr_id {iid}", "trajectory", str(e).removeprefix("trajectory: ")
            ) from None
        out[iid] = idx
    return out
