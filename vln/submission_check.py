"""Check a submission file against its split before upload, reporting every problem at once.

:func:`vln.submission.validate_submission` stops at the first problem (the evaluator needs a
valid submission); before an upload a user wants the whole list. :func:`check_submission_file`
reads the file record by record with the same parsers and checks, and returns every error:
records that are not ``{"instr_id", "trajectory": [[viewpoint, heading, elevation], ...]}`` (R2R)
or ``{"instruction_id", "path"}`` (RxR), repeated, unknown and missing instr_ids, trajectories
that do not start at the episode's start, leave the scan's graph or jump between viewpoints
that share no edge. It needs only each episode's start, so it works on test splits.
"""
from __future__ import annotations

import os
from pathlib import Path

from .datasets.splits import load_split_file, not_in_split_message
from .errors import VLNError
from .io_utils import iter_jsonl, read_json
from .submission import (SubmissionError, parse_r2r_item, parse_rxr_item, submission_format,
                         validate_submission)


class InvalidSubmission(VLNError):
    """A submission with problems; ``errors`` holds one :class:`SubmissionError` per problem."""

    def __init__(self, path, errors: list, shown: int = 20):
        self.errors = list(errors)
        lines = [f"  {e}" for e in self.errors[:shown]]
        if len(self.errors) > shown:
            lines.append(f"  ... and {len(self.errors) - shown} more")
        n = len(self.errors)
        super().__init__(f"{path} is not a valid submission ({n} problem{'s' if n != 1 else ''}):\n" + "\n".join(lines))


def _records(path: Path, fmt: str):
    """``[(record number, decoded record)]`` and the parser for them; raises SubmissionError when
    the file as a whole cannot be read (not JSON, not a list)."""
    if fmt == "rxr":
        return list(iter_jsonl(path, SubmissionError)), parse_rxr_item
    items = read_json(path, SubmissionError)
    if not isinstance(items, list):
        raise SubmissionError(path, None, None, f"must be a JSON list of objects, got {type(items).__name__}")
    return list(enumerate(items)), parse_r2r_item


def check_submission_file(path: str | os.PathLike, split_file: str | os.PathLike, graphs, fmt: str = "auto",
                          episodes=None) -> tuple[list[SubmissionError], int]:
    """Every problem of a submission file for a split.

    Args:
        path: R2R ``.json`` or RxR ``.jsonl[.gz]`` submission.
        split_file: the split's file (its episodes give each instruction's start viewpoint and
            scan; ``path[0]`` is all a test split holds).
        graphs: a :class:`vln.graph.NavGraph` with the split's scans.
        fmt: ``"auto"``, ``"r2r"`` or ``"rxr"`` (see :func:`vln.submission.submission_format`).
        episodes: the split's episodes when already loaded (else read from ``split_file``).

    Returns:
        ``(errors, number of well-formed trajectories)``; ``errors`` is empty for a submission the
        leaderboard will accept.
    """
    path, src = Path(path), str(path)
    fmt = submission_format(path, fmt)
    by_id = {str(e.instr_id): e for e in (load_split_file(split_file) if episodes is None else episodes)}
    try:
        records, parse = _records(path, fmt)
    except SubmissionError as e:
        return [e], 0
    errors: list[SubmissionError] = []
    trajectories, first_seen = {}, {}
    for n, item in records:
        try:
            iid, traj = parse(n, item, src)
        except SubmissionError as e:
            errors.append(e)
            continue
        if iid in first_seen:
            errors.append(SubmissionError(src, f"instr_id {iid}", "instr_id",
                                          f"appears more than once (records {first_seen[iid]} and {n})"))
            continue
        first_seen[iid] = n
        trajectories[iid] = traj
    unknown = [i for i in trajectories if i not in by_id]
    if unknown:
        errors.append(SubmissionError(src, f"instr_id {unknown[0]}", "instr_id",
                                      not_in_split_message(unknown, split_file, len(trajectories))))
    missing = [i for i in by_id if i not in first_seen]
    if missing:
        errors.append(SubmissionError(src, None, "instr_id",
                                      f"misses {len(missing)} of the {len(by_id)} instructions of {split_file} "
                                      f"(first: {', '.join(missing[:5])}); every one needs a trajectory"))
    for iid, traj in trajectories.items():
        if iid in by_id:
            try:
                validate_submission({iid: traj}, [by_id[iid]], graphs, allow_partial=True, source=src)
            except SubmissionError as e:
                errors.append(e)
    return errors, len(trajectories)
