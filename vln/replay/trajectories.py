"""Agent trajectory files for the replay viewer: submissions, per-episode records, attention.

Accepted inputs (the format is told by the file name and the JSON shape):

* an R2R leaderboard submission (:mod:`vln.submission`): a JSON list of
  ``{"instr_id", "trajectory": [[viewpoint, heading, elevation], ...]}``;
* per-episode records (``scripts/evaluate.py --per-episode`` records that also carry the
  agent's ``trajectory``, or an agent's own dump): the same list, where ``trajectory`` (or
  ``path``) may be bare viewpoint ids and any metric fields are ignored (the viewer recomputes
  them with :class:`vln.evaluate.Evaluator`);
* an RxR submission (``.jsonl`` / ``.jsonl.gz``: ``{"instruction_id", "path"}``).

Every JSON object may add ``attention``: one row of weights over the instruction tokens per
decision step (row ``t`` is the step taken at the ``t``-th distinct viewpoint of the trajectory,
the last row the STOP decision), and ``tokens``: the strings those weights refer to (default:
the instruction split by the R2R / multilingual tokeniser). Errors name the file, the record and
the field.
"""
from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..submission import SubmissionError, parse_trajectory, read_rxr_submission

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class AgentRun:
    """What an agent did in one episode.

    Attributes:
        instr_id: the instruction id (``"<path_id>_<k>"`` for R2R, the decimal id for RxR).
        trajectory: ``(viewpoint, heading, elevation)`` tuples (radians) or bare viewpoint ids,
            repeats (turns in place) included, starting at the start viewpoint.
        attention: (S, L) float64 attention weights, one row per decision step, or ``None``.
        tokens: the L token strings the weights refer to, or ``None`` (then the instruction's
            own tokenisation is used).
    """

    instr_id: str
    trajectory: list
    attention: np.ndarray | None = None
    tokens: list | None = None


def _parse_attention(raw, source: str, record: str) -> np.ndarray:
    if not isinstance(raw, list) or not raw or not all(isinstance(r, list) and r for r in raw):
        raise SubmissionError(source, record, "attention", "must be a non-empty list of non-empty lists (one row per step)")
    widths = {len(r) for r in raw}
    if len(widths) != 1:
        raise SubmissionError(source, record, "attention", f"rows must all have one length (one weight per token), got lengths {sorted(widths)}")
    for t, row in enumerate(raw):
        for w in row:
            if type(w) is bool or not isinstance(w, (int, float)) or not math.isfinite(w):
                raise SubmissionError(source, record, "attention", f"row {t} holds {w!r}; weights must be finite numbers")
    return np.asarray(raw, dtype=np.float64)


def _parse_tokens(raw, source: str, record: str) -> list:
    if not isinstance(raw, list) or not raw or not all(isinstance(t, str) for t in raw):
        raise SubmissionError(source, record, "tokens", "must be a non-empty list of strings")
    return list(raw)


def parse_run(item, source: str, index: int) -> AgentRun:
    """Check one JSON object of a trajectory file and turn it into an :class:`AgentRun`.

    Raises:
        SubmissionError: naming the file, the record and the field.
    """
    if not isinstance(item, dict):
        raise SubmissionError(source, index, None, f"must be a JSON object, got {type(item).__name__}")
    iid = item.get("instr_id", item.get("instruction_id"))
    if type(iid) is int:
        iid = str(iid)
    if not isinstance(iid, str) or not iid:
        raise SubmissionError(source, index, "instr_id", f"must be a string like '123_0', got {iid!r}")
    record = f"instr_id {iid}"
    field = "trajectory" if "trajectory" in item else "path" if "path" in item else None
    if field is None:
        raise SubmissionError(source, record, "trajectory",
                              "is missing (per-episode metric records need the agent's trajectory to be replayed)")
    raw = item[field]
    poses = not (isinstance(raw, list) and raw and all(isinstance(e, str) for e in raw))
    traj = parse_trajectory(raw, source, iid, poses=poses)
    attention = _parse_attention(item["attention"], source, record) if item.get("attention") is not None else None
    tokens = _parse_tokens(item["tokens"], source, record) if item.get("tokens") is not None else None
    if tokens is not None and attention is not None and attention.shape[1] != len(tokens):
        raise SubmissionError(source, record, "attention",
                              f"rows hold {attention.shape[1]} weights but 'tokens' lists {len(tokens)} tokens")
    return AgentRun(iid, traj, attention, tokens)


def read_trajectories(path: str | os.PathLike) -> dict[str, AgentRun]:
    """Read an agent trajectory file (see the module docstring) into ``{instr_id: AgentRun}``.

    Raises:
        SubmissionError: malformed JSON, a record without a trajectory, a repeated instr_id,
            malformed attention weights; the message names the file, the record and the field.
        FileNotFoundError: the file does not exist.
    """
    path = Path(path)
    if path.name.endswith((".jsonl", ".jsonl.gz")):
        return {iid: AgentRun(iid, traj) for iid, traj in read_rxr_submission(path).items()}
    try:
        with open(path, encoding="utf-8") as f:
            items = json.load(f)
    except json.JSONDecodeError as e:
        raise SubmissionError(path, None, None, f"is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    if isinstance(items, dict):  # {instr_id: trajectory} or {instr_id: {...record...}}
        items = [dict(v, instr_id=k) if isinstance(v, dict) else {"instr_id": k, "trajectory": v} for k, v in items.items()]
    if not isinstance(items, list):
        raise SubmissionError(path, None, None, f"must be a JSON list of objects, got {type(items).__name__}")
    out: dict[str, AgentRun] = {}
    for i, item in enumerate(items):
        run = parse_run(item, str(path), i)
        if run.instr_id in out:
            raise SubmissionError(path, f"instr_id {run.instr_id}", "instr_id", "appears more than once")
        out[run.instr_id] = run
    logger.info("read %d agent trajectories from %s (%d with attention)", len(out), path,
                sum(r.attention is not None for r in out.values()))
    return out
